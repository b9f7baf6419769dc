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
import subprocess
import sys
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
