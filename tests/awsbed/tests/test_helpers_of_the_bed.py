"""The small parts of the bed the drill and the benchmarks share: redis-server pairs (awsbed.redis),
percentiles and BENCHMARKS.md sections (awsbed.stamps), processes and ports (awsbed.process)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from awsbed import redis, stamps
from awsbed.process import Processes, free_ports, listening, wait_listening


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server (make redis installs it)")
def test_redis_pair_replicates_and_the_replica_can_be_promoted() -> None:
    processes = Processes()
    try:
        primary, replica = redis.start_pair(processes)
        assert redis.command(primary.port, "SET", "k", "v") == "+OK\r\n"
        assert "role:slave" in redis.command(replica.port, "INFO", "replication")
        assert redis.command(replica.port, "REPLICAOF", "NO", "ONE") == "+OK\r\n"
        assert "role:master" in redis.command(replica.port, "INFO", "replication")
    finally:
        processes.stop_all()
    assert not listening(primary.port) and not listening(replica.port)


def test_processes_stop_their_whole_group() -> None:
    port, other = free_ports(2)
    assert port != other and not listening(port)
    processes = Processes()
    listener = f"import socket, time; s = socket.socket(); s.bind(('127.0.0.1', {port})); s.listen(); time.sleep(60)"
    shell = processes.spawn(["bash", "-c", f'python3 -c "{listener}"; true'], stdout=subprocess.DEVNULL)
    assert wait_listening(port, 10, shell)
    processes.stop_all(grace=5)
    assert shell.poll() is not None and processes.procs == []
    assert not wait_listening(port, 1), "the child of the stopped shell still listens"


@pytest.mark.parametrize(("p", "expected"), [(50, 3), (90, 5), (95, 5), (100, 5), (0, 1)])
def test_percentile_is_nearest_rank(p: float, expected: float) -> None:
    assert stamps.percentile([5, 1, 4, 2, 3], p) == expected


def test_rewrite_section_replaces_only_between_the_markers(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# B\n<!-- x begin -->\nold\n<!-- x end -->\ntail\n")
    assert stamps.rewrite_section(path, "<!-- x begin -->", "<!-- x end -->", "<!-- x begin -->\nnew\n<!-- x end -->")
    assert path.read_text() == "# B\n<!-- x begin -->\nnew\n<!-- x end -->\ntail\n"
    assert not stamps.rewrite_section(path, "<!-- y begin -->", "<!-- y end -->", "nothing")
    assert path.read_text() == "# B\n<!-- x begin -->\nnew\n<!-- x end -->\ntail\n"


def test_stamps_name_the_commit_and_the_machine() -> None:
    assert stamps.commit().split(" ")[0].isalnum()
    assert " vCPU " in stamps.machine() and stamps.machine(with_platform=True).startswith(stamps.machine() + ", ")
    assert len(stamps.today()) == len("2026-12-06")
