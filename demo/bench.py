"""`make bench`: run the failover drill several times and summarise the recovery figures.

Each run is the full `demo/drill.py` (real redis-server processes, the emulator, both Lambdas
under `cargo lambda watch`, the sample application). Prints the median, minimum and maximum of:
time from the primary's death to the parameter update, to the application's first successful
write, and the application's failed writes and longest outage. Paste the table into
BENCHMARKS.md with the machine and the date.
"""

import json
import platform
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 5


def main():
    results = []
    for i in range(RUNS):
        out = subprocess.run([sys.executable, str(ROOT / "demo/drill.py")], cwd=ROOT, capture_output=True, text=True)
        if out.returncode != 0:
            print(out.stdout[-3000:], out.stderr[-3000:], sep="\n")
            sys.exit(f"run {i + 1} failed")
        results.append(json.loads((ROOT / "target/demo-result.json").read_text()))
        print(
            f"run {i + 1}/{RUNS}: parameter {results[-1]['param_updated_s']:.2f} s, "
            f"first write {results[-1]['first_write_s']:.2f} s, failed writes {results[-1]['writes_failed']}",
            flush=True,
        )

    def row(name, key, scale=1.0, unit="s"):
        values = [r[key] * scale for r in results]
        fmt = "{:.2f}" if unit == "s" else "{:.0f}"
        cells = [fmt.format(v) for v in (statistics.median(values), min(values), max(values))]
        print(f"| {name} | {' | '.join(cells)} | {unit} |")

    print(f"\n{RUNS} runs on {platform.node()} ({platform.machine()}, {platform.platform()})\n")
    print("| measure | median | min | max | unit |")
    print("|---|---|---|---|---|")
    row("failure -> parameter updated", "param_updated_s")
    row("failure -> first successful write", "first_write_s")
    row("longest time without a working primary (app)", "longest_outage_ms", 0.001)
    row("failed writes (50 ms interval)", "writes_failed", unit="writes")


if __name__ == "__main__":
    main()
