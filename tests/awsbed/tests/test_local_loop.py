"""tests/local_loop.py never ends green after a failure: it exits 1, with a FAIL line counted in its
summary, on every early stop (a port taken, the emulator or `make watch` never listening, `make
seed-emulator` failing). Run with stand-in README blocks and free ports; nothing is built."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from awsbed import TESTS
from awsbed.process import bed_env, free_ports

LOCAL_LOOP = str(TESTS / "local_loop.py")

# Runs tests/local_loop.py's main() with some module globals replaced (ports, timeouts) and README.md /
# events/README.md replaced by the given texts; prints what main() prints and exits as it exits.
DRIVER = """
import json, os, sys
config = json.loads(sys.argv[1])
sys.path.insert(0, os.path.dirname(config["script"]))
import local_loop
for name, value in config["globals"].items():
    setattr(local_loop, name, value)
real_read = local_loop.read
local_loop.read = lambda relative: config["files"].get(relative) or real_read(relative)
local_loop.main()
"""

# A stand-in for a server line of README.md: listens on the port given as first argument (never answers).
LISTENER = "exec python3 -c 'import socket, sys, time; s = socket.socket(); "
LISTENER += 's.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); time.sleep(120)\''


def run_local_loop(
    emulator_line: str, watch_line: str, env: dict[str, str] | None = None, taken: bool = False
) -> tuple[int, str, int, int]:
    """local_loop.main() over a README whose block is two '(keeps running)' terminals; with `taken`,
    something listens on the emulator's port already. (exit code, output, emulator port, lambda port)."""
    emulator_port, lambda_port = free_ports(2)
    readme = (
        "## Run the functions locally\n\n```sh\n"
        f"# terminal 1 (keeps running): the emulator\n{emulator_line.format(port=emulator_port)}\n\n"
        f"# terminal 2 (keeps running): the functions\ntrue\n{watch_line.format(port=lambda_port)}\n```\n"
    )
    config = {
        "script": LOCAL_LOOP,
        "globals": {"EMULATOR_PORT": emulator_port, "LAMBDA_PORT": lambda_port, "WATCH_START_TIMEOUT": 3},
        "files": {"README.md": readme, os.path.join("events", "README.md"): "# Sample Lambda events\n"},
    }
    with socket.socket() as listener:
        if taken:
            listener.bind(("127.0.0.1", emulator_port))
            listener.listen()
        done = subprocess.run(
            [sys.executable, "-c", DRIVER, json.dumps(config)],
            env=dict(bed_env(), **(env or {})),
            capture_output=True,
            text=True,
            timeout=60,
        )
    return done.returncode, done.stdout + done.stderr, emulator_port, lambda_port


def quoted(output: str) -> str:
    """Output for a failure message, each line after '| ' (so .ci/count.py does not count its PASS/FAIL lines)."""
    return "\n".join("| " + line for line in output.splitlines())


def assert_failed_run(code: int, output: str, *fragments: str) -> None:
    """A run that failed: exit status not 0, a FAIL line for each fragment, and a summary counting them all."""
    fails = [line for line in output.splitlines() if line.startswith("  FAIL ")]
    assert code != 0, f"exit status 0 after a failure:\n{quoted(output)}"
    for fragment in fragments:
        assert any(fragment in line for line in fails), f"no FAIL line with {fragment!r}:\n{quoted(output)}"
    assert f"local loop: {len(fails)} check(s) failed" in output, (
        f"the summary does not count {len(fails)}:\n{quoted(output)}"
    )


def test_a_taken_port_fails_the_loop() -> None:
    code, output, emulator_port, _ = run_local_loop("make emulator", "sleep 1", taken=True)
    assert_failed_run(code, output, f"127.0.0.1:{emulator_port} is taken")


def test_an_emulator_that_never_listens_fails_the_loop() -> None:
    code, output, emulator_port, _ = run_local_loop("echo the emulator stops; exit 1", "sleep 1")
    assert_failed_run(code, output, f"listening on 127.0.0.1:{emulator_port}")


def test_a_watch_that_never_listens_fails_the_loop() -> None:
    """`make watch` never listens (WATCH_START_TIMEOUT is 3 s here)."""
    code, output, emulator_port, lambda_port = run_local_loop(LISTENER + " {port} emulator", "sleep 60")
    assert_failed_run(code, output, f"sleep 60: listening on 127.0.0.1:{lambda_port}")
    assert f"  PASS {LISTENER} {emulator_port} emulator: listening" in output, quoted(output)


def test_a_failing_seed_stops_the_loop_red() -> None:
    """`make seed-emulator` fails (nothing listens at EMULATOR_URL): the loop stops there, red."""
    (closed,) = free_ports(1)
    code, output, _, _ = run_local_loop(
        LISTENER + " {port} emulator", LISTENER + " {port}", env={"EMULATOR_URL": f"http://127.0.0.1:{closed}"}
    )
    assert_failed_run(code, output, "make seed-emulator WEIGHTS=100/0: exit")
