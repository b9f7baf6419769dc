"""Processes of the bed: the emulator started on a free loopback port, servers in their own process
groups, free ports, waiting for a port to listen.

    emulator = start_emulator()          # python -m awsbed.emulator --port 0 --parent-watch
    ...                                  # emulator.url is http://127.0.0.1:PORT
    emulator.stop()                      # or: with start_emulator() as emulator: ...

The emulator runs as ``python -m awsbed.emulator`` with ``PYTHONPATH`` naming this package's folder
(``bed_env``), in a process group of its own, with ``--parent-watch`` so that it exits when the process
that started it does. Its stderr (moto's output, tracebacks) is discarded unless ``FAILOVER_EMULATOR_LOG``
is set, as in the Rust harness (tests/harness/lib.rs), which starts it the same way.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from . import TESTS

READY = "FAILOVER_EMULATOR_READY "
"""What the emulator's one line on stdout starts with, followed by its URL."""


class Processes:
    """Child processes, each in a process group of its own, stopped newest first."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[Any]] = []

    def spawn(self, args: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start `args` (Popen keyword arguments as given) in a new session; stopped by ``stop_all``."""
        proc = subprocess.Popen(args, start_new_session=True, **kwargs)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[Any], grace: float = 5.0) -> None:
        """SIGTERM to the process's group (also when the process itself is gone: what it started may not
        be); SIGKILL to the group if any of it is still there after `grace` seconds. Returns once the
        whole group is gone, not only its leader: a child still listening would hold its port."""
        deadline = time.monotonic() + grace
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=grace)
        except ProcessLookupError:
            proc.poll()
        except subprocess.TimeoutExpired:
            pass
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        while _group_alive(proc.pid) and time.monotonic() < deadline + 5:
            time.sleep(0.02)
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self, grace: float = 5.0) -> None:
        """Stop every process still here, the newest first."""
        for proc in reversed(list(self.procs)):
            self.stop(proc, grace)


def _group_alive(pgid: int) -> bool:
    """Whether a process of group `pgid` still runs: a zombie (dead, not yet reaped by whoever
    inherited it) does not count, since its sockets are closed. Reads /proc (Linux)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so split after it
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False


def free_ports(count: int) -> list[int]:
    """Loopback ports nothing listens on (bound to 0, then released)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def free_port() -> int:
    """One loopback port nothing listens on."""
    return free_ports(1)[0]


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:`port`."""
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_listening(port: int, timeout: float, proc: subprocess.Popen[Any] | None = None, interval: float = 0.2) -> bool:
    """Wait up to `timeout` seconds for 127.0.0.1:`port` to listen; False early if `proc` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if listening(port):
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(interval)
    return False


def bed_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of `base` (default: this process's environment) whose PYTHONPATH finds this package."""
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS), env.get("PYTHONPATH", "")) if p)
    return env


def emulator_command(python: str | None = None, port: int = 0, parent_watch: bool = True) -> list[str]:
    """The command line that runs the emulator on 127.0.0.1:`port` (0: a free one)."""
    command = [python or sys.executable, "-m", "awsbed.emulator", "--host", "127.0.0.1", "--port", str(port)]
    return [*command, "--parent-watch"] if parent_watch else command


class EmulatorProcess:
    """A running emulator: its process, its URL, and how long it took to say it was ready."""

    def __init__(self, proc: subprocess.Popen[str], url: str, startup_seconds: float) -> None:
        self.proc = proc
        self.url = url
        self.startup_seconds = startup_seconds

    def stop(self, timeout: float = 10.0) -> int | None:
        """Stop it: EOF on stdin (``--parent-watch``), else SIGTERM. Its exit status, or None if it had to
        be killed after `timeout` seconds."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        if "--parent-watch" not in self.proc.args and self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_emulator(
    *,
    python: str | None = None,
    port: int = 0,
    parent_watch: bool = True,
    timeout: float = 30.0,
    processes: Processes | None = None,
) -> EmulatorProcess:
    """Start an emulator and wait for its READY line; RuntimeError if it does not come within `timeout`.

    `python` defaults to this interpreter (the venv's, under the Makefile). With `processes`, the
    emulator is one of them (``stop_all`` stops it).
    """
    started = time.monotonic()
    kwargs: dict[str, Any] = {
        "stdin": subprocess.PIPE,
        "stdout": subprocess.PIPE,
        "stderr": None if os.environ.get("FAILOVER_EMULATOR_LOG") else subprocess.DEVNULL,
        "text": True,
        "env": bed_env(),
    }
    args = emulator_command(python, port, parent_watch)
    proc = processes.spawn(args, **kwargs) if processes else subprocess.Popen(args, start_new_session=True, **kwargs)
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline().strip() if ready and proc.stdout else ""
    if not line.startswith(READY + "http://127.0.0.1:"):
        proc.kill()
        proc.wait()
        raise RuntimeError(
            f"the emulator did not say it was ready within {timeout:.0f} s, got {line!r} "
            "(set FAILOVER_EMULATOR_LOG=1 to see its stderr)"
        )
    return EmulatorProcess(proc, line.split(" ", 1)[1], time.monotonic() - started)
