"""`make bench`: run the failover drill N times (default 20) and write the recovery figures.

Each run is the full `demo/drill.py` (real redis-server processes, the emulator, both Lambdas
under `cargo lambda watch`, the sample application). For each figure it prints p50, p95 and max
(nearest rank): time from the primary's death to the parameter update, to the application's
first successful write, the application's longest time without a working primary, and its
failed writes per run; checks them against the goals of the endpoint client; and rewrites the
section of BENCHMARKS.md between its `bench:recovery` markers, with machine, date and commit.

    python bench/recovery.py [RUNS]      # with PYTHONPATH=tests, as `make bench BENCH_RUNS=N` runs it
"""

import json
import subprocess
import sys

from awsbed import REPO
from awsbed.stamps import commit, machine, percentile, rewrite_section, today

BEGIN, END = "<!-- bench:recovery begin -->", "<!-- bench:recovery end -->"
# The endpoint client's goals on this machine (crates/endpoint-client/README.md).
GOALS = {"outage_p95_s": 0.5, "outage_max_s": 1.0, "failed_writes_max": 10}


def run_drills(runs: int) -> list[dict[str, float]]:
    """The drill `runs` times, each run's figures (target/demo-result.json); exits on a failed run."""
    results = []
    for i in range(runs):
        out = subprocess.run([sys.executable, str(REPO / "demo/drill.py")], cwd=REPO, capture_output=True, text=True)
        if out.returncode != 0:
            print(out.stdout[-3000:], out.stderr[-3000:], sep="\n")
            sys.exit(f"run {i + 1} failed")
        results.append(json.loads((REPO / "target/demo-result.json").read_text()))
        r = results[-1]
        print(
            f"run {i + 1}/{runs}: parameter {r['param_updated_s']:.2f} s, first write {r['first_write_s']:.2f} s, "
            f"outage {r['longest_outage_ms'] / 1000:.2f} s, failed writes {r['writes_failed']}",
            flush=True,
        )
    return results


def main() -> None:
    """Run the drills, print and write the section; exit 1 if a goal was not met."""
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    results = run_drills(runs)
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
    section = "\n".join(
        [
            BEGIN,
            f"{runs} runs of `make bench` on {today()}, commit {commit()}; machine: {machine(with_platform=True)}.",
            "",
            *table,
            "",
            f"Goals of the endpoint client: {goals}.",
            END,
        ]
    )
    print("\n" + section)
    if rewrite_section(REPO / "BENCHMARKS.md", BEGIN, END, section):
        print("\nwrote the section into BENCHMARKS.md")
    else:
        print(f"\nBENCHMARKS.md has no {BEGIN} ... {END} markers: section not written")
    if not all(ok for ok, _ in checks):
        sys.exit("a goal was not met")


if __name__ == "__main__":
    main()
