"""Self-check for failover_emulator.py.

Run: make test-emulator   (or: .venv/bin/python tests/emulator/selftest.py; any Python with requirements.txt)

Starts the emulator as a subprocess (with --parent-watch), drives it with boto3 and
the /_failover/ control API, and exits non-zero if any check fails. Only talks to
127.0.0.1.
"""

import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
from xml.etree import ElementTree

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

HERE = os.path.dirname(os.path.abspath(__file__))
EMULATOR = os.path.join(HERE, "failover_emulator.py")
SEED = os.path.join(HERE, "seed.py")
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
        check_eq(
            self.error_code(self.ec.test_failover, ReplicationGroupId="nope", NodeGroupId="0001"),
            ("ReplicationGroupNotFoundFault", 404),
        )
        check_eq(
            self.error_code(self.ec.test_failover, ReplicationGroupId="orders", NodeGroupId="0009"),
            ("NodeGroupNotFoundFault", 404),
        )

    def test_test_failover_cluster_mode(self):
        self.ec.create_replication_group(
            ReplicationGroupId="cm",
            ReplicationGroupDescription="cluster mode",
            Engine="redis",
            CacheNodeType="cache.t3.micro",
            ClusterMode="enabled",
            NumNodeGroups=2,
            ReplicasPerNodeGroup=1,
        )
        check_eq(self.roles("cm"), {"cm-0001-001": None, "cm-0001-002": None, "cm-0002-001": None, "cm-0002-002": None})
        self.ec.test_failover(ReplicationGroupId="cm", NodeGroupId="0002")
        check_eq(
            self.roles("cm"),
            {"cm-0001-001": None, "cm-0001-002": None, "cm-0002-001": "replica", "cm-0002-002": "primary"},
        )

    def test_modify_primary_cluster_id(self):
        self.create_orders()
        resp = self.ec.modify_replication_group(
            ReplicationGroupId="orders", PrimaryClusterId="orders-003", ApplyImmediately=True
        )
        check_eq(
            roles_of(resp["ReplicationGroup"]),
            {"orders-001": "replica", "orders-002": "replica", "orders-003": "primary"},
        )
        check_eq(self.roles()["orders-003"], "primary")
        check_eq(
            self.error_code(
                self.ec.modify_replication_group,
                ReplicationGroupId="orders",
                PrimaryClusterId="orders-999",
                ApplyImmediately=True,
            ),
            ("InvalidParameterValue", 400),
        )
        check_eq(
            self.error_code(
                self.ec.modify_replication_group,
                ReplicationGroupId="nope",
                PrimaryClusterId="orders-001",
                ApplyImmediately=True,
            ),
            ("ReplicationGroupNotFoundFault", 404),
        )

    def test_control_failover(self):
        self.create_orders()
        body = self.control("elasticache/failover", {"replication_group_id": "orders"})
        check_eq(
            body,
            {
                "replication_group_id": "orders",
                "node_group_id": "0001",
                "old_primary": "orders-001",
                "new_primary": "orders-002",
            },
        )
        body = self.control(
            "elasticache/failover",
            {"replication_group_id": "orders", "new_primary": "orders-003", "node_group_id": "0001"},
        )
        check_eq((body["old_primary"], body["new_primary"]), ("orders-002", "orders-003"))
        check_eq(self.roles(), {"orders-001": "replica", "orders-002": "replica", "orders-003": "primary"})
        self.control("elasticache/failover", {"replication_group_id": "nope"}, expect=404)
        err = self.control("elasticache/failover", {"replication_group_id": "orders", "new_primary": "x"}, expect=404)
        check("error" in err, f"no error key in {err}")

    def test_control_roles_status_endpoints(self):
        self.create_orders()
        self.control(
            "elasticache/roles",
            {"replication_group_id": "orders", "roles": {"orders-001": "replica", "orders-002": "replica"}},
        )
        check_eq(self.roles(), {"orders-001": "replica", "orders-002": "replica", "orders-003": "replica"})
        self.control(
            "elasticache/roles",
            {"replication_group_id": "orders", "roles": {"orders-001": "primary", "orders-002": "primary"}},
        )
        check_eq(sorted(m for m, r in self.roles().items() if r == "primary"), ["orders-001", "orders-002"])
        self.control("elasticache/roles", {"replication_group_id": "orders", "roles": {"nope": "primary"}}, expect=404)

        self.control("elasticache/status", {"replication_group_id": "orders", "status": "modifying"})
        group = self.ec.describe_replication_groups(ReplicationGroupId="orders")["ReplicationGroups"][0]
        check_eq((group["Status"], group["NodeGroups"][0]["Status"]), ("modifying", "modifying"))

        self.control(
            "elasticache/endpoints",
            {
                "replication_group_id": "orders",
                "members": {
                    "orders-001": {"address": "127.0.0.1", "port": 7001},
                    "orders-002": {"address": "127.0.0.1", "port": 7002},
                },
                "primary_endpoint": {"address": "127.0.0.1", "port": 7000},
                "reader_endpoint": {"address": "127.0.0.1", "port": 7010},
            },
        )
        group = self.ec.describe_replication_groups(ReplicationGroupId="orders")["ReplicationGroups"][0]
        node_group = group["NodeGroups"][0]
        check_eq(node_group["PrimaryEndpoint"], {"Address": "127.0.0.1", "Port": 7000})
        check_eq(node_group["ReaderEndpoint"], {"Address": "127.0.0.1", "Port": 7010})
        reads = {m["CacheClusterId"]: m["ReadEndpoint"] for m in node_group["NodeGroupMembers"]}
        check_eq(reads["orders-001"], {"Address": "127.0.0.1", "Port": 7001})
        check_eq(reads["orders-002"], {"Address": "127.0.0.1", "Port": 7002})
        check(reads["orders-003"]["Address"].endswith(".cache.amazonaws.com"), "orders-003 endpoint changed")

    # ---- Route 53 change batches -----------------------------------------

    def seed_zone(self):
        """Zone example.com with weighted pairs (blue, green) at app. (values) and alias. (alias
        targets), and a record other. with set identifier blue too. Returns the zone id."""
        zone = self.r53.create_hosted_zone(Name="example.com", CallerReference="seed")["HostedZone"]["Id"]
        zone = zone.split("/")[-1]
        self.r53_change(
            zone,
            [
                (
                    "CREATE",
                    value_record(
                        "app.example.com.",
                        "blue",
                        100,
                        ttl=60,
                        values=["192.0.2.10", "192.0.2.11"],
                        HealthCheckId=HEALTH_CHECK_ID,
                    ),
                ),
                ("CREATE", value_record("app.example.com.", "green", 0, ttl=60, values=["192.0.2.20"])),
                ("CREATE", alias_record("alias.example.com.", "blue", 100, "blue-lb.us-east-1.elb.amazonaws.com.")),
                ("CREATE", alias_record("alias.example.com.", "green", 0, "green-lb.us-east-1.elb.amazonaws.com.")),
                ("CREATE", value_record("other.example.com.", "blue", 100, ttl=300, values=["192.0.2.30"])),
            ],
        )
        return zone

    def r53_change(self, zone, changes):
        """Submit one change batch [(action, record set), ...]; returns the response."""
        batch = {"Changes": [{"Action": action, "ResourceRecordSet": record} for action, record in changes]}
        return self.r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch=batch)

    def r53_records(self, zone):
        """Every record set of the zone, in listing order."""
        return self.r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]

    def r53_record(self, zone, name, set_identifier):
        """The one live record set with this name and set identifier (fails if not exactly one)."""
        found = [r for r in self.r53_records(zone) if r["Name"] == name and r.get("SetIdentifier") == set_identifier]
        check(len(found) == 1, f"expected one {name} {set_identifier}, found {found}")
        return found[0]

    def check_batch_rejected(self, zone, changes, *fragments):
        """The batch fails with InvalidChangeBatch (HTTP 400) naming fragments, and changes nothing."""
        before = self.r53_records(zone)
        try:
            self.r53_change(zone, changes)
            raise AssertionError("the change batch was accepted")
        except ClientError as err:
            error = err.response["Error"]
            check_eq((error["Code"], err.response["ResponseMetadata"]["HTTPStatusCode"]), ("InvalidChangeBatch", 400))
            for fragment in fragments:
                check(fragment in error["Message"], f"{fragment!r} not in {error['Message']!r}")
        check_eq(self.r53_records(zone), before)

    def valid_green_update(self, zone):
        """A valid conditional update (DELETE + CREATE) of app. green to weight 5, to lead a batch."""
        green = self.r53_record(zone, "app.example.com.", "green")
        return [("DELETE", green), ("CREATE", with_weight(green, 5))]

    def test_route53_conditional_update_changes_only_the_weight(self):
        zone = self.seed_zone()
        before = self.r53_records(zone)
        blue = self.r53_record(zone, "app.example.com.", "blue")
        alias_blue = self.r53_record(zone, "alias.example.com.", "blue")
        # the DELETEs match what was read, written differently: name case and trailing dot, value
        # order, alias DNS name case and trailing dot
        delete_blue = dict(blue, Name="APP.Example.com", ResourceRecords=blue["ResourceRecords"][::-1])
        delete_alias = dict(
            alias_blue, AliasTarget=dict(alias_blue["AliasTarget"], DNSName="BLUE-LB.us-east-1.elb.amazonaws.com")
        )
        resp = self.r53_change(
            zone,
            [
                ("DELETE", delete_blue),
                ("CREATE", with_weight(blue, 40)),
                ("DELETE", delete_alias),
                ("CREATE", with_weight(alias_blue, 60)),
            ],
        )
        check_eq(self.r53.get_change(Id=resp["ChangeInfo"]["Id"])["ChangeInfo"]["Status"], "INSYNC")
        weights = {("app.example.com.", "blue"): 40, ("alias.example.com.", "blue"): 60}
        expected = [
            with_weight(r, weights[(r["Name"], r.get("SetIdentifier"))])
            if (r["Name"], r.get("SetIdentifier")) in weights
            else r
            for r in before
        ]
        check_eq(self.r53_records(zone), expected)  # same records, same order, only two weights changed

    def test_route53_delete_with_wrong_ttl_fails_whole_batch(self):
        zone = self.seed_zone()
        blue = self.r53_record(zone, "app.example.com.", "blue")
        self.check_batch_rejected(
            zone,
            [*self.valid_green_update(zone), ("DELETE", dict(blue, TTL=61)), ("CREATE", with_weight(blue, 0))],
            "Tried to delete resource record set [name='app.example.com.', type='A', set-identifier='blue'] "
            "but the values provided do not match the current values",
        )

    def test_route53_delete_with_wrong_values_fails_whole_batch(self):
        zone = self.seed_zone()
        blue = self.r53_record(zone, "app.example.com.", "blue")
        for values in (["192.0.2.10"], ["192.0.2.10", "192.0.2.12"], ["192.0.2.10", "192.0.2.11", "192.0.2.12"]):
            wrong = dict(blue, ResourceRecords=[{"Value": v} for v in values])
            self.check_batch_rejected(
                zone,
                [*self.valid_green_update(zone), ("DELETE", wrong), ("CREATE", with_weight(blue, 0))],
                "set-identifier='blue'] but the values provided do not match the current values",
            )

    def test_route53_delete_with_wrong_weight_or_health_check_fails_whole_batch(self):
        zone = self.seed_zone()
        blue = self.r53_record(zone, "app.example.com.", "blue")
        no_health_check = {k: v for k, v in blue.items() if k != "HealthCheckId"}
        for wrong in (with_weight(blue, 99), no_health_check):
            self.check_batch_rejected(
                zone,
                [*self.valid_green_update(zone), ("DELETE", wrong), ("CREATE", with_weight(blue, 0))],
                "set-identifier='blue'] but the values provided do not match the current values",
            )

    def test_route53_delete_with_wrong_alias_target_fails_whole_batch(self):
        zone = self.seed_zone()
        blue = self.r53_record(zone, "alias.example.com.", "blue")
        target = blue["AliasTarget"]
        for wrong_target in (
            dict(target, DNSName="green-lb.us-east-1.elb.amazonaws.com."),
            dict(target, EvaluateTargetHealth=not target["EvaluateTargetHealth"]),
            dict(target, HostedZoneId="Z0000000000000"),
        ):
            self.check_batch_rejected(
                zone,
                [
                    *self.valid_green_update(zone),
                    ("DELETE", dict(blue, AliasTarget=wrong_target)),
                    ("CREATE", with_weight(blue, 0)),
                ],
                "Tried to delete resource record set [name='alias.example.com.', type='A', set-identifier='blue'] "
                "but the values provided do not match the current values",
            )

    def test_route53_delete_of_missing_record_fails_whole_batch(self):
        zone = self.seed_zone()
        blue = self.r53_record(zone, "app.example.com.", "blue")
        self.check_batch_rejected(
            zone,
            [*self.valid_green_update(zone), ("DELETE", dict(blue, SetIdentifier="purple"))],
            "Tried to delete resource record set [name='app.example.com.', type='A', set-identifier='purple'] "
            "but it was not found",
        )

    def test_route53_create_of_existing_record_fails_whole_batch(self):
        zone = self.seed_zone()
        blue = self.r53_record(zone, "app.example.com.", "blue")
        self.check_batch_rejected(
            zone,
            [*self.valid_green_update(zone), ("CREATE", with_weight(blue, 1))],
            "Tried to create resource record set [name='app.example.com.', type='A', set-identifier='blue'] "
            "but it already exists",
        )

    def test_route53_weighted_delete_removes_only_that_record(self):
        zone = self.seed_zone()
        before = self.r53_records(zone)
        blue = self.r53_record(zone, "app.example.com.", "blue")
        self.r53_change(zone, [("DELETE", blue)])
        check_eq(self.r53_records(zone), [r for r in before if r != blue])
        # other.example.com. and alias.example.com. keep their "blue" records
        self.r53_record(zone, "other.example.com.", "blue")
        self.r53_record(zone, "alias.example.com.", "blue")

    def test_route53_recreate_after_delete_succeeds(self):
        zone = self.seed_zone()
        green = self.r53_record(zone, "app.example.com.", "green")
        self.r53_change(zone, [("DELETE", green)])
        check(
            all(r.get("SetIdentifier") != "green" or r["Name"] != "app.example.com." for r in self.r53_records(zone)),
            "green was not deleted",
        )
        # the very CREATE the zone was seeded with: moto's journal check rejected it as existing
        self.r53_change(zone, [("CREATE", value_record("app.example.com.", "green", 0, ttl=60, values=["192.0.2.20"]))])
        check_eq(self.r53_record(zone, "app.example.com.", "green"), green)

    def test_route53_upsert_creates_and_replaces(self):
        zone = self.seed_zone()
        new = value_record("new.example.com.", "blue", 10, ttl=30, values=["192.0.2.40"])
        self.r53_change(zone, [("UPSERT", new)])
        check_eq(self.r53_record(zone, "new.example.com.", "blue"), new)
        green = self.r53_record(zone, "app.example.com.", "green")
        self.r53_change(zone, [("UPSERT", dict(with_weight(green, 30), TTL=120))])
        check_eq(self.r53_record(zone, "app.example.com.", "green"), dict(with_weight(green, 30), TTL=120))
        self.r53_record(zone, "app.example.com.", "blue")  # untouched

    def test_route53_invalid_change_batch_wire_format(self):
        zone = self.seed_zone()
        blue = self.r53_record(zone, "app.example.com.", "blue")
        green = self.r53_record(zone, "app.example.com.", "green")
        raw = []

        def capture(response_dict, **_):
            raw.append((response_dict["status_code"], response_dict["body"]))

        self.r53.meta.events.register("before-parse.route53.ChangeResourceRecordSets", capture)
        try:
            check_eq(
                self.error_code(self.r53_change, zone, [("CREATE", with_weight(blue, 1))]), ("InvalidChangeBatch", 400)
            )
            try:
                self.r53_change(zone, [("DELETE", with_weight(green, 9)), ("CREATE", green)])
                raise AssertionError("the change batch was accepted")
            except ClientError as err:
                two = err.response["Error"]["Message"]
        finally:
            self.r53.meta.events.unregister("before-parse.route53.ChangeResourceRecordSets", capture)
        status, body = raw[0]
        check_eq(status, 400)
        root = ElementTree.fromstring(body)
        ns = "{https://route53.amazonaws.com/doc/2013-04-01/}"
        check_eq(root.tag, ns + "ErrorResponse")  # what botocore and aws-sdk-route53 parse
        check_eq(
            (root.findtext(f"{ns}Error/{ns}Type"), root.findtext(f"{ns}Error/{ns}Code")),
            ("Sender", "InvalidChangeBatch"),
        )
        check_eq(
            root.findtext(f"{ns}Error/{ns}Message"),
            "[Tried to create resource record set [name='app.example.com.', type='A', set-identifier='blue'] "
            "but it already exists]",
        )
        check(root.findtext(f"{ns}RequestId"), f"no RequestId in {body!r}")
        # one batch, two problems: both listed, in order
        check_eq(
            two,
            "[Tried to delete resource record set [name='app.example.com.', type='A', "
            "set-identifier='green'] but the values provided do not match the current values, "
            "Tried to create resource record set [name='app.example.com.', type='A', "
            "set-identifier='green'] but it already exists]",
        )

    def test_route53_delayed_batch_is_validated_when_served(self):
        zone = self.seed_zone()
        blue = self.r53_record(zone, "app.example.com.", "blue")
        self.control("requests", method="DELETE")
        self.control(
            "faults", {"service": "route53", "operation": "ChangeResourceRecordSets", "delay_ms": 1000, "count": 1}
        )
        outcome = {}

        def conditional_update():
            try:
                self.r53_change(zone, [("DELETE", blue), ("CREATE", with_weight(blue, 50))])
                outcome["result"] = "applied"
            except ClientError as err:
                outcome["result"] = err.response["Error"]["Code"]

        thread = threading.Thread(target=conditional_update)
        thread.start()
        deadline = time.monotonic() + 5
        while not self.control("requests", method="GET"):  # the delayed batch has arrived
            check(time.monotonic() < deadline, "the delayed batch never arrived")
            time.sleep(0.02)
        started = time.monotonic()
        self.r53_change(zone, [("UPSERT", with_weight(blue, 70))])  # served during the delay
        took = time.monotonic() - started
        still_waiting = thread.is_alive()
        thread.join(10)
        check(still_waiting, "the delayed batch was served before the concurrent UPSERT")
        check(took < 0.5, f"the concurrent UPSERT waited {took:.2f}s for the delayed batch")
        check_eq(outcome.get("result"), "InvalidChangeBatch")  # validated against weight 70, not 100
        check_eq(self.r53_record(zone, "app.example.com.", "blue"), with_weight(blue, 70))
        log = [(r["operation"], r["status"], r["fault_id"] is not None) for r in self.control("requests", method="GET")]
        check_eq(log[:2], [("ChangeResourceRecordSets", 400, True), ("ChangeResourceRecordSets", 200, False)])

    def test_route53_concurrent_conditional_updates_one_wins(self):
        zone = self.seed_zone()
        blue = self.r53_record(zone, "app.example.com.", "blue")
        writers = 6
        barrier = threading.Barrier(writers)
        outcomes = [None] * writers

        def conditional_update(i):
            changes = [("DELETE", blue), ("CREATE", with_weight(blue, 10 + i))]
            barrier.wait()
            try:
                self.r53_change(zone, changes)
                outcomes[i] = "applied"
            except ClientError as err:
                outcomes[i] = err.response["Error"]["Code"]

        threads = [threading.Thread(target=conditional_update, args=(i,)) for i in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        check_eq(sorted(outcomes), ["InvalidChangeBatch"] * (writers - 1) + ["applied"])
        winner = outcomes.index("applied")
        check_eq(self.r53_record(zone, "app.example.com.", "blue"), with_weight(blue, 10 + winner))

    # ---- faults ----------------------------------------------------------

    def test_route53_change_is_pending_then_insync(self):
        """An accepted change answers PENDING (as Route 53 does); GetChange then says INSYNC."""
        zone = self.r53.create_hosted_zone(Name="example.com", CallerReference="pending")["HostedZone"]["Id"]
        record = {"Name": "a.example.com.", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.1"}]}
        info = self.r53.change_resource_record_sets(
            HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": record}]}
        )["ChangeInfo"]
        check_eq(info["Status"], "PENDING")
        check_eq(self.r53.get_change(Id=info["Id"])["ChangeInfo"]["Status"], "INSYNC")

    def test_ssm_put_parameter_creating_needs_a_type(self):
        """PutParameter without Type creates nothing, also with Overwrite (as AWS refuses it)."""
        try:
            self.ssm.put_parameter(Name="/app/gone/redis", Value="h:1", Overwrite=True)
            raise AssertionError("created a parameter without a type")
        except ClientError as err:
            check_eq(err.response["Error"]["Code"], "ValidationException")
            check("type is required" in err.response["Error"]["Message"], err.response["Error"]["Message"])
        check_eq(self.ssm.describe_parameters()["Parameters"], [])
        self.ssm.put_parameter(Name="/app/gone/redis", Value="h:1", Type="String")
        self.ssm.put_parameter(Name="/app/gone/redis", Value="h:2", Overwrite=True)
        check_eq(self.ssm.get_parameter(Name="/app/gone/redis")["Parameter"]["Value"], "h:2")

    def test_ssm_throttle_fault(self):
        self.ssm.put_parameter(Name="/orders/primary", Value="orders-001", Type="String")
        fault = self.control(
            "faults",
            {
                "service": "ssm",
                "operation": "GetParameter",
                "status": 400,
                "code": "ThrottlingException",
                "message": "Rate exceeded",
                "count": 1,
            },
        )
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
        self.control(
            "faults",
            {"service": "ssm", "operation": "*", "status": 500, "code": "InternalServerError", "match": "orders"},
        )
        check_eq(self.ssm.get_parameter(Name="/payments/primary")["Parameter"]["Value"], "b")
        for _ in range(2):  # no count: every matching request fails
            check_eq(self.error_code(self.ssm.get_parameter, Name="/orders/primary"), ("InternalServerError", 500))
        check_eq(self.error_code(self.ssm.get_parameters, Names=["/orders/primary"]), ("InternalServerError", 500))
        self.control("faults", method="DELETE")
        check_eq(self.control("faults", method="GET"), [])
        check_eq(self.ssm.get_parameter(Name="/orders/primary")["Parameter"]["Value"], "a")

    def test_elasticache_fault(self):
        self.create_orders()
        self.control(
            "faults",
            {
                "service": "elasticache",
                "operation": "DescribeReplicationGroups",
                "status": 400,
                "code": "InvalidReplicationGroupState",
                "message": "busy",
                "count": 1,
            },
        )
        check_eq(
            self.error_code(self.ec.describe_replication_groups, ReplicationGroupId="orders"),
            ("InvalidReplicationGroupState", 400),
        )
        self.ec.describe_replication_groups(ReplicationGroupId="orders")

    def test_route53_fault(self):
        zone = self.r53.create_hosted_zone(Name="example.internal", CallerReference="ref-1")
        zone_id = zone["HostedZone"]["Id"].split("/")[-1]
        change = {
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": "orders.example.internal",
                        "Type": "CNAME",
                        "TTL": 5,
                        "ResourceRecords": [{"Value": "orders-002.example"}],
                    },
                }
            ]
        }
        self.control(
            "faults",
            {
                "service": "route53",
                "operation": "ChangeResourceRecordSets",
                "status": 400,
                "code": "PriorRequestNotComplete",
                "message": "still busy",
                "count": 1,
            },
        )
        check_eq(
            self.error_code(self.r53.change_resource_record_sets, HostedZoneId=zone_id, ChangeBatch=change),
            ("PriorRequestNotComplete", 400),
        )
        resp = self.r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch=change)
        self.r53.get_change(Id=resp["ChangeInfo"]["Id"])
        records = self.r53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
        check("orders.example.internal." in [r["Name"] for r in records], f"record missing: {records}")
        ops = [(r["operation"], r["status"]) for r in self.control("requests", method="GET")]
        check_eq(
            ops,
            [
                ("CreateHostedZone", 201),
                ("ChangeResourceRecordSets", 400),
                ("ChangeResourceRecordSets", 200),
                ("GetChange", 200),
                ("ListResourceRecordSets", 200),
            ],
        )

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

    def test_fault_body_contains_denies_one_parameter(self):
        """body_contains: only requests whose raw body holds the text fail; other names and
        operations pass. The error is awsJson 1.1 (__type) with HTTP 400, as SSM sends it."""
        self.ssm.put_parameter(Name="/app/a/redis", Value="a:6379", Type="String")
        self.ssm.put_parameter(Name="/app/b/redis", Value="b:6379", Type="String")
        denied = (
            "User: arn:aws:sts::123456789012:assumed-role/reconciler/s is not authorized to perform: "
            "ssm:GetParameters on resource: arn:aws:ssm:us-east-1:123456789012:parameter/app/b/redis"
        )
        fault = self.control(
            "faults",
            {
                "service": "ssm",
                "operation": "GetParameters",
                "body_contains": "/app/b/redis",
                "code": "AccessDeniedException",
                "message": denied,
            },
        )
        sent, raw = [], []
        self.ssm.meta.events.register("before-send.ssm.GetParameters", lambda request, **_: sent.append(request.body))
        self.ssm.meta.events.register(
            "before-parse.ssm.GetParameters", lambda response_dict, **_: raw.append(response_dict)
        )
        try:
            for _ in range(2):  # no count: every matching request fails
                check_eq(
                    self.error_code(self.ssm.get_parameters, Names=["/app/a/redis", "/app/b/redis"]),
                    ("AccessDeniedException", 400),
                )
            got = self.ssm.get_parameters(Names=["/app/a/redis"])["Parameters"]
            check_eq([p["Value"] for p in got], ["a:6379"])
        finally:
            self.ssm.meta.events.unregister("before-send.ssm.GetParameters")
            self.ssm.meta.events.unregister("before-parse.ssm.GetParameters")
        # botocore sends '/' unescaped (so does aws-smithy-json): the raw body holds the name as is
        check(b'"/app/b/redis"' in sent[0] and b"\\/" not in sent[0], f"body: {sent[0]!r}")
        check_eq(raw[0]["status_code"], 400)
        check_eq(json.loads(raw[0]["body"]), {"__type": "AccessDeniedException", "message": denied})
        # other operations are not matched by operation; GetParameter of the same name succeeds
        check_eq(self.ssm.get_parameter(Name="/app/b/redis")["Parameter"]["Value"], "b:6379")
        check_eq(self.ssm.get_parameter(Name="/app/a/redis")["Parameter"]["Value"], "a:6379")
        listed = self.control("faults", method="GET")
        check_eq([(f["id"], f["body_contains"], f["hits"]) for f in listed], [(fault["id"], "/app/b/redis", 2)])

    def test_fault_body_contains_looks_at_the_body_only(self):
        """Unlike "match" (path, query and body), body_contains never matches the path; both given: both must hold."""
        zone = self.r53.create_hosted_zone(Name="example.com", CallerReference="body")["HostedZone"]["Id"]
        zone = zone.split("/")[-1]
        self.control("faults", {"service": "route53", "body_contains": zone, "code": "Throttling"})
        self.r53.list_resource_record_sets(HostedZoneId=zone)  # GET: the zone id is in the path, not the body
        self.ssm.put_parameter(Name="/app/a/redis", Value="a", Type="String")
        self.control(
            "faults", {"service": "ssm", "match": "/app/a/", "body_contains": "WithDecryption", "code": "Throttling"}
        )
        check_eq(self.ssm.get_parameter(Name="/app/a/redis")["Parameter"]["Value"], "a")
        check_eq(self.error_code(self.ssm.get_parameter, Name="/app/a/redis", WithDecryption=True), ("Throttling", 400))
        for bad in ("", 5, ["x"]):
            self.control("faults", {"service": "ssm", "body_contains": bad, "code": "Throttling"}, expect=400)

    def test_route53_wildcard_name_is_stored_and_listed_escaped(self):
        """A '*' is stored and listed as '\\052' (other characters outside a-z, 0-9, '-', '_', '.' as
        backslash + 3 octal digits); either spelling names the same record in a change batch."""
        zone = self.r53.create_hosted_zone(Name="example.com", CallerReference="wild")["HostedZone"]["Id"]
        zone = zone.split("/")[-1]
        plain = {"Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.30"}]}
        self.r53_change(
            zone,
            [
                ("CREATE", value_record("*.shop.example.com.", "blue", 100, ttl=60, values=["192.0.2.10"])),
                ("CREATE", value_record("*.shop.example.com", "green", 0, ttl=60, values=["192.0.2.20"])),
                ("CREATE", dict(plain, Name="0.shop.example.com.")),
                ("CREATE", dict(plain, Name="shop.example.com.")),
                ("CREATE", dict(plain, Name="x+y.example.com.")),
            ],
        )
        wild = "\\052.shop.example.com."
        names = [r["Name"] for r in self.r53_records(zone) if r["Type"] == "A"]
        # sorted as Route 53 sorts: by the name's characters ('*' before '0'), labels reversed
        check_eq(names, ["shop.example.com.", wild, wild, "0.shop.example.com.", "x\\053y.example.com."])
        blue = self.r53_record(zone, wild, "blue")
        green = self.r53_record(zone, wild, "green")
        check_eq(blue, value_record(wild, "blue", 100, ttl=60, values=["192.0.2.10"]))
        # conditional updates: DELETE written with '*' (and other case) matches the stored '\052' record
        star_blue = dict(blue, Name="*.shop.example.com")
        before = self.r53_records(zone)
        self.r53_change(
            zone, [("DELETE", dict(blue, Name="*.SHOP.example.com")), ("CREATE", with_weight(star_blue, 40))]
        )
        check_eq(self.r53_record(zone, wild, "blue"), with_weight(blue, 40))
        self.r53_change(zone, [("DELETE", green), ("CREATE", with_weight(green, 60))])  # as listed
        check_eq(
            self.r53_records(zone),
            [with_weight(r, {"blue": 40, "green": 60}[r["SetIdentifier"]]) if r["Name"] == wild else r for r in before],
        )
        # both spellings are one name: CREATE of a live record fails, DELETE must still match exactly
        self.check_batch_rejected(
            zone,
            [("CREATE", with_weight(dict(blue, Name="*.shop.example.com."), 1))],
            "Tried to create resource record set [name='\\052.shop.example.com.', type='A', "
            "set-identifier='blue'] but it already exists",
        )
        self.check_batch_rejected(
            zone,
            [("DELETE", with_weight(star_blue, 100))],
            "[name='\\052.shop.example.com.', type='A', set-identifier='blue'] but the values provided do not "
            "match the current values",
        )
        self.r53_change(zone, [("UPSERT", dict(with_weight(star_blue, 7), Name="\\052.shop.example.com"))])
        check_eq(self.r53_record(zone, wild, "blue"), with_weight(blue, 7))
        check_eq(len(self.r53_records(zone)), len(before))

    def test_route53_list_from_a_wildcard_name(self):
        """StartRecordName may be given as '*.shop.example.com' or '\\052.shop.example.com'."""
        zone = self.r53.create_hosted_zone(Name="example.com", CallerReference="wild-list")["HostedZone"]["Id"]
        zone = zone.split("/")[-1]
        plain = {"Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.30"}]}
        self.r53_change(
            zone,
            [
                ("CREATE", dict(plain, Name="0.shop.example.com.")),
                ("CREATE", value_record("*.shop.example.com", "blue", 100, ttl=60, values=["192.0.2.10"])),
                ("CREATE", value_record("*.shop.example.com", "green", 0, ttl=60, values=["192.0.2.20"])),
                ("CREATE", dict(plain, Name="shop.example.com.")),
            ],
        )
        wild = "\\052.shop.example.com."
        for start in ("*.shop.example.com", "*.shop.example.com.", "\\052.shop.example.com", wild):
            page = self.r53.list_resource_record_sets(HostedZoneId=zone, StartRecordName=start, MaxItems="2")
            got = [(r["Name"], r.get("SetIdentifier")) for r in page["ResourceRecordSets"]]
            check_eq(got, [(wild, "blue"), (wild, "green")])
            check_eq((page["IsTruncated"], page["NextRecordName"]), (True, "0.shop.example.com."))
            page = self.r53.list_resource_record_sets(HostedZoneId=zone, StartRecordName=start, StartRecordType="A")
            check_eq(page["ResourceRecordSets"][0]["Name"], wild)

    def test_seed_pair_under_a_wildcard_name(self):
        """seed.py --record (or $RECORD_NAME) seeds and sets the weighted pair under any name, '*' included."""

        def seed(*args, record_env=None):
            env = dict(os.environ)
            env.pop("RECORD_NAME", None)
            if record_env:
                env["RECORD_NAME"] = record_env
            done = subprocess.run(
                [sys.executable, SEED, "--endpoint-url", self.url, *args],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            check(done.returncode == 0, f"seed.py {args} exited {done.returncode}: {done.stdout}{done.stderr}")
            return done.stdout

        def weights():
            zone = self.r53.list_hosted_zones_by_name(DNSName="example.com.")["HostedZones"][0]["Id"]
            return {
                (r["Name"], r["SetIdentifier"]): r["Weight"] for r in self.r53_records(zone) if "SetIdentifier" in r
            }

        wild = "\\052.shop.example.com."
        out = seed("--record", "*.shop.example.com", "--weights", "75/25")
        check(f"{wild} A  blue 75 / green 25" in out, out)
        check_eq(weights(), {(wild, "blue"): 75, (wild, "green"): 25})
        seed()  # the default record (events/local.env's RECORD_NAME): its pair is created next to the other
        app = "app.example.com."
        check_eq(weights(), {(wild, "blue"): 75, (wild, "green"): 25, (app, "blue"): 100, (app, "green"): 0})
        out = seed("--weights", "10/90", record_env="*.shop.example.com")
        check(f"{wild} A  blue 10 / green 90" in out, out)
        check_eq(weights()[(wild, "green")], 90)
        check_eq(weights()[(app, "green")], 0)

    # ---- request log and reset -------------------------------------------

    def test_request_log(self):
        self.create_orders()
        self.ssm.put_parameter(Name="/orders/primary", Value="a", Type="String")
        self.control(
            "faults", {"service": "ssm", "operation": "GetParameters", "code": "ThrottlingException", "count": 1}
        )
        self.error_code(self.ssm.get_parameters, Names=["/orders/primary"])
        self.ssm.get_parameters(Names=["/orders/primary"])
        self.ec.test_failover(ReplicationGroupId="orders", NodeGroupId="0001")
        log = self.control("requests", method="GET")
        check_eq(
            [(r["service"], r["operation"], r["status"]) for r in log],
            [
                ("elasticache", "CreateReplicationGroup", 200),
                ("ssm", "PutParameter", 200),
                ("ssm", "GetParameters", 400),
                ("ssm", "GetParameters", 200),
                ("elasticache", "TestFailover", 200),
            ],
        )
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


# ---- tests/local_loop.py and .ci/run: a failure can never end green -----------------------------

REPO = os.path.dirname(os.path.dirname(HERE))
LOCAL_LOOP = os.path.join(REPO, "tests", "local_loop.py")
CI_RUN = os.path.join(REPO, ".ci", "run")
CI_COUNT = os.path.join(REPO, ".ci", "count.py")

# Runs tests/local_loop.py's main() with some module globals replaced (ports, timeouts) and README.md /
# events/README.md replaced by the given texts; prints what main() prints and exits as it exits.
LOCAL_LOOP_DRIVER = """
import json, os, sys
config = json.loads(sys.argv[1])
sys.path.insert(0, os.path.dirname(config["script"]))
import local_loop
for name, value in config["globals"].items():
    setattr(local_loop, name, value)
real_read = local_loop.read
local_loop.read = lambda relative: config["files"].get(relative) or real_read(relative)
local_loop.main()
"""

# A stand-in for a server line of README.md: listens on the port given as first argument (never answers).
LISTENER = "exec python3 -c 'import socket, sys, time; s = socket.socket(); "
LISTENER += 's.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); time.sleep(120)\''


def free_ports(count):
    """Ports nothing listens on (bound to 0, then released)."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run_local_loop(emulator_line, watch_line, env=None, taken=False):
    """local_loop.main() over a README whose block is two '(keeps running)' terminals; with `taken`,
    something listens on the emulator's port already."""
    emulator_port, lambda_port = free_ports(2)
    readme = (
        "## Run the functions locally\n\n```sh\n"
        f"# terminal 1 (keeps running): the emulator\n{emulator_line.format(port=emulator_port)}\n\n"
        f"# terminal 2 (keeps running): the functions\ntrue\n{watch_line.format(port=lambda_port)}\n```\n"
    )
    config = {
        "script": LOCAL_LOOP,
        "globals": {"EMULATOR_PORT": emulator_port, "LAMBDA_PORT": lambda_port, "WATCH_START_TIMEOUT": 3},
        "files": {"README.md": readme, os.path.join("events", "README.md"): "# Sample Lambda events\n"},
    }
    with socket.socket() as listener:
        if taken:
            listener.bind(("127.0.0.1", emulator_port))
            listener.listen()
        done = subprocess.run(
            [sys.executable, "-c", LOCAL_LOOP_DRIVER, json.dumps(config)],
            env=dict(os.environ, **(env or {})),
            capture_output=True,
            text=True,
            timeout=60,
        )
    return done.returncode, done.stdout + done.stderr, emulator_port, lambda_port


def quoted(output):
    """Output for a failure message, each line after '| ' (so .ci/count.py does not count its PASS/FAIL lines)."""
    return "\n".join("| " + line for line in output.splitlines())


def check_failed_run(code, output, *fragments):
    """A run that failed: exit status not 0, a FAIL line for each fragment, and a summary counting them all."""
    fails = [line for line in output.splitlines() if line.startswith("  FAIL ")]
    check(code != 0, f"exit status 0 after a failure:\n{quoted(output)}")
    for fragment in fragments:
        check(any(fragment in line for line in fails), f"no FAIL line with {fragment!r}:\n{quoted(output)}")
    check(
        f"local loop: {len(fails)} check(s) failed" in output,
        f"the summary does not count {len(fails)}:\n{quoted(output)}",
    )


def check_local_loop_exit_codes():
    """tests/local_loop.py exits non-zero, with a FAIL line counted in its summary, on every early stop:
    a port taken, the emulator or `make watch` never listening, `make seed-emulator` failing."""
    # a port is taken (here by a listener of this test)
    code, output, emulator_port, _ = run_local_loop("make emulator", "sleep 1", taken=True)
    check_failed_run(code, output, f"127.0.0.1:{emulator_port} is taken")

    # the emulator never listens: its command exits at once
    code, output, emulator_port, _ = run_local_loop("echo the emulator stops; exit 1", "sleep 1")
    check_failed_run(code, output, f"listening on 127.0.0.1:{emulator_port}")

    # `make watch` never listens (WATCH_START_TIMEOUT is 3 s here)
    code, output, emulator_port, lambda_port = run_local_loop(LISTENER + " {port} emulator", "sleep 60")
    check_failed_run(code, output, f"sleep 60: listening on 127.0.0.1:{lambda_port}")
    check(f"  PASS {LISTENER} {emulator_port} emulator: listening" in output, quoted(output))

    # `make seed-emulator` fails (nothing listens at EMULATOR_URL): the loop stops there, red
    (closed,) = free_ports(1)
    code, output, _, _ = run_local_loop(
        LISTENER + " {port} emulator", LISTENER + " {port}", env={"EMULATOR_URL": f"http://127.0.0.1:{closed}"}
    )
    check_failed_run(code, output, "make seed-emulator WEIGHTS=100/0: exit")


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
SELFTEST_OUT = "emulator ready at http://127.0.0.1:1 after 0.5s\nPASS test_a\nPASS test_b\nOK\n"
LOOP_OUT = "== README.md\n  PASS make emulator: listening on 127.0.0.1:5005 after 1.0 s\n"
LOOP_FAILED = LOOP_OUT + "  FAIL make watch: listening on 127.0.0.1:9000 after 900.0 s\nlocal loop: 1 check(s) failed\n"
DRILL_OUT = "\n== checks\n  PASS  parameter moved\n  PASS  app recovered\n\nDRILL PASSED\n"


def count(*logs, failed_step=None):
    """.ci/count.py over these log texts: (exit status, output)."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, text in enumerate(logs):
            paths.append(os.path.join(tmp, f"{i}.log"))
            with open(paths[-1], "w") as f:
                f.write(text)
        args = ["--failed-step", failed_step] if failed_step else []
        done = subprocess.run([sys.executable, CI_COUNT, *args, *paths], capture_output=True, text=True, timeout=30)
    return done.returncode, done.stdout.strip()


def check_ci_counting():
    """.ci/count.py: every PASS and FAIL line of every log, cargo's counts, a failed step; non-zero if any failed."""
    test_log = CARGO_OK + SELFTEST_OUT + LOOP_OUT
    check_eq(count(test_log, DRILL_OUT), (0, "ci: 8 passed, 0 failed"))
    check_eq(count(CARGO_OK + SELFTEST_OUT + LOOP_FAILED, DRILL_OUT), (1, "ci: 8 passed, 1 failed"))
    check_eq(count(test_log + "FAIL test_c\nTraceback ...\n1 FAILED\n", DRILL_OUT), (1, "ci: 8 passed, 1 failed"))
    check_eq(count(test_log, DRILL_OUT.replace("  PASS  app", "  FAIL  app")), (1, "ci: 7 passed, 1 failed"))
    # a failed test counted once (its FAILED line and its test result); its own output's FAIL line not at all
    check_eq(count(CARGO_OK + CARGO_ONE_FAILED), (1, "ci: 5 passed, 1 failed"))
    check_eq(count("test y ... FAILED\n"), (1, "ci: 0 passed, 1 failed"))  # no test result line
    check_eq(count(CARGO_OK + CARGO_CRASHED), (1, "ci: 3 passed, 1 failed"))  # a test binary died
    check_eq(count("\x1b[32m  PASS x\x1b[0m\n\x1b[31mFAIL y\x1b[0m\n"), (1, "ci: 1 passed, 1 failed"))
    # a step that exited non-zero is a failure even when no line says so; nothing passed is no pass
    check_eq(count(test_log, failed_step="make demo exited 2"), (1, "ci: 6 passed, 1 failed (make demo exited 2)"))
    check_eq(
        count(CARGO_ONE_FAILED, failed_step="make test exited 2"), (1, "ci: 2 passed, 1 failed (make test exited 2)")
    )
    check_eq(count("error: could not compile `x`\n"), (1, "ci: 0 passed, 0 failed (nothing passed)"))


def run_ci(test_out, test_code, demo_out, demo_code):
    """.ci/run with stand-ins for cargo, rustc, rustup, apt-get and make on PATH (nothing is built)."""
    with tempfile.TemporaryDirectory() as tmp:
        bin_dir = os.path.join(tmp, "bin")
        os.mkdir(bin_dir)
        for target, text in (("test", test_out), ("demo", demo_out)):
            with open(os.path.join(tmp, f"{target}.out"), "w") as f:
                f.write(text)
        fakes = {
            "cargo": "echo cargo 0.0.0-stand-in",
            "rustc": "echo rustc 0.0.0-stand-in",
            "rustup": "echo rustup must not run; exit 1",
            "apt-get": "echo apt-get must not run; exit 1",
            "make": (
                f'echo "$1" >> {tmp}/made\n'
                f'case "$1" in test) cat {tmp}/test.out; exit {test_code};; '
                f"demo) cat {tmp}/demo.out; exit {demo_code};; *) exit 99;; esac"
            ),
        }
        for name, body in fakes.items():
            path = os.path.join(bin_dir, name)
            with open(path, "w") as f:
                f.write(f"#!/bin/sh\n{body}\n")
            os.chmod(path, 0o755)
        env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
        done = subprocess.run(["bash", CI_RUN], env=env, capture_output=True, text=True, timeout=60)
        made = []
        if os.path.exists(os.path.join(tmp, "made")):
            with open(os.path.join(tmp, "made")) as f:
                made = f.read().split()
    lines = done.stdout.strip().splitlines()
    closing = next((line for line in reversed(lines) if line.startswith("ci: ")), None)
    return done.returncode, closing, made, done.stdout + done.stderr


def check_ci_run_exit_codes():
    """.ci/run: red whenever a step failed or any FAIL line was printed, with its closing line still printed."""
    test_log = CARGO_OK + SELFTEST_OUT + LOOP_OUT
    code, closing, made, out = run_ci(test_log, 0, DRILL_OUT, 0)
    check_eq((code, closing, made), (0, "ci: 8 passed, 0 failed", ["test", "demo"]))
    # issue 18, item 16: the local loop printed FAIL and exited 0 -> CI said "0 failed" and passed
    code, closing, made, out = run_ci(CARGO_OK + SELFTEST_OUT + LOOP_FAILED, 0, DRILL_OUT, 0)
    check((code, closing) == (1, "ci: 8 passed, 1 failed"), f"exit {code}, closing line {closing!r}:\n{quoted(out)}")
    # make test fails: the run stops there (no demo), red, and still says what it counted
    code, closing, made, out = run_ci(CARGO_OK + CARGO_ONE_FAILED, 2, DRILL_OUT, 0)
    check(
        (code != 0, closing, made) == (True, "ci: 5 passed, 1 failed (make test exited 2)", ["test"]),
        f"exit {code}, closing line {closing!r}, made {made}:\n{quoted(out)}",
    )
    # the drill fails before any check line
    code, closing, made, out = run_ci(test_log, 0, "DRILL FAILED: no emulator\n", 1)
    check(
        (code != 0, closing) == (True, "ci: 6 passed, 1 failed (make demo exited 1)"),
        f"exit {code}, closing line {closing!r}:\n{quoted(out)}",
    )


HEALTH_CHECK_ID = "0b4c9d2e-1f3a-4b5c-8d7e-9f0a1b2c3d4e"


def value_record(name, set_identifier, weight, ttl, values, **extra):
    """A weighted record set with values, as boto3 takes and returns it."""
    record = {
        "Name": name,
        "Type": "A",
        "SetIdentifier": set_identifier,
        "Weight": weight,
        "TTL": ttl,
        "ResourceRecords": [{"Value": v} for v in values],
    }
    record.update(extra)
    return record


def alias_record(name, set_identifier, weight, dns_name):
    """A weighted alias record set (target: a load balancer name)."""
    return {
        "Name": name,
        "Type": "A",
        "SetIdentifier": set_identifier,
        "Weight": weight,
        "AliasTarget": {"HostedZoneId": "Z35SXDOTRQ7X7K", "DNSName": dns_name, "EvaluateTargetHealth": True},
    }


def with_weight(record, weight):
    """Copy of a record set with another weight."""
    return dict(record, Weight=weight)


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
        raise AssertionError("emulator ignored SIGTERM") from None
    check_eq(code, 0)


def check_route53_batches_serialized():
    """In-process: two conditional updates of one record whose validations overlap; one must fail.

    Through HTTP the validation is too quick for two batches to interleave by chance, so this
    imports the emulator module, slows its comparison of records down and calls the patched
    backend method from two threads. Without ROUTE53_CHANGE_LOCK both batches validate against
    the same old record and both apply.
    """
    sys.path.insert(0, os.path.dirname(EMULATOR))
    import failover_emulator as emulator
    from moto.route53.models import Route53Backend

    backend = Route53Backend("us-east-1", "123456789012")
    zone = backend.create_hosted_zone("example.com.", private_zone=False, caller_reference="lock")
    blue = value_record("app.example.com.", "blue", 100, ttl=60, values=["192.0.2.10"])
    emulator.change_resource_record_sets(backend, zone.id, [{"Action": "CREATE", "ResourceRecordSet": blue}])
    outcomes = []

    def conditional_update(weight):
        changes = [
            {"Action": "DELETE", "ResourceRecordSet": blue},
            {"Action": "CREATE", "ResourceRecordSet": with_weight(blue, weight)},
        ]
        try:
            emulator.change_resource_record_sets(backend, zone.id, changes)
            outcomes.append("applied")
        except Exception as err:
            outcomes.append(getattr(err, "code", repr(err)))

    compare = emulator.record_fields

    def slow_compare(record):
        time.sleep(0.05)
        return compare(record)

    emulator.record_fields = slow_compare
    try:
        threads = [threading.Thread(target=conditional_update, args=(weight,)) for weight in (1, 2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
    finally:
        emulator.record_fields = compare
    check_eq(sorted(outcomes), ["InvalidChangeBatch", "applied"])
    check_eq(len([r for r in zone.rrsets if r.set_identifier == "blue"]), 1)


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
    for name, extra_check in (
        ("sigterm", check_signal_exit),
        ("route53-batches-serialized", check_route53_batches_serialized),
        ("local-loop-exit-codes", check_local_loop_exit_codes),
        ("ci-counting", check_ci_counting),
        ("ci-run-exit-codes", check_ci_run_exit_codes),
    ):
        try:
            extra_check()
            print(f"PASS {name}")
        except Exception:
            failures += 1
            print(f"FAIL {name}\n{traceback.format_exc()}")
    print("OK" if failures == 0 else f"{failures} FAILED")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
