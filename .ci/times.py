"""Where a run of .ci/run spent its time: the breakdown it prints before its closing line.

    python3 .ci/times.py LOGDIR

LOGDIR is .ci/run's log directory:

* `times.tsv`: one line per timed command, `start<TAB>end<TAB>exit<TAB>step<TAB>command` (seconds
  since the epoch). .ci/timed-shell, make's SHELL under .ci/run, writes one per recipe line;
  .ci/run writes one per step of its own (step `ci`).
* `test.log`, `demo.log`: the output of `make test` and `make demo`. From them come what one recipe
  line hides: cargo test's build (cargo's `Finished` line) and each test binary (libtest's
  `finished in`, after its `Running` line), and how long `make watch` took to listen in the local
  loop (its build).

Standard library only. It never fails the run: anything it cannot read is left out, and an error
prints one line and exits 0.
"""

import os
import re
import sys

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# (label, pattern over the recipe line); the first match names the line. Lines with one label add up.
LABELS = [
    (
        "setup: venvs, pip installs, redis-server",
        r"\bpython3? -m venv\b|\bpip install\b|redis-server|apt-get|\.installed\b|lastVersionCheck|mkdir -p \S*state\b",
    ),
    ("lint: cargo fmt --check", r"\bcargo fmt\b"),
    ("lint: cargo clippy (a check build of the workspace)", r"\bcargo clippy\b"),
    ("lint: ruff check, ruff format --check", r"/ruff "),
    ("lint-infra: cfn-lint", r"\bcfn-lint\b"),
    ("lint-infra: checkov", r"\bcheckov\b"),
    ("lint-infra: sam validate (plain, --lint)", r"\bsam validate\b"),
    ("lint-infra: check_template.py, check_policies.py (+ self-tests)", r"check_template\.py|check_policies\.py"),
    ("test-emulator", r"selftest|pytest"),
    ("cargo test --workspace", r"\bcargo test\b"),
    ("local loop (tests/local_loop.py)", r"local_loop\.py"),
    ("release build: both functions", r"\bcargo build --release\b(?!.*--example)"),
    ("release build: the sample app (endpoint-client example)", r"\bcargo build --release\b.*--example"),
    ("drill (demo/drill.py)", r"drill\.py"),
]
WIDTH = 70  # of the label column
SHOWN_ALONE = 0.5  # seconds: shorter lines of unknown commands, and test binaries, are summed

CARGO_FINISHED = re.compile(r"^\s*Finished `(\w+)` profile .* in (?:(\d+)h )?(?:(\d+)m )?(?:([\d.]+)s)?\s*$")
RUNNING = re.compile(r"^\s*Running (unittests )?(\S+) \((?:\S*/)?([A-Za-z0-9_]+)-[0-9a-f]+\)")
DOC_TESTS = re.compile(r"^\s*Doc-tests (\S+)")
TEST_RESULT = re.compile(r"^test result: .* finished in ([\d.]+)s")
LISTENING = re.compile(r"\b(make \w+): listening on \S+ after ([\d.]+) s")


def read_times(path):
    rows = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t", 4)
            if len(parts) != 5:
                continue
            try:
                start, end, code = float(parts[0]), float(parts[1]), int(parts[2])
            except ValueError:
                continue
            rows.append(
                {"start": start, "took": end - start, "end": end, "code": code, "step": parts[3], "cmd": parts[4]}
            )
    return rows


def label(command):
    for name, pattern in LABELS:
        if re.search(pattern, command):
            return name
    return None


def cargo_seconds(m):
    hours, minutes, seconds = m.group(2), m.group(3), m.group(4)
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)


def read_log(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8", errors="replace") as f:
        return [ANSI.sub("", line.rstrip("\n")) for line in f]


def cargo_test_parts(lines):
    """[(label, seconds)] inside `cargo test`: its build, then each test binary, in order."""
    parts, crate, current, inside = [], None, None, False
    for line in lines:
        if not inside:  # until make's echo of the cargo test line
            inside = "cargo test --workspace" in line and not line.startswith(" ")
            continue
        finished = CARGO_FINISHED.match(line)
        if finished and finished.group(1) == "test":
            parts.append(("build (cargo's `Finished` line)", cargo_seconds(finished)))
            continue
        running = RUNNING.match(line)
        if running:
            unit, path, stem = running.groups()
            if unit:
                crate = stem
                current = f"{crate}: unit tests ({path})"
            else:
                current = f"{crate}: {path}" if crate else path
            continue
        doc = DOC_TESTS.match(line)
        if doc:
            current = f"{doc.group(1)}: doc-tests"
            continue
        result = TEST_RESULT.match(line)
        if result and current:
            parts.append((current, float(result.group(1))))
            current = None
    return parts


def fmt(seconds, total):
    share = f"{100 * seconds / total:5.1f} %" if total > 0 else ""
    return f"{seconds:8.1f} s {share}"


def report(logdir):
    rows = read_times(os.path.join(logdir, "times.tsv"))
    if not rows:
        print("== time: nothing was timed (no times.tsv)")
        return
    ci = [r for r in rows if r["step"] == "ci"]
    total = sum(r["took"] for r in ci) or (max(r["end"] for r in rows) - min(r["start"] for r in rows))
    logs = {step: read_log(os.path.join(logdir, f"{step.split()[-1]}.log")) for step in ("make test", "make demo")}

    def row(indent, what, seconds, code=0):
        status = "" if code == 0 else f"  (exit {code})"
        print(f"{' ' * indent}{what:<{WIDTH + 2 - indent}}{fmt(seconds, total)}{status}")

    print("== time: where this run spent it (wall clock; .ci/timed-shell, cargo's and libtest's own figures)")
    for step in ci:
        name = step["cmd"]
        row(2, name, step["took"], step["code"])
        groups = {}
        for r in rows:
            if r["step"] != name:
                continue
            key = label(r["cmd"]) or (r["cmd"][: WIDTH - 6] if r["took"] >= SHOWN_ALONE else "other commands")
            g = groups.setdefault(key, {"took": 0.0, "n": 0, "code": 0})
            g["took"], g["n"], g["code"] = g["took"] + r["took"], g["n"] + 1, g["code"] or r["code"]
        for key, g in sorted(groups.items(), key=lambda item: item[0] == "other commands"):
            if key == "other commands":  # make's $(shell ...) calls among them: their status means nothing here
                row(4, f"{key} ({g['n']})", g["took"])
                continue
            row(4, key, g["took"], g["code"])
            if key == "cargo test --workspace":
                for what, seconds in cargo_test_rows(logs.get(name, []), g["took"]):
                    row(6, what, seconds)
            if key.startswith("local loop"):
                for line in logs.get(name, []):
                    m = LISTENING.search(line)
                    if m:
                        first = " (its build first)" if "watch" in m.group(1) else ""
                        row(6, f"{m.group(1)}: until it listened{first}", float(m.group(2)))
    row(2, "total", total)


def cargo_test_rows(lines, took):
    """The rows under cargo test: its build, each test binary of SHOWN_ALONE or more, the others summed."""
    parts = cargo_test_parts(lines)
    rows, small, small_n = [], 0.0, 0
    for name, seconds in parts:
        if seconds >= SHOWN_ALONE or name.startswith("build"):
            rows.append((name, seconds))
        else:
            small, small_n = small + seconds, small_n + 1
    if small_n:
        rows.append((f"{small_n} more test binaries and doc-tests, each under {SHOWN_ALONE} s", small))
    rest = took - sum(seconds for _, seconds in parts)
    if parts and rest > SHOWN_ALONE:
        rows.append(("the rest (starting binaries, compiling doc-tests)", rest))
    return rows


def main(argv):
    if len(argv) != 2:
        print("usage: python3 .ci/times.py LOGDIR")
        return 0
    try:
        report(argv[1])
    except Exception as err:  # the breakdown is information; it never fails the run
        print(f"== time: no breakdown ({err!r})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
