"""The closing line of .ci/run, `ci: N passed, M failed`, counted from the logs of its steps.

    python3 .ci/count.py [--failed-step TEXT] LOG...

Exit status 1 if anything failed or nothing passed, else 0. Standard library only (CI runs it with the
system python3). Counted, line by line, in every log:

* cargo test: each `test result:` line adds its `N passed` and `M failed`; each `test NAME ... FAILED`
  line is one failure. Per test binary (from one `Running` or `Doc-tests` line to the next) the larger
  of the two failure counts is taken, so a failed test is counted once, and a binary that died before
  its `test result:` line still counts the failures it printed; one that printed neither and ends in
  `error: test failed` (it crashed) counts one. Lines a failed test printed (between libtest's
  `failures:` and its `test result:`) are its own output: not counted.
* pytest (`make test-emulator`, the emulator's test suite): its closing line, as `-q` prints it
  (`1 failed, 40 passed, 1 error in 12.34s`) or framed in `=` and coloured, adds its `passed`, and its
  `failed` and `error(s)` as failures. Its `FAILED test_x.py::test_y` and `E ...` lines are not counted.
* every other line that starts, after blanks, with PASS or FAIL, one each: tests/local_loop.py
  (`  PASS ...`), demo/drill.py (`  PASS  ...`).
* `--failed-step "make test exited 2"`: a step that exited non-zero is at least one failure even if no
  line says so (a lint or build error); the text is added to the line.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
TEST_RESULT = re.compile(r"^test result: \S+ (\d+) passed; (\d+) failed;")
TEST_FAILED = re.compile(r"^test \S.* \.\.\. FAILED\b")
BINARY = re.compile(r"^\s*(Running |Doc-tests )")
CHECK = re.compile(r"^\s*(PASS|FAIL)\b")
PYTEST_SUMMARY = re.compile(r"^=*\s*(\d+ [a-z]+(?:, \d+ [a-z]+)*) in \d+(?:\.\d+)?s\b")
PYTEST_FAILURES = ("failed", "error", "errors")


def count(lines: Iterable[str]) -> tuple[int, int]:
    """(passed, failed) over the lines of one log."""
    passed = failed = 0
    section = None  # the current test binary: {"result": failed or None, "failed_lines": n}
    in_failures = False  # inside libtest's report of failed tests' output

    def close() -> None:
        nonlocal failed
        if section is not None:
            failed += max(section["result"] or 0, section["failed_lines"])

    for raw in lines:
        line = ANSI.sub("", raw.rstrip("\n"))
        if BINARY.match(line):
            close()
            section, in_failures = {"result": None, "failed_lines": 0}, False
            continue
        result = TEST_RESULT.match(line)
        if result:
            section = section or {"result": None, "failed_lines": 0}
            passed += int(result.group(1))
            section["result"] = (section["result"] or 0) + int(result.group(2))
            in_failures = False
            continue
        if line == "failures:":
            in_failures = True
            continue
        if in_failures:
            continue
        if TEST_FAILED.match(line):
            section = section or {"result": None, "failed_lines": 0}
            section["failed_lines"] += 1
            continue
        if line.startswith("error: test failed") and section is not None:
            if section["result"] is None and section["failed_lines"] == 0:
                section["failed_lines"] = 1  # the binary crashed before reporting anything
            continue
        summary = PYTEST_SUMMARY.match(line)
        if summary:
            for part in summary.group(1).split(", "):
                number, what = part.split(" ")
                if what == "passed":
                    passed += int(number)
                elif what in PYTEST_FAILURES:
                    failed += int(number)
            continue
        check = CHECK.match(line)
        if check:
            if check.group(1) == "PASS":
                passed += 1
            else:
                failed += 1
    close()
    return passed, failed


def main(argv: list[str] | None = None) -> int:
    """Count every log, print the closing line; 1 if anything failed or nothing passed."""
    parser = argparse.ArgumentParser(description="Count the passed and failed checks in CI logs.")
    parser.add_argument("--failed-step", help="a step that exited non-zero, e.g. 'make test exited 2'")
    parser.add_argument("logs", nargs="+", help="log files (missing ones are skipped)")
    args = parser.parse_args(argv)
    passed = failed = 0
    for path in args.logs:
        try:
            with open(path, errors="replace") as f:
                p, f_ = count(f)
        except FileNotFoundError:
            continue
        passed, failed = passed + p, failed + f_
    notes = []
    if args.failed_step:
        failed = max(failed, 1)
        notes.append(args.failed_step)
    elif passed == 0 and failed == 0:
        notes.append("nothing passed")
    print(f"ci: {passed} passed, {failed} failed" + (f" ({'; '.join(notes)})" if notes else ""))
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
