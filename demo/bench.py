"""`make bench`: run the failover drill N times (default 20) and write the recovery figures.

Each run is the full `demo/drill.py` (real redis-server processes, the emulator, both Lambdas
under `cargo lambda watch`, the sample application). For each figure it prints p50, p95 and max
(nearest rank): time from the primary's death to the parameter update, to the application's
first successful write, the application's longest time without a working primary, and its
failed writes per run; checks them against the goals of the endpoint client; and rewrites the
section of BENCHMARKS.md between its `bench:recovery` markers, with machine, date and commit.
"""

import datetime
import json
import math
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 20
BEGIN, END = "<!-- bench:recovery begin -->", "<!-- bench:recovery end -->"
# The endpoint client's goals on this machine (crates/endpoint-client/README.md).
GOALS = {"outage_p95_s": 0.5, "outage_max_s": 1.0, "failed_writes_max": 10}


def percentile(values, p):
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def machine():
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    return f"{os.cpu_count()} vCPU {cpu} ({platform.machine()}), {platform.platform()}"


def commit():
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", ".", ":!BENCHMARKS.md"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    return out.stdout.strip() + (" + uncommitted changes" if dirty.strip() else "")


def main():
    results = []
    for i in range(RUNS):
        out = subprocess.run([sys.executable, str(ROOT / "demo/drill.py")], cwd=ROOT, capture_output=True, text=True)
        if out.returncode != 0:
            print(out.stdout[-3000:], out.stderr[-3000:], sep="\n")
            sys.exit(f"run {i + 1} failed")
        results.append(json.loads((ROOT / "target/demo-result.json").read_text()))
        r = results[-1]
        print(
            f"run {i + 1}/{RUNS}: parameter {r['param_updated_s']:.2f} s, first write {r['first_write_s']:.2f} s, "
            f"outage {r['longest_outage_ms'] / 1000:.2f} s, failed writes {r['writes_failed']}",
            flush=True,
        )

    rows = [
        ("failure -> parameter updated (the reconciler)", [r["param_updated_s"] for r in results], "s"),
        ("failure -> first successful write on the new primary", [r["first_write_s"] for r in results], "s"),
        ("application's longest time without a working primary", [r["longest_outage_ms"] / 1000 for r in results], "s"),
        ("application's failed writes per run", [r["writes_failed"] for r in results], "writes"),
    ]
    table = ["| measure | p50 | p95 | max | unit |", "|---|---|---|---|---|"]
    for name, values, unit in rows:
        fmt = "{:.2f}" if unit == "s" else "{:.0f}"
        cells = [fmt.format(v) for v in (percentile(values, 50), percentile(values, 95), max(values))]
        table.append(f"| {name} | {' | '.join(cells)} | {unit} |")
    outages = rows[2][1]
    checks = [
        (percentile(outages, 95) <= GOALS["outage_p95_s"], f"outage p95 <= {GOALS['outage_p95_s']} s"),
        (max(outages) <= GOALS["outage_max_s"], f"outage max <= {GOALS['outage_max_s']} s"),
        (
            max(rows[3][1]) <= GOALS["failed_writes_max"],
            f"at most {GOALS['failed_writes_max']} failed writes in any run",
        ),
    ]
    goals = "; ".join(f"{what}: {'met' if ok else 'NOT met'}" for ok, what in checks)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    section = "\n".join(
        [
            BEGIN,
            f"{RUNS} runs of `make bench` on {stamp}, commit {commit()}; machine: {machine()}.",
            "",
            *table,
            "",
            f"Goals of the endpoint client: {goals}.",
            END,
        ]
    )
    print("\n" + section)
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text()
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + section + text[text.index(END) + len(END) :]
        path.write_text(text)
        print(f"\nwrote the section into {path.relative_to(ROOT)}")
    else:
        print(f"\n{path.relative_to(ROOT)} has no {BEGIN} ... {END} markers: section not written")
    if not all(ok for ok, _ in checks):
        sys.exit("a goal was not met")


if __name__ == "__main__":
    main()
