"""Seed the emulator: replication groups, a group's primary, the hosted zone and the blue/green pair.

As a library (the drill, the benchmarks, the emulator's tests): ``create_group``, ``describe_group``,
``roles``, ``primary_endpoint``, ``publish_primary``; ``create_zone``, ``weighted_record``,
``set_weights``, ``pair_weights``, ``weighted_pair``. Every function takes the boto3 clients it uses
(``awsbed.aws.clients``).

As a command, ``python -m awsbed.seed`` (``make seed-emulator``, for a by-hand run of the Lambdas):
create the cluster-mode-disabled replication groups ``orders`` and ``sessions`` (one primary
``<group>-001``, one replica ``<group>-002``, automatic failover on) and the hosted zone ``example.com.``
with the weighted pair ``app.example.com`` A, ``blue`` 100 / ``green`` 0, unless they already exist; then
print each group's members and roles, and the zone id (also written to ``--zone-id-file``). ``--record``
(default: ``$RECORD_NAME``, else events/local.env's) names the pair, any name in ``example.com.``, a
wildcard too: ``--record '*.shop.example.com'`` (Route 53, and the emulator, list it as
``\\052.shop.example.com.``).

    python -m awsbed.seed                           # create (idempotent) and print
    python -m awsbed.seed --state published         # ... and write each group's primary into its
                                                    # parameter (REDIS_TARGETS)
    python -m awsbed.seed --failover orders         # TestFailover on node group 0001
    python -m awsbed.seed --weights 75/25           # set blue 75 / green 25
    python -m awsbed.seed --record '*.shop.example.com' --weights 75/25   # another pair
    python -m awsbed.seed --show /app/orders/redis  # SSM parameter values and versions

Seeding always runs first (it is idempotent); then, in this order, ``--state``, ``--failover``,
``--weights`` and ``--show``. The emulator URL comes from ``--endpoint-url``, else ``EMULATOR_URL``, else
http://127.0.0.1:5005. Only loopback URLs are accepted: this command never talks to AWS.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import string
import sys
import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlparse

from . import REPO
from .aws import clients

DEFAULT_URL = "http://127.0.0.1:5005"
DEFAULT_GROUPS = ["orders", "sessions"]
ZONE = "example.com."
# Documentation addresses (RFC 5737): never routed.
COLOURS = {"blue": "192.0.2.10", "green": "198.51.100.20"}
PROG = "python -m awsbed.seed"

Group = dict[str, Any]
"""A replication group as DescribeReplicationGroups returns it."""


# ---- replication groups -----------------------------------------------------------------------------


def create_group(ec: Any, group_id: str, *, replicas: int = 1, description: str | None = None) -> None:
    """A cluster-mode-disabled group: primary ``<group>-001``, `replicas` replicas, automatic failover on."""
    ec.create_replication_group(
        ReplicationGroupId=group_id,
        ReplicationGroupDescription=description or f"{group_id} cache (local emulator)",
        Engine="redis",
        CacheNodeType="cache.t4g.micro",
        ReplicasPerNodeGroup=replicas,  # moto ignores NumCacheClusters
        AutomaticFailoverEnabled=True,
    )


def describe_group(ec: Any, group_id: str) -> Group | None:
    """The group's description, or None if it does not exist."""
    from botocore.exceptions import ClientError

    try:
        return ec.describe_replication_groups(ReplicationGroupId=group_id)["ReplicationGroups"][0]
    except ClientError as err:
        if err.response["Error"]["Code"] == "ReplicationGroupNotFoundFault":
            return None
        raise


def roles(group: Group) -> dict[str, str | None]:
    """{member: CurrentRole (None if absent)} over every node group of a group."""
    return {m["CacheClusterId"]: m.get("CurrentRole") for ng in group["NodeGroups"] for m in ng["NodeGroupMembers"]}


def primary_endpoint(group: Group) -> str | None:
    """``host:port`` of the member whose CurrentRole is primary (cluster mode disabled), or None."""
    for member in group["NodeGroups"][0]["NodeGroupMembers"]:
        if member.get("CurrentRole") == "primary":
            read = member["ReadEndpoint"]
            return f"{read['Address']}:{read['Port']}"
    return None


def publish_primary(ec: Any, ssm: Any, group_id: str, parameter: str) -> str:
    """Write the group's primary into `parameter`, as a reconcile would; the value written."""
    group = describe_group(ec, group_id)
    value = primary_endpoint(group) if group else None
    if value is None:
        raise LookupError(f"{group_id} has no primary")
    ssm.put_parameter(Name=parameter, Value=value, Type="String", Overwrite=True)
    return value


# ---- the hosted zone and the weighted pair --------------------------------------------------------


def create_zone(r53: Any, name: str = ZONE, caller_reference: str | None = None) -> str:
    """A new hosted zone; its id (without ``/hostedzone/``)."""
    zone = r53.create_hosted_zone(Name=name, CallerReference=caller_reference or str(uuid.uuid4()))
    return zone["HostedZone"]["Id"].split("/")[-1]


def find_zone(r53: Any, name: str = ZONE) -> tuple[str, bool]:
    """The id of the zone `name` (created if missing), and whether it was created."""
    for zone in r53.list_hosted_zones_by_name(DNSName=name)["HostedZones"]:
        if zone["Name"] == name:
            return zone["Id"].split("/")[-1], False
    return create_zone(r53, name, "failover-local-seed"), True


def weighted_record(
    name: str, set_identifier: str, weight: int, values: Iterable[str], ttl: int = 60, **extra: Any
) -> dict[str, Any]:
    """A weighted A record set with values, as boto3 takes and returns it."""
    return {
        "Name": name,
        "Type": "A",
        "SetIdentifier": set_identifier,
        "Weight": weight,
        "TTL": ttl,
        "ResourceRecords": [{"Value": v} for v in values],
        **extra,
    }


def set_weights(
    r53: Any,
    zone_id: str,
    record: str,
    weights: dict[str, int],
    action: str = "UPSERT",
    colours: Iterable[str] = ("blue", "green"),
) -> str:
    """Give the pair `record` these weights {colour: weight}, one batch of `action`s; the change id."""
    changes = [
        {"Action": action, "ResourceRecordSet": weighted_record(record, colour, weights[colour], [COLOURS[colour]])}
        for colour in colours
    ]
    return r53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})["ChangeInfo"]["Id"]


def weighted_pair(r53: Any, record: str = "app.example.com.", weights: tuple[int, int] = (100, 0)) -> str:
    """A new zone ``example.com.`` holding the pair `record`: blue and green with these weights; its id."""
    zone_id = create_zone(r53)
    set_weights(r53, zone_id, record, {"blue": weights[0], "green": weights[1]}, action="CREATE")
    return zone_id


def listed_name(name: str) -> str:
    """A record name as Route 53 lists it: trailing dot, '*' and other characters outside letters,
    digits, '-', '_' and '.' as a backslash and three octal digits ('*.shop.example.com' ->
    '\\052.shop.example.com.'). A name already written with such escapes is left as it is."""
    plain = set(string.ascii_letters + string.digits + "-_.\\")
    name = "".join(c if c in plain else "".join(f"\\{b:03o}" for b in c.encode()) for c in name)
    return name if name.endswith(".") else name + "."


def pair_weights(r53: Any, zone_id: str, record: str) -> dict[str, int]:
    """{set identifier: weight} of the records named `record` (either spelling) in the zone."""
    name = listed_name(record).lower()
    records = r53.list_resource_record_sets(HostedZoneId=zone_id, StartRecordName=record)["ResourceRecordSets"]
    return {r["SetIdentifier"]: r["Weight"] for r in records if r["Name"].lower() == name and "SetIdentifier" in r}


# ---- the command: make seed-emulator --------------------------------------------------------------


def local_env() -> dict[str, str]:
    """events/local.env, the functions' configuration for local runs, as a dict."""
    with open(REPO / "events" / "local.env") as f:
        return dict(line.strip().split("=", 1) for line in f if "=" in line and not line.startswith("#"))


def loopback_url(url: str) -> str:
    """Return url if it is http(s) to a loopback host, else exit with a message."""
    parsed = urlparse(url)
    host = parsed.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parsed.scheme not in ("http", "https") or not loopback:
        sys.exit(f"{PROG}: refusing endpoint {url!r}: only http://127.0.0.1:PORT (loopback) is allowed")
    return url


def print_group(group: Group) -> None:
    """One line for the group, one per member: id, CurrentRole, ReadEndpoint."""
    print(f"{group['ReplicationGroupId']}  status={group.get('Status')}")
    for node_group in group.get("NodeGroups", []):
        primary = node_group.get("PrimaryEndpoint") or {}
        if primary:
            endpoint = f"{primary.get('Address')}:{primary.get('Port')}"
            print(f"  node group {node_group.get('NodeGroupId')}  PrimaryEndpoint {endpoint}")
        for member in node_group.get("NodeGroupMembers", []):
            read = member.get("ReadEndpoint") or {}
            print(
                f"  {member.get('CacheClusterId'):<14} {member.get('CurrentRole') or '-':<8} "
                f"{read.get('Address')}:{read.get('Port')}"
            )


def seed_groups(ec: Any, groups: list[str], quiet: bool) -> None:
    """Create each missing group and print it; unless `quiet`, print the existing ones too."""
    for group_id in groups:
        group = describe_group(ec, group_id)
        if group is None:
            create_group(ec, group_id)
            group = describe_group(ec, group_id)
            print("created ", end="")
        elif quiet:
            continue
        else:
            print("exists  ", end="")
        print_group(group)


def ensure_pair(r53: Any, zone_id: str, record: str) -> bool:
    """Create the pair's missing records (blue 100 / green 0); whether any was created."""
    missing = {"blue": 100, "green": 0}.keys() - pair_weights(r53, zone_id, record).keys()
    if missing:
        set_weights(r53, zone_id, record, {"blue": 100, "green": 0}, action="CREATE", colours=sorted(missing))
    return bool(missing)


def print_pair(r53: Any, zone_id: str, record: str) -> None:
    """The zone id and the pair's weights."""
    weights = pair_weights(r53, zone_id, record)
    pair = f"blue {weights.get('blue')} / green {weights.get('green')}"
    print(f"hosted zone {zone_id} ({ZONE})  {listed_name(record)} A  {pair}")


def parse_weights(text: str) -> dict[str, int]:
    """'75/25' -> {"blue": 75, "green": 25}."""
    try:
        blue, green = (int(w) for w in text.split("/"))
    except ValueError:
        sys.exit(f"{PROG}: --weights {text!r}: expected BLUE/GREEN, e.g. 75/25")
    return {"blue": blue, "green": green}


def show(ssm: Any, names: list[str]) -> None:
    """Print value, version and type of each parameter ('(not set)' when absent)."""
    found = {}
    for start in range(0, len(names), 10):  # GetParameters takes at most 10 names
        out = ssm.get_parameters(Names=names[start : start + 10], WithDecryption=True)
        found.update({p["Name"]: p for p in out["Parameters"]})
    for name in names:
        p = found.get(name)
        print(f"{name}  (not set)" if p is None else f"{name} = {p['Value']}  (version {p['Version']}, {p['Type']})")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(prog=PROG, description="Seed a running failover emulator (make seed-emulator).")
    parser.add_argument(
        "--endpoint-url",
        default=os.environ.get("EMULATOR_URL") or DEFAULT_URL,
        help=f"emulator URL (default: $EMULATOR_URL or {DEFAULT_URL})",
    )
    parser.add_argument("--region", default="us-east-1", help="region (default us-east-1)")
    parser.add_argument(
        "--groups",
        nargs="+",
        default=DEFAULT_GROUPS,
        metavar="GROUP",
        help="groups to create (default: orders sessions)",
    )
    parser.add_argument("--failover", metavar="GROUP", help="call TestFailover on GROUP (node group 0001)")
    parser.add_argument("--show", nargs="+", metavar="PARAM", help="print SSM parameter values and versions")
    parser.add_argument(
        "--state", choices=["published"], help="published: write each group's primary into its parameter (--targets)"
    )
    parser.add_argument(
        "--targets",
        default=os.environ.get("REDIS_TARGETS") or local_env()["REDIS_TARGETS"],
        help="group=parameter pairs for --state published (default: $REDIS_TARGETS, else events/local.env)",
    )
    parser.add_argument("--weights", metavar="BLUE/GREEN", help="set the pair's weights, e.g. 75/25")
    parser.add_argument(
        "--record",
        default=os.environ.get("RECORD_NAME") or local_env()["RECORD_NAME"],
        help="the pair's name, in example.com., e.g. '*.shop.example.com' "
        "(default: $RECORD_NAME, else events/local.env)",
    )
    parser.add_argument("--zone-id-file", help="write the hosted zone id into this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Seed (idempotent), then --state, --failover, --weights and --show, in that order."""
    from botocore.exceptions import ClientError, EndpointConnectionError

    args = parse_args(argv)
    ec, ssm, r53 = clients(loopback_url(args.endpoint_url), region=args.region)
    try:
        quiet = bool(args.state or args.failover or args.weights or args.show)
        seed_groups(ec, args.groups, quiet)
        zone_id, created = find_zone(r53)
        created = ensure_pair(r53, zone_id, args.record) or created
        if args.zone_id_file:
            with open(args.zone_id_file, "w") as f:
                f.write(zone_id + "\n")
        if created or not quiet:
            print_pair(r53, zone_id, args.record)
        if args.state == "published":
            for pair in args.targets.split(","):
                group_id, _, name = pair.partition("=")
                try:
                    print(f"published {name} = {publish_primary(ec, ssm, group_id, name)}")
                except LookupError as err:
                    sys.exit(f"{PROG}: {err}")
        if args.failover:
            ec.test_failover(ReplicationGroupId=args.failover, NodeGroupId="0001")
            print(f"TestFailover {args.failover} node group 0001: new roles")
            print_group(describe_group(ec, args.failover))
        if args.weights:
            set_weights(r53, zone_id, args.record, parse_weights(args.weights))
            print_pair(r53, zone_id, args.record)
        if args.show:
            show(ssm, args.show)
    except EndpointConnectionError:
        sys.exit(f"{PROG}: no emulator at {args.endpoint_url}: start it with `make emulator`")
    except ClientError as err:
        error = err.response["Error"]
        sys.exit(f"{PROG}: {err.operation_name} failed: {error.get('Code')}: {error.get('Message')}")


if __name__ == "__main__":
    main()
