"""The emulator's process (awsbed.emulator.__main__, awsbed.process): ready line, loopback only, how it
stops. Each test starts an emulator of its own."""

from __future__ import annotations

import signal
import subprocess
import sys

from awsbed.process import bed_env, start_emulator


def test_parent_watch_exits_on_stdin_eof() -> None:
    """With --parent-watch, EOF on stdin (the parent closed the pipe or died) stops it with exit code 0."""
    emulator = start_emulator(parent_watch=True)
    assert emulator.url.startswith("http://127.0.0.1:")
    assert emulator.stop() == 0, "the emulator did not exit 0 within 10 s of stdin EOF"


def test_sigterm_exits_zero() -> None:
    """Without --parent-watch, SIGTERM must stop the emulator with exit code 0."""
    emulator = start_emulator(parent_watch=False)
    emulator.proc.send_signal(signal.SIGTERM)
    try:
        code = emulator.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        emulator.proc.kill()
        raise AssertionError("emulator ignored SIGTERM") from None
    assert code == 0


def test_refuses_a_non_loopback_host() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "awsbed.emulator", "--host", "0.0.0.0", "--port", "0"],
        env=bed_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "refusing to bind non-loopback host '0.0.0.0'" in done.stderr
    assert done.stdout == ""
