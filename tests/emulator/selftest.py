"""Self-check for failover_emulator.py.

Run: /tmp/probe-venv/bin/python tests/emulator/selftest.py   (any Python with requirements.txt)

Starts the emulator as a subprocess (with --parent-watch), drives it with boto3 and
the /_failover/ control API, and exits non-zero if any check fails. Only talks to
127.0.0.1.
"""

import json
import os
import select
import signal
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request

# Hermetic: no proxies, no local AWS config, nothing leaves 127.0.0.1.
for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
    os.environ.pop(var, None)
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
os.environ["AWS_CONFIG_FILE"] = os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_ENDPOINT_URL", None)

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

EMULATOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "failover_emulator.py")
NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def start_emulator(*extra_args):
    """Start the emulator; return (process, base_url, seconds until READY)."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, EMULATOR, *extra_args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    line = proc.stdout.readline().decode() if ready else ""
    if not line.startswith("FAILOVER_EMULATOR_READY http://127.0.0.1:"):
        proc.kill()
        raise RuntimeError(f"emulator did not announce readiness, got {line!r}")
    return proc, line.split()[1], time.monotonic() - started


class SelfTest:
    """The checks; each test_* method starts from a freshly reset emulator."""

    def __init__(self, url):
        self.url = url
        config = Config(retries={"total_max_attempts": 1, "mode": "standard"})
        kwargs = dict(
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=config,
        )
        self.ec = boto3.client("elasticache", **kwargs)
        self.ssm = boto3.client("ssm", **kwargs)
        self.r53 = boto3.client("route53", **kwargs)

    # ---- helpers ---------------------------------------------------------

    def http(self, method, path, payload=None):
        """Plain HTTP to the emulator; returns (status, parsed JSON body or None)."""
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with NO_PROXY_OPENER.open(request, timeout=10) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as err:
            status, body = err.code, err.read()
        try:
            return status, json.loads(body) if body else None
        except ValueError:
            return status, body

    def control(self, path, payload=None, method="POST", expect=200):
        """Call the control API and check the status code."""
        status, body = self.http(method, "/_failover/" + path, payload)
        check(status == expect, f"{method} /_failover/{path}: status {status} != {expect}: {body}")
        return body

    def create_orders(self):
        """Cluster-mode-disabled group 'orders': orders-001 primary, -002/-003 replicas."""
        self.ec.create_replication_group(
            ReplicationGroupId="orders",
            ReplicationGroupDescription="orders cache",
            Engine="redis",
            CacheNodeType="cache.t3.micro",
            ReplicasPerNodeGroup=2,
            AutomaticFailoverEnabled=True,
        )

    def roles(self, group_id="orders"):
        """{member: CurrentRole} from DescribeReplicationGroups (None if absent)."""
        group = self.ec.describe_replication_groups(ReplicationGroupId=group_id)["ReplicationGroups"][0]
        return roles_of(group)

    def error_code(self, call, *args, **kwargs):
        """Run a boto3 call that must fail; return (error code, HTTP status)."""
        try:
            call(*args, **kwargs)
        except ClientError as err:
            return err.response["Error"]["Code"], err.response["ResponseMetadata"]["HTTPStatusCode"]
        raise AssertionError(f"{call.__name__} did not fail")

    # ---- ElastiCache -----------------------------------------------------

    def test_test_failover(self):
        self.create_orders()
        check_eq(self.roles(), {"orders-001": "primary", "orders-002": "replica", "orders-003": "replica"})
        resp = self.ec.test_failover(ReplicationGroupId="orders", NodeGroupId="0001")
        check_eq(resp["ReplicationGroup"]["ReplicationGroupId"], "orders")
        check_eq(roles_of(resp["ReplicationGroup"])["orders-002"], "primary")
        check_eq(self.roles(), {"orders-001": "replica", "orders-002": "primary", "orders-003": "replica"})
        # and back: the first replica (orders-001) becomes primary again
        self.ec.test_failover(ReplicationGroupId="orders", NodeGroupId="0001")
        check_eq(self.roles()["orders-001"], "primary")
        check_eq(self.error_code(self.ec.test_failover, ReplicationGroupId="nope", NodeGroupId="0001"),
                 ("ReplicationGroupNotFoundFault", 404))
        check_eq(self.error_code(self.ec.test_failover, ReplicationGroupId="orders", NodeGroupId="0009"),
                 ("NodeGroupNotFoundFault", 404))

    def test_test_failover_cluster_mode(self):
        self.ec.create_replication_group(
            ReplicationGroupId="cm", ReplicationGroupDescription="cluster mode", Engine="redis",
            CacheNodeType="cache.t3.micro", ClusterMode="enabled", NumNodeGroups=2, ReplicasPerNodeGroup=1,
        )
        check_eq(self.roles("cm"), {"cm-0001-001": None, "cm-0001-002": None, "cm-0002-001": None, "cm-0002-002": None})
        self.ec.test_failover(ReplicationGroupId="cm", NodeGroupId="0002")
        check_eq(self.roles("cm"), {"cm-0001-001": None, "cm-0001-002": None,
                                    "cm-0002-001": "replica", "cm-0002-002": "primary"})

    def test_modify_primary_cluster_id(self):
        self.create_orders()
        resp = self.ec.modify_replication_group(
            ReplicationGroupId="orders", PrimaryClusterId="orders-003", ApplyImmediately=True
        )
        check_eq(roles_of(resp["ReplicationGroup"]),
                 {"orders-001": "replica", "orders-002": "replica", "orders-003": "primary"})
        check_eq(self.roles()["orders-003"], "primary")
        check_eq(self.error_code(self.ec.modify_replication_group, ReplicationGroupId="orders",
                                 PrimaryClusterId="orders-999", ApplyImmediately=True),
                 ("InvalidParameterValue", 400))
        check_eq(self.error_code(self.ec.modify_replication_group, ReplicationGroupId="nope",
                                 PrimaryClusterId="orders-001", ApplyImmediately=True),
                 ("ReplicationGroupNotFoundFault", 404))

    def test_control_failover(self):
        self.create_orders()
        body = self.control("elasticache/failover", {"replication_group_id": "orders"})
        check_eq(body, {"replication_group_id": "orders", "node_group_id": "0001",
                        "old_primary": "orders-001", "new_primary": "orders-002"})
        body = self.control("elasticache/failover", {"replication_group_id": "orders", "new_primary": "orders-003",
                                                     "node_group_id": "0001"})
        check_eq((body["old_primary"], body["new_primary"]), ("orders-002", "orders-003"))
        check_eq(self.roles(), {"orders-001": "replica", "orders-002": "replica", "orders-003": "primary"})
        self.control("elasticache/failover", {"replication_group_id": "nope"}, expect=404)
        err = self.control("elasticache/failover", {"replication_group_id": "orders", "new_primary": "x"}, expect=404)
        check("error" in err, f"no error key in {err}")

    def test_control_roles_status_endpoints(self):
        self.create_orders()
        self.control("elasticache/roles", {"replication_group_id": "orders",
                                           "roles": {"orders-001": "replica", "orders-002": "replica"}})
        check_eq(self.roles(), {"orders-001": "replica", "orders-002": "replica", "orders-003": "replica"})
        self.control("elasticache/roles", {"replication_group_id": "orders",
                                           "roles": {"orders-001": "primary", "orders-002": "primary"}})
        check_eq(sorted(m for m, r in self.roles().items() if r == "primary"), ["orders-001", "orders-002"])
        self.control("elasticache/roles", {"replication_group_id": "orders", "roles": {"nope": "primary"}},
                     expect=404)

        self.control("elasticache/status", {"replication_group_id": "orders", "status": "modifying"})
        group = self.ec.describe_replication_groups(ReplicationGroupId="orders")["ReplicationGroups"][0]
        check_eq((group["Status"], group["NodeGroups"][0]["Status"]), ("modifying", "modifying"))

        self.control("elasticache/endpoints", {
            "replication_group_id": "orders",
            "members": {"orders-001": {"address": "127.0.0.1", "port": 7001},
                        "orders-002": {"address": "127.0.0.1", "port": 7002}},
            "primary_endpoint": {"address": "127.0.0.1", "port": 7000},
            "reader_endpoint": {"address": "127.0.0.1", "port": 7010},
        })
        group = self.ec.describe_replication_groups(ReplicationGroupId="orders")["ReplicationGroups"][0]
        node_group = group["NodeGroups"][0]
        check_eq(node_group["PrimaryEndpoint"], {"Address": "127.0.0.1", "Port": 7000})
        check_eq(node_group["ReaderEndpoint"], {"Address": "127.0.0.1", "Port": 7010})
        reads = {m["CacheClusterId"]: m["ReadEndpoint"] for m in node_group["NodeGroupMembers"]}
        check_eq(reads["orders-001"], {"Address": "127.0.0.1", "Port": 7001})
        check_eq(reads["orders-002"], {"Address": "127.0.0.1", "Port": 7002})
        check(reads["orders-003"]["Address"].endswith(".cache.amazonaws.com"), "orders-003 endpoint changed")

    # ---- faults ----------------------------------------------------------

    def test_ssm_throttle_fault(self):
        self.ssm.put_parameter(Name="/orders/primary", Value="orders-001", Type="String")
        fault = self.control("faults", {"service": "ssm", "operation": "GetParameter", "status": 400,
                                        "code": "ThrottlingException", "message": "Rate exceeded", "count": 1})
        check(isinstance(fault.get("id"), int), f"bad fault id {fault}")
        try:
            self.ssm.get_parameter(Name="/orders/primary")
            raise AssertionError("GetParameter was not faulted")
        except ClientError as err:
            check_eq(err.response["Error"]["Code"], "ThrottlingException")
            check_eq(err.response["Error"]["Message"], "Rate exceeded")
            check_eq(err.response["ResponseMetadata"]["RetryAttempts"], 0)
        check_eq(self.ssm.get_parameter(Name="/orders/primary")["Parameter"]["Value"], "orders-001")
        faults = self.control("faults", method="GET")
        check_eq([(f["id"], f["remaining"], f["hits"]) for f in faults], [(fault["id"], 0, 1)])

    def test_fault_match_and_wildcard(self):
        self.ssm.put_parameter(Name="/orders/primary", Value="a", Type="String")
        self.ssm.put_parameter(Name="/payments/primary", Value="b", Type="String")
        self.control("faults", {"service": "ssm", "operation": "*", "status": 500,
                                "code": "InternalServerError", "match": "orders"})
        check_eq(self.ssm.get_parameter(Name="/payments/primary")["Parameter"]["Value"], "b")
        for _ in range(2):  # no count: every matching request fails
            check_eq(self.error_code(self.ssm.get_parameter, Name="/orders/primary"), ("InternalServerError", 500))
        check_eq(self.error_code(self.ssm.get_parameters, Names=["/orders/primary"]), ("InternalServerError", 500))
        self.control("faults", method="DELETE")
        check_eq(self.control("faults", method="GET"), [])
        check_eq(self.ssm.get_parameter(Name="/orders/primary")["Parameter"]["Value"], "a")

    def test_elasticache_fault(self):
        self.create_orders()
        self.control("faults", {"service": "elasticache", "operation": "DescribeReplicationGroups",
                                "status": 400, "code": "InvalidReplicationGroupState", "message": "busy",
                                "count": 1})
        check_eq(self.error_code(self.ec.describe_replication_groups, ReplicationGroupId="orders"),
                 ("InvalidReplicationGroupState", 400))
        self.ec.describe_replication_groups(ReplicationGroupId="orders")

    def test_route53_fault(self):
        zone = self.r53.create_hosted_zone(Name="example.internal", CallerReference="ref-1")
        zone_id = zone["HostedZone"]["Id"].split("/")[-1]
        change = {"Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
            "Name": "orders.example.internal", "Type": "CNAME", "TTL": 5,
            "ResourceRecords": [{"Value": "orders-002.example"}]}}]}
        self.control("faults", {"service": "route53", "operation": "ChangeResourceRecordSets", "status": 400,
                                "code": "PriorRequestNotComplete", "message": "still busy", "count": 1})
        check_eq(self.error_code(self.r53.change_resource_record_sets, HostedZoneId=zone_id, ChangeBatch=change),
                 ("PriorRequestNotComplete", 400))
        resp = self.r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch=change)
        self.r53.get_change(Id=resp["ChangeInfo"]["Id"])
        records = self.r53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
        check("orders.example.internal." in [r["Name"] for r in records], f"record missing: {records}")
        ops = [(r["operation"], r["status"]) for r in self.control("requests", method="GET")]
        check_eq(ops, [("CreateHostedZone", 201), ("ChangeResourceRecordSets", 400),
                       ("ChangeResourceRecordSets", 200), ("GetChange", 200), ("ListResourceRecordSets", 200)])

    def test_delay_fault(self):
        self.ssm.put_parameter(Name="/orders/primary", Value="a", Type="String")
        self.control("faults", {"service": "ssm", "operation": "GetParameter", "delay_ms": 600, "count": 1})
        started = time.monotonic()
        check_eq(self.ssm.get_parameter(Name="/orders/primary")["Parameter"]["Value"], "a")
        delayed = time.monotonic() - started
        started = time.monotonic()
        self.ssm.get_parameter(Name="/orders/primary")
        fast = time.monotonic() - started
        check(delayed >= 0.6, f"delay fault took only {delayed:.3f}s")
        check(fast < 0.5, f"second call still slow: {fast:.3f}s")

    # ---- request log and reset -------------------------------------------

    def test_request_log(self):
        self.create_orders()
        self.ssm.put_parameter(Name="/orders/primary", Value="a", Type="String")
        self.control("faults", {"service": "ssm", "operation": "GetParameters", "code": "ThrottlingException",
                                "count": 1})
        self.error_code(self.ssm.get_parameters, Names=["/orders/primary"])
        self.ssm.get_parameters(Names=["/orders/primary"])
        self.ec.test_failover(ReplicationGroupId="orders", NodeGroupId="0001")
        log = self.control("requests", method="GET")
        check_eq([(r["service"], r["operation"], r["status"]) for r in log], [
            ("elasticache", "CreateReplicationGroup", 200),
            ("ssm", "PutParameter", 200),
            ("ssm", "GetParameters", 400),
            ("ssm", "GetParameters", 200),
            ("elasticache", "TestFailover", 200),
        ])
        check_eq(log[0]["path"], "/")
        check(log[2]["fault_id"] is not None and log[3]["fault_id"] is None, f"fault ids wrong: {log}")
        self.control("requests", method="DELETE")
        check_eq(self.control("requests", method="GET"), [])

    def test_moto_reset(self):
        self.create_orders()
        self.control("faults", {"service": "ssm", "operation": "*", "code": "ThrottlingException"})
        status, _ = self.http("POST", "/moto-api/reset")
        check_eq(status, 200)
        check_eq(self.control("faults", method="GET"), [])
        check_eq(self.control("requests", method="GET"), [])
        check_eq(self.ec.describe_replication_groups()["ReplicationGroups"], [])
        self.ssm.describe_parameters()  # the ssm fault is gone

    def test_control_errors(self):
        self.control("nope", {}, expect=404)
        self.control("faults", method="PUT", expect=405)
        self.control("faults", {"operation": "GetParameter"}, expect=400)
        status, _ = self.http("POST", "/_failover/faults", None)
        check_eq(status, 400)


def roles_of(group):
    """{member: CurrentRole} for every member of every node group of a ReplicationGroup dict."""
    return {m["CacheClusterId"]: m.get("CurrentRole") for ng in group["NodeGroups"] for m in ng["NodeGroupMembers"]}


def check(condition, message):
    """Fail the current test with message unless condition holds."""
    if not condition:
        raise AssertionError(message)


def check_eq(actual, expected):
    """Fail the current test unless actual == expected."""
    check(actual == expected, f"expected {expected!r}, got {actual!r}")


def check_signal_exit():
    """Without --parent-watch, SIGTERM must stop the emulator with exit code 0."""
    proc, _, _ = start_emulator()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("emulator ignored SIGTERM")
    check_eq(code, 0)


def main():
    """Run every check; exit 1 if any failed."""
    proc, url, startup = start_emulator("--parent-watch")
    print(f"emulator ready at {url} after {startup:.2f}s")
    failures = 0
    try:
        suite = SelfTest(url)
        tests = sorted(name for name in dir(suite) if name.startswith("test_"))
        for name in tests:
            suite.http("POST", "/moto-api/reset")
            try:
                getattr(suite, name)()
                print(f"PASS {name}")
            except Exception:
                failures += 1
                print(f"FAIL {name}\n{traceback.format_exc()}")
    finally:
        proc.stdin.close()  # --parent-watch: EOF on stdin stops the emulator
        try:
            code = proc.wait(timeout=10)
            if code != 0:
                failures += 1
                print(f"FAIL parent-watch: emulator exited with {code}")
            else:
                print("PASS parent-watch")
        except subprocess.TimeoutExpired:
            proc.kill()
            failures += 1
            print("FAIL parent-watch: emulator still running after stdin EOF")
    try:
        check_signal_exit()
        print("PASS sigterm")
    except Exception:
        failures += 1
        print(f"FAIL sigterm\n{traceback.format_exc()}")
    print("OK" if failures == 0 else f"{failures} FAILED")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
