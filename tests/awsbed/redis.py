"""Real Redis for the bed: Debian's redis-server on loopback ports, and one command at a time over RESP.

    primary, replica = start_pair(processes)     # primary -> replica, replication up
    command(replica.port, "REPLICAOF", "NO", "ONE")

Servers run with persistence off and ``--repl-diskless-sync-delay 0`` (without it a replica's first sync
waits 5 s), each in a working directory of its own under the system's temporary folder (a replica writes
the RDB it receives there), as the Rust harness does (tests/harness/redis_server.rs). ``command`` needs no
Redis client library: it writes the command in RESP and returns the raw reply.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from .process import Processes, free_port


@dataclass
class Server:
    """A redis-server process and its port on 127.0.0.1."""

    port: int
    proc: subprocess.Popen[Any]

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.port}"


def start_server(processes: Processes, port: int | None = None, *extra: str) -> Server:
    """A redis-server on 127.0.0.1:`port` (default: a free one) with `extra` arguments, one of `processes`."""
    port = port or free_port()
    args = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    args += ["--repl-diskless-sync-delay", "0", *extra]
    workdir = tempfile.mkdtemp(prefix=f"failover-redis-{port}-")
    proc = processes.spawn(args, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return Server(port, proc)


def command(port: int, *args: str) -> str:
    """One command over a raw socket (RESP); the raw reply, decoded."""
    payload = f"*{len(args)}\r\n" + "".join(f"${len(a)}\r\n{a}\r\n" for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(payload.encode())
        return s.recv(65536).decode(errors="replace")


def start_pair(processes: Processes, timeout: float = 10.0) -> tuple[Server, Server]:
    """A primary and a replica of it, once the replica reports its link to the primary up;
    RuntimeError if that takes longer than `timeout` seconds."""
    primary = start_server(processes)
    replica = start_server(processes, None, "--replicaof", "127.0.0.1", str(primary.port))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if "master_link_status:up" in command(replica.port, "INFO", "replication"):
                return primary, replica
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"the replica did not sync with the primary within {timeout:.0f} s")
