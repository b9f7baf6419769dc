"""`make bench-functions`: speed, memory and size of both functions, side by side with a boto3
baseline (bench/baseline/), all on 127.0.0.1, release builds.

A small Lambda Runtime API (this file) hands events to one function process at a time and times
what a caller sees; the AWS emulator answers the AWS calls. For each function and its baseline,
interleaved:

- cold start: process spawn -> first response of a no-change invocation (COLD_STARTS times,
  default 30),
  and init alone (spawn -> first /next);
- warm: WARM_INVOCATIONS (default 400) no-change invocations in one process: CPU time (user +
  system, all threads, /proc/<pid>/task/*/schedstat) per invocation, and wall latency median and p99;
- peak RSS (VmHWM), binary and zip size;
- AWS API calls per invocation, counted at the emulator;
- scale (reconciler): one no-change reconcile of 10, 100 and 1,000 groups: API calls and time.

It prints a Markdown section and rewrites BENCHMARKS.md between its `bench:functions` markers.
"""

import datetime
import http.server
import io
import json
import math
import os
import platform
import queue
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_PY = ROOT / ".venv/bin/python"
COLD_STARTS = int(os.environ.get("COLD_STARTS", "30"))
WARM_INVOCATIONS = int(os.environ.get("WARM_INVOCATIONS", "400"))
SCALES = [int(n) for n in os.environ.get("SCALES", "10,100,1000").split(",") if n]
BEGIN, END = "<!-- bench:functions begin -->", "<!-- bench:functions end -->"
ACCOUNT = "123456789012"


# ---- a Lambda Runtime API --------------------------------------------------------------------
class RuntimeApi:
    """The four Runtime API endpoints, for one function process: each process gets its own, so a
    killed process's last `/next`, still in flight, can never take the next process's event."""

    def __init__(self):
        self.events = queue.Queue()
        self.done = {}
        self.first_next = None
        self.lock = threading.Lock()
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                if not self.path.endswith("/runtime/invocation/next"):
                    return self.reply(404, b"{}")
                with api.lock:
                    if api.first_next is None:
                        api.first_next = time.monotonic()
                request_id, body = api.events.get()
                headers = {
                    "Lambda-Runtime-Aws-Request-Id": request_id,
                    "Lambda-Runtime-Deadline-Ms": str(int((time.time() + 60) * 1000)),
                    "Lambda-Runtime-Invoked-Function-Arn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:bench",
                    "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000;Sampled=0",
                }
                self.reply(200, body, headers)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                parts = self.path.split("/")
                if "invocation" in parts:
                    request_id, kind = parts[-2], parts[-1]
                    waiting = api.done.get(request_id)
                    if waiting is not None:
                        waiting.put((time.monotonic(), kind, body))
                elif self.path.endswith("/init/error"):
                    print(f"init error: {body.decode()}", file=sys.stderr)
                self.reply(202, b"{}")

            def reply(self, status, body, headers=None):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                # A killed function process leaves its pending /next answered into a closed socket.
                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def invoke(self, event, timeout=60):
        """Queues `event`; returns (monotonic time of the answer, kind, parsed body)."""
        request_id = str(uuid.uuid4())
        self.done[request_id] = queue.Queue()
        self.events.put((request_id, json.dumps(event).encode()))
        try:
            at, kind, body = self.done[request_id].get(timeout=timeout)
        finally:
            self.done.pop(request_id, None)
        return at, kind, json.loads(body or b"null")


# ---- the emulator ------------------------------------------------------------------------------
class Emulator:
    def __init__(self):
        self.proc = subprocess.Popen(
            [str(VENV_PY), str(ROOT / "tests/emulator/failover_emulator.py"), "--port", "0", "--parent-watch"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = self.proc.stdout.readline().strip()
        if not line.startswith("FAILOVER_EMULATOR_READY "):
            sys.exit(f"emulator did not start: {line!r}")
        self.url = line.split(" ", 1)[1]
        import boto3

        kwargs = dict(
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        self.ec = boto3.client("elasticache", **kwargs)
        self.ssm = boto3.client("ssm", **kwargs)
        self.r53 = boto3.client("route53", **kwargs)

    def requests(self):
        with urllib.request.urlopen(f"{self.url}/_failover/requests") as resp:
            return json.loads(resp.read())

    def clear(self):
        urllib.request.urlopen(urllib.request.Request(f"{self.url}/_failover/requests", method="DELETE")).read()

    def groups(self, n, prefix):
        """n replication groups, each with its parameter holding its primary: (REDIS_TARGETS)."""
        pairs = []
        for i in range(n):
            gid = f"{prefix}{i:04d}"
            self.ec.create_replication_group(
                ReplicationGroupId=gid,
                ReplicationGroupDescription="bench",
                Engine="redis",
                ReplicasPerNodeGroup=1,
                AutomaticFailoverEnabled=True,
            )
            member = self.ec.describe_replication_groups(ReplicationGroupId=gid)["ReplicationGroups"][0]
            member = next(m for m in member["NodeGroups"][0]["NodeGroupMembers"] if m["CurrentRole"] == "primary")
            value = f"{member['ReadEndpoint']['Address']}:{member['ReadEndpoint']['Port']}"
            self.ssm.put_parameter(Name=f"/bench/{gid}", Value=value, Type="String", Overwrite=True)
            pairs.append(f"{gid}=/bench/{gid}")
        return ",".join(pairs)

    def zone(self):
        zid = self.r53.create_hosted_zone(Name="example.com.", CallerReference=str(uuid.uuid4()))["HostedZone"]["Id"]
        zid = zid.split("/")[-1]
        changes = [
            {
                "Action": "CREATE",
                "ResourceRecordSet": {
                    "Name": "app.example.com.",
                    "Type": "A",
                    "SetIdentifier": colour,
                    "Weight": weight,
                    "TTL": 60,
                    "ResourceRecords": [{"Value": ip}],
                },
            }
            for colour, weight, ip in (("blue", 100, "192.0.2.10"), ("green", 0, "198.51.100.20"))
        ]
        self.r53.change_resource_record_sets(HostedZoneId=zid, ChangeBatch={"Changes": changes})
        return zid


# ---- one function process ----------------------------------------------------------------------
def cpu_seconds(pid):
    """On-CPU time of every thread of `pid`, in seconds (schedstat: nanoseconds)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError):
            pass
    return total / 1e9


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Function:
    """How to start one function (Rust binary or baseline) with its environment."""

    def __init__(self, name, argv, env, event):
        self.name, self.argv, self.env, self.event = name, argv, env, event

    def spawn(self, emulator):
        """Starts the process against a Runtime API of its own: (process, api, spawn time)."""
        api = RuntimeApi()
        env = {
            "PATH": os.environ.get("PATH", ""),
            "AWS_LAMBDA_RUNTIME_API": api.address,
            "AWS_LAMBDA_FUNCTION_NAME": "bench",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_ENDPOINT_URL": emulator.url,
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            **self.env,
        }
        started = time.monotonic()
        quiet = None if os.environ.get("BENCH_DEBUG") else subprocess.DEVNULL
        proc = subprocess.Popen(self.argv, env=env, stdout=quiet, stderr=quiet)
        return proc, api, started


def percentile(values, p):
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def stop(proc, api):
    proc.kill()
    proc.wait()
    api.server.shutdown()
    api.server.server_close()


def cold(fn, emulator, attempt=1):
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
        return api.first_next - started, at - started, body
    finally:
        stop(proc, api)


def warm(fn, emulator):
    proc, api, _ = fn.spawn(emulator)
    try:
        api.invoke(fn.event)
        api.invoke(fn.event)
        emulator.clear()
        api.invoke(fn.event)
        calls = [r["operation"] for r in emulator.requests()]
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


def scale(fn, emulator, n, targets):
    f = Function(fn.name, fn.argv, {**fn.env, "REDIS_TARGETS": targets}, fn.event)
    proc, api, _ = f.spawn(emulator)
    try:
        emulator.clear()
        sent = time.monotonic()
        at, kind, body = api.invoke(f.event, timeout=300)
        if kind != "response":
            sys.exit(f"{fn.name} at scale {n}: {body}")
        calls = [r["operation"] for r in emulator.requests()]
        return at - sent, calls
    finally:
        stop(proc, api)


def sizes(binary):
    raw = binary.stat().st_size
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.write(binary, "bootstrap")
    return raw, len(buf.getvalue())


def count(calls):
    out = {}
    for c in calls:
        out[c] = out.get(c, 0) + 1
    return ", ".join(f"{n} {op.split(':')[-1]}" for op, n in sorted(out.items()))


def main():
    emulator = Emulator()
    targets = emulator.groups(1, "orders")
    zone = emulator.zone()
    with open(ROOT / "events/bluegreen-rollback/alarm-action-metric-alarm.json") as f:
        alarm = json.load(f)
    rollback_env = {
        "HOSTED_ZONE_ID": zone,
        "RECORD_NAME": "app.example.com",
        "ALARM_NAMES": "app-green-5xx",
    }
    release = ROOT / "target/release"
    base = [str(VENV_PY), str(ROOT / "bench/baseline/bootstrap.py")]
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

    def med(name, key):
        return statistics.median(results[name][key]) * 1000

    def p90(name, key):
        return percentile(results[name][key], 90) * 1000

    lines = [
        BEGIN,
        f"`make bench-functions` on {datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d')}, commit {commit()}; "
        f"{os.cpu_count()} vCPU {cpu_model()} ({platform.machine()}); {COLD_STARTS} cold starts, "
        f"{WARM_INVOCATIONS} warm invocations, release builds, loopback.",
        "",
        "| | redis-reconciler | boto3 reconciler | ratio | bluegreen-rollback | boto3 rollback | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    (r1, b1), (r2, b2) = [(r.name, p.name) for r, p in pairs]

    def row(label, f, fmt="{:.1f}"):
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
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text()
    if BEGIN in text and END in text:
        path.write_text(text[: text.index(BEGIN)] + section + text[text.index(END) + len(END) :])
        print(f"\nwrote the section into {path.relative_to(ROOT)}")


def commit():
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", ".", ":!BENCHMARKS.md"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    return out.stdout.strip() + (" + uncommitted changes" if dirty.strip() else "")


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        return ""


if __name__ == "__main__":
    main()
