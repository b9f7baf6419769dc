""".ci/count.py and .ci/run: every PASS and FAIL line, cargo's and pytest's counts, a failed step; CI is
red whenever a step failed or any check failed, and still prints its closing `ci: N passed, M failed`
line. .ci/run runs here with stand-ins for make, cargo and rustc on PATH: nothing is built."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from awsbed import REPO

CI_RUN = REPO / ".ci" / "run"
CI_COUNT = REPO / ".ci" / "count.py"

# Sample output, as the steps print it.
CARGO_OK = """\
     Running unittests src/lib.rs (target/debug/deps/failover_core-0123)

running 3 tests
test a ... ok
test b ... ok
test c ... ok

test result: ok. 3 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s

   Doc-tests failover_core

running 0 tests

test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
"""
CARGO_ONE_FAILED = """\
     Running tests/rollback.rs (target/debug/deps/rollback-0123)

running 3 tests
test x ... ok
test y ... FAILED
test z ... ok

failures:

---- y stdout ----
FAIL this line is the test's own output, not a check
thread 'y' panicked at tests/rollback.rs:10:5

failures:
    y

test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.00s

error: test failed, to rerun pass `-p failover-tests --test rollback`
"""
CARGO_CRASHED = """\
     Running tests/fleet.rs (target/debug/deps/fleet-0123)

running 1 test
error: test failed, to rerun pass `-p failover-tests --test fleet`

Caused by:
  process didn't exit successfully: `target/debug/deps/fleet-0123` (signal: 6, SIGABRT: process abort signal)
"""
# make test-emulator: pytest -q
PYTEST_OK = "env PYTHONPATH=tests .venv/bin/python -m pytest -q tests/awsbed/tests\n..                       [100%]\n"
PYTEST_OK += "2 passed in 0.50s\n"
PYTEST_FAILED = """\
.F.                                                                      [100%]
=================================== FAILURES ===================================
___________________________________ test_c _____________________________________
tests/awsbed/tests/test_x.py:3: in test_c
    assert False
E   AssertionError: FAIL in a message is not a check
=========================== short test summary info ============================
FAILED tests/awsbed/tests/test_x.py::test_c - AssertionError: FAIL in a message
1 failed, 2 passed in 0.51s
"""
LOOP_OUT = "== README.md\n  PASS make emulator: listening on 127.0.0.1:5005 after 1.0 s\n"
LOOP_FAILED = LOOP_OUT + "  FAIL make watch: listening on 127.0.0.1:9000 after 900.0 s\nlocal loop: 1 check(s) failed\n"
DRILL_OUT = "\n== checks\n  PASS  parameter moved\n  PASS  app recovered\n\nDRILL PASSED\n"
TEST_LOG = CARGO_OK + PYTEST_OK + LOOP_OUT


def count(tmp_path: Path, *logs: str, failed_step: str | None = None) -> tuple[int, str]:
    """.ci/count.py over these log texts: (exit status, output)."""
    paths = []
    for i, text in enumerate(logs):
        paths.append(tmp_path / f"{i}.log")
        paths[-1].write_text(text)
    args = ["--failed-step", failed_step] if failed_step else []
    done = subprocess.run([sys.executable, CI_COUNT, *args, *paths], capture_output=True, text=True, timeout=30)
    return done.returncode, done.stdout.strip()


@pytest.mark.parametrize(
    ("logs", "expected"),
    [
        ((TEST_LOG, DRILL_OUT), (0, "ci: 8 passed, 0 failed")),
        ((CARGO_OK + PYTEST_OK + LOOP_FAILED, DRILL_OUT), (1, "ci: 8 passed, 1 failed")),
        ((TEST_LOG + "FAIL test_c\nTraceback ...\n1 FAILED\n", DRILL_OUT), (1, "ci: 8 passed, 1 failed")),
        ((TEST_LOG, DRILL_OUT.replace("  PASS  app", "  FAIL  app")), (1, "ci: 7 passed, 1 failed")),
        # pytest's closing line counts (its FAILED and E lines do not); errors are failures
        ((CARGO_OK + PYTEST_FAILED + LOOP_OUT, DRILL_OUT), (1, "ci: 8 passed, 1 failed")),
        (
            ("=========== 3 failed, 4 passed, 1 skipped, 2 errors in 9.87s ===========\n",),
            (1, "ci: 4 passed, 5 failed"),
        ),
        (("\x1b[32m\x1b[1m12 passed\x1b[0m\x1b[32m in 3.02s\x1b[0m\n",), (0, "ci: 12 passed, 0 failed")),
        (("1 error in 0.40s\n",), (1, "ci: 0 passed, 1 failed")),
        # a failed cargo test counted once (its FAILED line and its test result); its own output's FAIL line not at all
        ((CARGO_OK + CARGO_ONE_FAILED,), (1, "ci: 5 passed, 1 failed")),
        (("test y ... FAILED\n",), (1, "ci: 0 passed, 1 failed")),  # no test result line
        ((CARGO_OK + CARGO_CRASHED,), (1, "ci: 3 passed, 1 failed")),  # a test binary died
        (("\x1b[32m  PASS x\x1b[0m\n\x1b[31mFAIL y\x1b[0m\n",), (1, "ci: 1 passed, 1 failed")),
        (("error: could not compile `x`\n",), (1, "ci: 0 passed, 0 failed (nothing passed)")),
    ],
    ids=[
        "all passed",
        "local loop failed",
        "a FAIL line",
        "drill check failed",
        "pytest failed",
        "pytest errors",
        "pytest colours",
        "pytest error only",
        "cargo failed once",
        "cargo FAILED line only",
        "cargo binary died",
        "colours",
        "nothing passed",
    ],
)
def test_counting(tmp_path: Path, logs: tuple[str, ...], expected: tuple[int, str]) -> None:
    assert count(tmp_path, *logs) == expected


def test_a_failed_step_is_a_failure(tmp_path: Path) -> None:
    """A step that exited non-zero is a failure even when no line says so; nothing passed is no pass."""
    assert count(tmp_path, TEST_LOG, failed_step="make demo exited 2") == (
        1,
        "ci: 6 passed, 1 failed (make demo exited 2)",
    )
    assert count(tmp_path, CARGO_ONE_FAILED, failed_step="make test exited 2") == (
        1,
        "ci: 2 passed, 1 failed (make test exited 2)",
    )


def run_ci(
    tmp_path: Path, test_out: str, test_code: int, demo_out: str, demo_code: int
) -> tuple[int, str | None, list[str], str]:
    """.ci/run with stand-ins for cargo, rustc, rustup, apt-get and make on PATH (nothing is built):
    (exit status, its closing line, the make targets run, its output)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for target, text in (("test", test_out), ("demo", demo_out)):
        (tmp_path / f"{target}.out").write_text(text)
    fakes = {
        "cargo": "echo cargo 0.0.0-stand-in",
        "rustc": "echo rustc 0.0.0-stand-in",
        "rustup": "echo rustup must not run; exit 1",
        "apt-get": "echo apt-get must not run; exit 1",
        "make": (
            f'echo "$1" >> {tmp_path}/made\n'
            f'case "$1" in test) cat {tmp_path}/test.out; exit {test_code};; '
            f"demo) cat {tmp_path}/demo.out; exit {demo_code};; *) exit 99;; esac"
        ),
    }
    for name, body in fakes.items():
        path = bin_dir / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    env = dict(os.environ, PATH=str(bin_dir) + os.pathsep + os.environ.get("PATH", ""))
    done = subprocess.run(["bash", CI_RUN], env=env, capture_output=True, text=True, timeout=60)
    made = (tmp_path / "made").read_text().split() if (tmp_path / "made").exists() else []
    lines = done.stdout.strip().splitlines()
    closing = next((line for line in reversed(lines) if line.startswith("ci: ")), None)
    return done.returncode, closing, made, "\n".join("| " + line for line in (done.stdout + done.stderr).splitlines())


def test_ci_run_green_only_when_everything_passed(tmp_path: Path) -> None:
    assert run_ci(tmp_path, TEST_LOG, 0, DRILL_OUT, 0)[:3] == (0, "ci: 8 passed, 0 failed", ["test", "demo"])


def test_ci_run_red_on_a_fail_line_of_a_step_that_exited_0(tmp_path: Path) -> None:
    """Issue 18, item 16: the local loop printed FAIL and exited 0 -> CI said "0 failed" and passed."""
    code, closing, _, out = run_ci(tmp_path, CARGO_OK + PYTEST_OK + LOOP_FAILED, 0, DRILL_OUT, 0)
    assert (code, closing) == (1, "ci: 8 passed, 1 failed"), out


def test_ci_run_red_when_the_emulator_tests_fail(tmp_path: Path) -> None:
    """make test-emulator failed: make test stops there, red, and the pytest counts are in the line."""
    code, closing, made, out = run_ci(tmp_path, CARGO_OK + PYTEST_FAILED, 2, DRILL_OUT, 0)
    assert (code != 0, closing, made) == (True, "ci: 5 passed, 1 failed (make test exited 2)", ["test"]), out


def test_ci_run_stops_red_when_make_test_fails(tmp_path: Path) -> None:
    """make test fails: the run stops there (no demo), red, and still says what it counted."""
    code, closing, made, out = run_ci(tmp_path, CARGO_OK + CARGO_ONE_FAILED, 2, DRILL_OUT, 0)
    assert (code != 0, closing, made) == (True, "ci: 5 passed, 1 failed (make test exited 2)", ["test"]), out


def test_ci_run_red_when_the_drill_fails_before_any_check(tmp_path: Path) -> None:
    code, closing, _, out = run_ci(tmp_path, TEST_LOG, 0, "DRILL FAILED: no emulator\n", 1)
    assert (code != 0, closing) == (True, "ci: 6 passed, 1 failed (make demo exited 1)"), out
