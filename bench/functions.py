"""`make bench-functions`: speed, memory and size of both functions, side by side with a boto3
baseline (bench/baseline/), all on 127.0.0.1, release builds.

A small Lambda Runtime API (awsbed.runtime_api) hands events to one function process at a time and
times what a caller sees; the AWS emulator (awsbed.process) answers the AWS calls. For each function
and its baseline, interleaved:

- cold start: process spawn -> first response of a no-change invocation (COLD_STARTS times,
  default 30), and init alone (spawn -> first /next);
- warm: WARM_INVOCATIONS (default 400) no-change invocations in one process: CPU time (user +
  system, all threads, /proc/<pid>/task/*/schedstat) per invocation, and wall latency median and p99;
- peak RSS (VmHWM), binary and zip size;
- AWS API calls per invocation, counted at the emulator;
- scale (reconciler): one no-change reconcile of 10, 100 and 1,000 groups: API calls and time.

It prints a Markdown section and rewrites BENCHMARKS.md between its `bench:functions` markers.
Run it with `make bench-functions` (release builds first; the bed's package through PYTHONPATH=tests).
"""

import json
import os
import queue
import statistics
import subprocess
import sys
import time
import zipfile
from io import BytesIO
from pathlib import Path
from typing import Any

from awsbed import REPO, aws, seed
from awsbed.control import Control
from awsbed.process import EmulatorProcess, start_emulator
from awsbed.runtime_api import RuntimeApi
from awsbed.stamps import commit, machine, percentile, rewrite_section, today

ROOT = REPO
COLD_STARTS = int(os.environ.get("COLD_STARTS", "30"))
WARM_INVOCATIONS = int(os.environ.get("WARM_INVOCATIONS", "400"))
SCALES = [int(n) for n in os.environ.get("SCALES", "10,100,1000").split(",") if n]
BEGIN, END = "<!-- bench:functions begin -->", "<!-- bench:functions end -->"


# ---- the emulator ------------------------------------------------------------------------------
class Emulator:
    """The emulator the functions call, with clients to seed it and its request log to count calls."""

    def __init__(self) -> None:
        self.process: EmulatorProcess = start_emulator()
        self.url = self.process.url
        self.ec, self.ssm, self.r53 = aws.clients(self.url, attempts=2)
        self.control = Control(self.url)

    def groups(self, n: int, prefix: str) -> str:
        """n replication groups, each with its parameter holding its primary: (REDIS_TARGETS)."""
        pairs = []
        for i in range(n):
            gid = f"{prefix}{i:04d}"
            seed.create_group(self.ec, gid, description="bench")
            seed.publish_primary(self.ec, self.ssm, gid, f"/bench/{gid}")
            pairs.append(f"{gid}=/bench/{gid}")
        return ",".join(pairs)


# ---- one function process ----------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """On-CPU time of every thread of `pid`, in seconds (schedstat: nanoseconds)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError):
            pass
    return total / 1e9


def peak_rss_mib(pid: int) -> float:
    """Peak resident memory (VmHWM) of `pid`, in MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Function:
    """How to start one function (Rust binary or baseline) with its environment."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], event: Any) -> None:
        self.name, self.argv, self.env, self.event = name, argv, env, event

    def spawn(self, emulator: Emulator) -> tuple[subprocess.Popen[bytes], RuntimeApi, float]:
        """Starts the process against a Runtime API of its own: (process, api, spawn time)."""
        api = RuntimeApi()
        env = {
            "PATH": os.environ.get("PATH", ""),
            "AWS_LAMBDA_RUNTIME_API": api.address,
            "AWS_LAMBDA_FUNCTION_NAME": "bench",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            **aws.dummy_settings(emulator.url),
            **self.env,
        }
        started = time.monotonic()
        quiet = None if os.environ.get("BENCH_DEBUG") else subprocess.DEVNULL
        proc = subprocess.Popen(self.argv, env=env, stdout=quiet, stderr=quiet)
        return proc, api, started


def stop(proc: subprocess.Popen[bytes], api: RuntimeApi) -> None:
    """Kill the function process and stop its Runtime API."""
    proc.kill()
    proc.wait()
    api.stop()


def cold(fn: Function, emulator: Emulator, attempt: int = 1) -> tuple[float, float, Any]:
    """One cold start: (spawn -> first /next, spawn -> first answer, the answer); one retry on a hang."""
    proc, api, started = fn.spawn(emulator)
    try:
        try:
            at, kind, body = api.invoke(fn.event, timeout=20)
        except queue.Empty:
            state = "exited" if proc.poll() is not None else "running"
            print(f"{fn.name}: no answer within 20 s (process {state}, /next seen: {api.first_next is not None})")
            if attempt > 1:
                raise
            stop(proc, api)
            return cold(fn, emulator, attempt + 1)
        if kind != "response":
            sys.exit(f"{fn.name}: the invocation failed: {body}")
        assert api.first_next is not None  # it asked for the event it answered
        return api.first_next - started, at - started, body
    finally:
        stop(proc, api)


def warm(fn: Function, emulator: Emulator) -> dict[str, Any]:
    """WARM_INVOCATIONS in one process: CPU per invocation, wall times, peak RSS, the AWS calls of one."""
    proc, api, _ = fn.spawn(emulator)
    try:
        api.invoke(fn.event)
        api.invoke(fn.event)
        emulator.control.clear_requests()
        api.invoke(fn.event)
        calls = [r["operation"] for r in emulator.control.requests()]
        cpu0 = cpu_seconds(proc.pid)
        walls = []
        for _ in range(WARM_INVOCATIONS):
            sent = time.monotonic()
            at, _, _ = api.invoke(fn.event)
            walls.append(at - sent)
        cpu = (cpu_seconds(proc.pid) - cpu0) / WARM_INVOCATIONS
        return {"cpu_ms": cpu * 1000, "wall": walls, "rss": peak_rss_mib(proc.pid), "calls": calls}
    finally:
        stop(proc, api)


def scale(fn: Function, emulator: Emulator, n: int, targets: str) -> tuple[float, list[str]]:
    """One no-change reconcile of `n` groups: (seconds, the AWS calls)."""
    f = Function(fn.name, fn.argv, {**fn.env, "REDIS_TARGETS": targets}, fn.event)
    proc, api, _ = f.spawn(emulator)
    try:
        emulator.control.clear_requests()
        sent = time.monotonic()
        at, kind, body = api.invoke(f.event, timeout=300)
        if kind != "response":
            sys.exit(f"{fn.name} at scale {n}: {body}")
        calls = [r["operation"] for r in emulator.control.requests()]
        return at - sent, calls
    finally:
        stop(proc, api)


def sizes(binary: Path) -> tuple[int, int]:
    """(bytes of the binary, bytes of its zip as Lambda takes it)."""
    raw = binary.stat().st_size
    buf = BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.write(binary, "bootstrap")
    return raw, len(buf.getvalue())


def count(calls: list[str]) -> str:
    """'1 DescribeReplicationGroups, 1 GetParameters': how many calls of each operation."""
    out: dict[str, int] = {}
    for c in calls:
        out[c] = out.get(c, 0) + 1
    return ", ".join(f"{n} {op.split(':')[-1]}" for op, n in sorted(out.items()))


def main() -> None:
    """Measure both functions and their baselines; print the section and write it into BENCHMARKS.md."""
    emulator = Emulator()
    targets = emulator.groups(1, "orders")
    zone = seed.weighted_pair(emulator.r53)
    with open(ROOT / "events/bluegreen-rollback/alarm-action-metric-alarm.json") as f:
        alarm = json.load(f)
    rollback_env = {
        "HOSTED_ZONE_ID": zone,
        "RECORD_NAME": "app.example.com",
        "ALARM_NAMES": "app-green-5xx",
    }
    release = ROOT / "target/release"
    base = [sys.executable, str(ROOT / "bench/baseline/bootstrap.py")]
    pairs = [
        (
            Function("redis-reconciler", [str(release / "redis-reconciler")], {"REDIS_TARGETS": targets}, {}),
            Function("boto3 reconciler", [*base, "reconciler"], {"REDIS_TARGETS": targets}, {}),
        ),
        (
            Function("bluegreen-rollback", [str(release / "bluegreen-rollback")], rollback_env, alarm),
            Function("boto3 rollback", [*base, "rollback"], rollback_env, alarm),
        ),
    ]
    results = {}
    for rust, py in pairs:
        for fn in (rust, py):
            results[fn.name] = {"init": [], "cold": []}
        for _ in range(COLD_STARTS):
            for fn in (rust, py):  # interleaved
                init, first, _ = cold(fn, emulator)
                results[fn.name]["init"].append(init)
                results[fn.name]["cold"].append(first)
        for fn in (rust, py):
            results[fn.name].update(warm(fn, emulator))
            print(f"{fn.name}: measured", flush=True)
        results[rust.name]["size"] = sizes(Path(rust.argv[0]))

    scale_rows = []
    for n in SCALES:
        many = emulator.groups(n, f"s{n}-")
        row = [n]
        for fn in (pairs[0][0], pairs[0][1]):
            took, calls = scale(fn, emulator, n, many)
            row += [took, count(calls)]
        scale_rows.append(row)
        print(f"scale {n}: measured", flush=True)

    def med(name: str, key: str) -> float:
        return statistics.median(results[name][key]) * 1000

    def p90(name: str, key: str) -> float:
        return percentile(results[name][key], 90) * 1000

    lines = [
        BEGIN,
        f"`make bench-functions` on {today()}, commit {commit()}; "
        f"{machine()}; {COLD_STARTS} cold starts, "
        f"{WARM_INVOCATIONS} warm invocations, release builds, loopback.",
        "",
        "| | redis-reconciler | boto3 reconciler | ratio | bluegreen-rollback | boto3 rollback | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    (r1, b1), (r2, b2) = [(r.name, p.name) for r, p in pairs]

    def row(label: str, f: Any, fmt: str = "{:.1f}") -> None:
        cells = []
        for r, b in ((r1, b1), (r2, b2)):
            rv, bv = f(r), f(b)
            cells += [fmt.format(rv), fmt.format(bv), f"{bv / rv:.1f}x" if rv else "-"]
        lines.append(f"| {label} | {' | '.join(cells)} |")

    row("cold start, median (ms)", lambda n: med(n, "cold"))
    row("cold start, p90 (ms)", lambda n: p90(n, "cold"))
    row("init alone, median (ms)", lambda n: med(n, "init"))
    row("CPU per warm invocation (ms)", lambda n: results[n]["cpu_ms"], "{:.2f}")
    row("wall per warm invocation, median (ms)", lambda n: statistics.median(results[n]["wall"]) * 1000, "{:.2f}")
    row("wall per warm invocation, p99 (ms)", lambda n: percentile(results[n]["wall"], 99) * 1000, "{:.2f}")
    row("peak RSS (MiB)", lambda n: results[n]["rss"])
    lines += [
        "",
        "| | redis-reconciler | bluegreen-rollback |",
        "|---|---|---|",
        f"| binary (bytes) | {results[r1]['size'][0]:,} | {results[r2]['size'][0]:,} |",
        f"| zip, deflate -9 (bytes) | {results[r1]['size'][1]:,} | {results[r2]['size'][1]:,} |",
        f"| AWS calls per no-change invocation | {count(results[r1]['calls'])} | {count(results[r2]['calls'])} |",
        f"| the same, boto3 | {count(results[b1]['calls'])} | {count(results[b2]['calls'])} |",
        "",
        "| groups | redis-reconciler (s) | its AWS calls | boto3 (s) | its AWS calls |",
        "|---|---|---|---|---|",
    ]
    for n, rt, rc, bt, bc in scale_rows:
        lines.append(f"| {n:,} | {rt:.2f} | {rc} | {bt:.2f} | {bc} |")
    lines.append(END)
    section = "\n".join(lines)
    print("\n" + section)
    if rewrite_section(ROOT / "BENCHMARKS.md", BEGIN, END, section):
        print("\nwrote the section into BENCHMARKS.md")


if __name__ == "__main__":
    main()
