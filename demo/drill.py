"""The failover drill behind `make demo`: a Redis primary dies, the reconciler publishes the new
primary, an application rides through it, and a bad green deployment is rolled back.

Everything runs on 127.0.0.1 with free ports: the AWS emulator (tests/awsbed), two real
redis-server processes, both Lambda functions under `cargo lambda watch`, and the sample
application from crates/endpoint-client. Every process it starts is stopped on exit, on failure
and on Ctrl-C. It ends with a timeline, the metrics the functions emitted (the EMF lines they
printed), and exits 0 only if every step did what it should.

Run it with `make demo` (which installs what it needs, builds the release binaries first and gives
it the bed's package, tests/awsbed, through PYTHONPATH).
"""

import datetime
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from awsbed import REPO, aws, redis, seed
from awsbed.control import Control
from awsbed.process import Processes, free_port, start_emulator, wait_listening

ROOT = REPO
VENV = ROOT / ".venv" / "bin"
EVENTS = ROOT / "events"
PARAM = "/app/orders/redis"
GROUP = "orders"
RECORD = "app.example.com."


class DrillFailed(Exception):
    """A step did not do what it should."""


class Drill:
    """The drill's steps, what they started (stopped at the end), and what they saw."""

    def __init__(self) -> None:
        self.processes = Processes()  # stopped at exit, newest first
        self.t0: float | None = None  # the moment the primary died
        self.timeline: list[tuple[float | None, str, str]] = []  # (seconds since failure, event, what changed)
        self.checks: list[tuple[bool, str]] = []  # (ok, description)
        self.app_events: list[dict[str, Any]] = []
        self.app_lock = threading.Lock()
        self.invoked: list[tuple[str, str]] = []  # (function, event file), in order
        self.metrics: list[dict[str, Any]] = []  # the EMF documents the functions printed

    # ---- bookkeeping ------------------------------------------------------------------------
    def note(self, event: str, change: str = "") -> None:
        at = None if self.t0 is None else time.monotonic() - self.t0
        self.timeline.append((at, event, change))
        stamp = "        " if at is None else f"{at:+7.2f}s"
        print(f"  {stamp}  {event}" + (f"  ->  {change}" if change else ""), flush=True)

    def check(self, ok: object, description: str) -> None:
        self.checks.append((bool(ok), description))
        if not ok:
            raise DrillFailed(description)

    # ---- the test bed -----------------------------------------------------------------------
    def start_emulator(self) -> None:
        try:
            emulator = start_emulator(processes=self.processes)
        except RuntimeError as err:
            raise DrillFailed(str(err)) from None
        self.emulator_url = emulator.url
        self.ec, self.ssm, self.r53 = aws.clients(self.emulator_url, attempts=2)
        self.control = Control(self.emulator_url)
        self.note("emulator up", self.emulator_url)

    def start_redis(self) -> None:
        try:
            primary, replica = redis.start_pair(self.processes)
        except RuntimeError as err:
            raise DrillFailed(str(err)) from None
        self.primary, self.primary_port, self.replica_port = primary.proc, primary.port, replica.port
        self.note("redis primary + replica up", f"{primary.address} -> {replica.address}")

    def seed(self) -> None:
        seed.create_group(self.ec, GROUP, description="failover drill")
        self.control.set_endpoints(
            GROUP, {f"{GROUP}-001": ("127.0.0.1", self.primary_port), f"{GROUP}-002": ("127.0.0.1", self.replica_port)}
        )
        self.zone = seed.weighted_pair(self.r53, RECORD)
        self.note("emulator seeded", f"group {GROUP} -> the two redis servers; zone {self.zone}: blue 100 / green 0")

    def start_lambdas(self) -> None:
        self.lambda_port = free_port()
        env = dict(
            os.environ,
            AWS_ENDPOINT_URL=self.emulator_url,
            REDIS_REPLICATION_GROUP_ID=GROUP,
            REDIS_ENDPOINT_PARAMETER_NAME=PARAM,
            VERIFY_ROLE="true",
            SETTLE_TIMEOUT_SECS="20",
            HOSTED_ZONE_ID=self.zone,
            RECORD_NAME=RECORD,
            ALARM_NAMES="app-green-5xx,app-green-health",
            # cargo lambda watch invokes with the ARN "function-arn", which names no account; the
            # sample alarm events are from this one.
            LOCAL_ACCOUNT_ID="123456789012",
        )
        # Not a `with` block: the file is cargo lambda watch's stdout for as long as the watcher runs.
        self.watch_log = open(ROOT / "target" / "demo-lambdas.log", "w")  # noqa: SIM115
        self.processes.spawn(
            [
                str(VENV / "cargo-lambda"),
                "lambda",
                "watch",
                "--release",
                "--locked",
                "--ignore-changes",
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
                str(self.lambda_port),
            ],
            cwd=ROOT,
            env=env,
            stdout=self.watch_log,
            stderr=subprocess.STDOUT,
        )
        if not wait_listening(self.lambda_port, 120):
            raise DrillFailed("cargo lambda watch did not listen within 120 s (see target/demo-lambdas.log)")
        self.note("both functions served by cargo lambda watch", f"127.0.0.1:{self.lambda_port}")

    def invoke(self, function: str, event: str, happened_at: float | None = None) -> dict[str, Any]:
        """Invokes `function` with events/<function>/<event>, its own times (SNS Timestamp, EventBridge
        time, the alarm's state change) set to `happened_at` (epoch seconds; default now), as AWS would."""
        path = dated(EVENTS / function / event, time.time() if happened_at is None else happened_at)
        self.invoked.append((function, event))
        out = subprocess.run(
            [
                str(VENV / "cargo-lambda"),
                "lambda",
                "invoke",
                function,
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
                str(self.lambda_port),
                "--data-file",
                str(path),
                "--output-format",
                "json",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if out.returncode != 0:
            raise DrillFailed(f"{function} failed on {event}: {out.stderr.strip() or out.stdout.strip()}")
        return json.loads(out.stdout)

    def parameter(self) -> str:
        return self.ssm.get_parameter(Name=PARAM)["Parameter"]["Value"]

    def weights(self) -> tuple[int | None, int | None]:
        w = seed.pair_weights(self.r53, self.zone, RECORD)
        return w.get("blue"), w.get("green")

    # ---- the application ---------------------------------------------------------------------
    def start_app(self) -> None:
        env = dict(os.environ, AWS_ENDPOINT_URL=self.emulator_url)
        app = self.processes.spawn(
            [str(ROOT / "target/release/examples/sample-app"), "--parameter", PARAM, "--interval-ms", "50"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.app = app

        def read() -> None:
            for line in app.stdout:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                with self.app_lock:
                    self.app_events.append(event)

        threading.Thread(target=read, daemon=True).start()
        self.wait_for_app(lambda e: e.get("event") == "write-ok", 15, "the application never wrote to the primary")
        self.note("sample application writing every 50 ms", f"to {PARAM}")

    def wait_for_app(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float, failure: str, after: float = 0.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.app_lock:
                for e in self.app_events:
                    if e.get("t_ms", 0) / 1000 >= after and predicate(e):
                        return e
            time.sleep(0.02)
        raise DrillFailed(failure)

    # ---- the drill ---------------------------------------------------------------------------
    def run(self) -> None:
        print("== setting up (127.0.0.1 only)")
        self.start_emulator()
        self.start_redis()
        self.seed()
        self.start_lambdas()
        first = self.invoke("redis-reconciler", "eventbridge-scheduled.json")
        primary = f"127.0.0.1:{self.primary_port}"
        self.check(
            first["results"][0]["current"] == primary == self.parameter(),
            "the first scheduled reconcile publishes the primary",
        )
        self.note("scheduled reconcile", f"{PARAM} = {primary} ({first['results'][0]['action']})")
        self.start_app()
        time.sleep(1.0)

        print("== the primary dies")
        wall_t0 = time.time()
        self.t0 = time.monotonic()
        os.killpg(self.primary.pid, signal.SIGKILL)
        self.primary.wait()
        self.note("primary killed", f"127.0.0.1:{self.primary_port} is gone")
        redis.command(self.replica_port, "REPLICAOF", "NO", "ONE")
        self.note("replica promoted (REPLICAOF NO ONE)", f"127.0.0.1:{self.replica_port} is master")
        self.control.failover(GROUP, new_primary=f"{GROUP}-002")
        self.note("ElastiCache marks the failover", f"{GROUP}-002 CurrentRole=primary")
        # SNS stamps the FailoverComplete notification when ElastiCache publishes it: now.
        notified = time.time()
        result = self.invoke("redis-reconciler", "sns-elasticache-failover-complete.json", notified)["results"][0]
        replica = f"127.0.0.1:{self.replica_port}"
        self.check(
            result["action"] == "updated" and result["current"] == replica == self.parameter(),
            "FailoverComplete moves the parameter to the new primary",
        )
        self.param_updated_at = time.monotonic() - self.t0
        self.note("reconciler on ElastiCache:FailoverComplete", f"{PARAM}: {result['previous']} -> {result['current']}")
        recovered = self.wait_for_app(
            lambda e: e.get("event") == "write-ok" and e.get("endpoint") == replica,
            30,
            "the application did not write to the new primary within 30 s",
            after=wall_t0,
        )
        self.first_write_at = recovered["t_ms"] / 1000 - wall_t0
        self.note("application writes again", f"to {replica}")
        again = self.invoke("redis-reconciler", "eventbridge-scheduled.json")["results"][0]
        self.check(again["action"] == "unchanged", "the next scheduled reconcile writes nothing")

        print("== a bad green deployment")
        shifted = self.invoke("bluegreen-rollback", "command-shift-25.json")
        self.check(
            (shifted["blue_weight"], shifted["green_weight"]) == (75, 25) == self.weights(), "shift 25 % to green"
        )
        self.note("shift command", "blue 75 / green 25")
        self.note("alarm app-green-5xx -> ALARM", "CloudWatch invokes the rollback")
        rolled = self.invoke("bluegreen-rollback", "alarm-action-metric-alarm.json", time.time())
        self.check(
            rolled["action"] == "rolled-back" and self.weights() == (100, 0),
            "the green alarm rolls traffic back to blue",
        )
        self.note("rollback on the alarm", f"rolled back: blue 100 / green 0 ({rolled.get('change_id')})")
        again = self.invoke("bluegreen-rollback", "alarm-action-metric-alarm.json")
        self.check(again["action"] == "already-rolled-back", "the same alarm again writes nothing")

        self.app.stdin.close()
        self.app.send_signal(signal.SIGTERM)
        self.app.wait(timeout=10)
        summary = self.wait_for_app(lambda e: e.get("event") == "summary", 5, "the application printed no summary")
        # Successes counted after the failure only: the summary's writes_ok includes those before it.
        with self.app_lock:
            ok_after = [
                e
                for e in self.app_events
                if e.get("event") in ("write-ok", "heartbeat")
                and e.get("t_ms", 0) / 1000 >= wall_t0
                and e.get("endpoint") == replica
            ]
        self.check(
            summary["writes_failed"] > 0 and len(ok_after) > 0,
            "the application saw the outage and wrote to the new primary after it",
        )
        self.summary = summary
        self.metrics = emf_documents(ROOT / "target" / "demo-lambdas.log")
        self.check(
            len(self.metrics) == len(self.invoked)
            and all(d["FunctionName"] == f for d, (f, _) in zip(self.metrics, self.invoked, strict=False)),
            f"each of the {len(self.invoked)} invocations printed one EMF metrics document, in order "
            f"(found {len(self.metrics)} in target/demo-lambdas.log)",
        )
        runs = list(zip(self.metrics, self.invoked, strict=True))
        failover = next(d for d, (_, event) in runs if event == "sns-elasticache-failover-complete.json")
        latency = failover.get("PublishLatency", -1)
        self.check(
            failover.get("TargetsUpdated") == 1 and 0 <= latency <= self.param_updated_at * 1000,
            "the reconciler's PublishLatency (notification -> write) is within the drill's own measure",
        )
        rolled = next(d for d, (_, event) in runs if event.startswith("alarm"))
        self.check(
            rolled.get("RolledBack") == 1 and "RollbackLatency" in rolled,
            "the rollback reports RollbackLatency (alarm state change -> change accepted)",
        )

    def report(self) -> None:
        print("\n== timeline")
        print(f"  {'t since failure':>16}  {'event':<45}  what changed")
        for at, event, change in self.timeline:
            stamp = "" if at is None else f"{at:+.2f} s"
            print(f"  {stamp:>16}  {event:<45}  {change}")
        if hasattr(self, "summary"):
            s = self.summary
            print("\n== recovery")
            print(f"  failure -> parameter updated:     {self.param_updated_at:.2f} s")
            print(f"  failure -> first successful write: {self.first_write_at:.2f} s")
            print(
                f"  application: {s['writes_ok']} writes ok, {s['writes_failed']} failed, "
                f"longest time without a working primary {s['longest_outage_ms'] / 1000:.2f} s"
            )
            with open(ROOT / "target" / "demo-result.json", "w") as f:
                json.dump({"param_updated_s": self.param_updated_at, "first_write_s": self.first_write_at, **s}, f)
        if self.metrics:
            print("\n== metrics the functions emitted (EMF, one document per invocation)")
            for d, (_, event) in zip(self.metrics, self.invoked, strict=False):
                print(f"  {event:<45}  {describe_metrics(d)}")
        print("\n== checks")
        for ok, description in self.checks:
            print(f"  {'PASS' if ok else 'FAIL'}  {description}")


def dated(path: Path, at: float) -> Path:
    """A copy of the sample event at `path` with its own times set to `at` (epoch seconds), in target/."""
    event = json.loads(path.read_text())
    when = datetime.datetime.fromtimestamp(at, datetime.UTC)
    for record in event.get("Records", []):
        record["Sns"]["Timestamp"] = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    if "time" in event:
        event["time"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    state = event.get("alarmData", {}).get("state")
    if state is not None:
        state["timestamp"] = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}+0000"
    out = ROOT / "target" / "drill-events" / path.name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(event))
    return out


def emf_documents(log: Path) -> list[dict[str, Any]]:
    """The EMF documents in the functions' output: the lines that are JSON objects with an _aws member."""
    docs = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{") and '"_aws"' in line:
            docs.append(json.loads(line))
    return docs


def describe_metrics(doc: dict[str, Any]) -> str:
    """One line per document: the function, the counts that are not 0, and the latencies."""
    directive = doc["_aws"]["CloudWatchMetrics"][0]
    values = []
    for m in directive["Metrics"]:
        name, value = m["Name"], doc[m["Name"]]
        if m.get("Unit") == "Milliseconds":
            values.append(f"{name} {value:.0f} ms")
        elif value and name != "ColdStart":
            values.append(f"{name} {value:g}")
    cold = " (cold start)" if doc.get("ColdStart") else ""
    return f"{doc['FunctionName']:<20} {', '.join(values)}{cold}"


def main() -> int:
    aws.hermetic()  # dummy credentials, no profile, no proxies: for the drill and every process it starts
    drill = Drill()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    code = 1
    try:
        drill.run()
        code = 0
    except DrillFailed as failure:
        print(f"\nDRILL FAILED: {failure}", file=sys.stderr)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        code = 130
    finally:
        drill.processes.stop_all()
        drill.report()
    print("\nDRILL PASSED" if code == 0 else "\nDRILL FAILED")
    return code


if __name__ == "__main__":
    sys.exit(main())
