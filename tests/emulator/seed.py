"""Seed a running failover emulator for a by-hand run of the Lambdas (`make seed-emulator`).

Default: create the cluster-mode-disabled replication groups ``orders`` and ``sessions``
(one primary ``<group>-001``, one replica ``<group>-002``, automatic failover on) and the hosted
zone ``example.com.`` with the weighted pair ``app.example.com`` A, ``blue`` 100 / ``green`` 0,
unless they already exist; then print each group's members and roles, and the zone id (also
written to ``--zone-id-file``). ``--record`` (default: ``$RECORD_NAME``, else events/local.env's)
names the pair, any name in ``example.com.``, a wildcard too: ``--record '*.shop.example.com'``
(Route 53, and the emulator, list it as ``\\052.shop.example.com.``).

    python tests/emulator/seed.py                           # create (idempotent) and print
    python tests/emulator/seed.py --state published         # ... and write each group's primary
                                                            # into its parameter (REDIS_TARGETS)
    python tests/emulator/seed.py --failover orders         # TestFailover on node group 0001
    python tests/emulator/seed.py --weights 75/25           # set blue 75 / green 25
    python tests/emulator/seed.py --record '*.shop.example.com' --weights 75/25   # another pair
    python tests/emulator/seed.py --show /app/orders/redis  # SSM parameter values and versions

Seeding always runs first (it is idempotent); then, in this order, ``--state``, ``--failover``,
``--weights`` and ``--show``. The emulator URL comes from ``--endpoint-url``, else ``EMULATOR_URL``, else
http://127.0.0.1:5005. Only loopback URLs are accepted: this script never talks to AWS.
"""

import argparse
import ipaddress
import os
import string
import sys
from urllib.parse import urlparse

# Hermetic: no proxies, no local AWS profile or config; dummy credentials.
for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy", "AWS_PROFILE"):
    os.environ.pop(var, None)
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
os.environ["AWS_CONFIG_FILE"] = os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError, EndpointConnectionError  # noqa: E402

DEFAULT_URL = "http://127.0.0.1:5005"
DEFAULT_GROUPS = ["orders", "sessions"]
ZONE = "example.com."
# Documentation addresses (RFC 5737): never routed.
COLOURS = {"blue": "192.0.2.10", "green": "198.51.100.20"}


def local_env():
    """events/local.env, the functions' configuration for local runs, as a dict."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "events", "local.env")
    with open(path) as f:
        return dict(line.strip().split("=", 1) for line in f if "=" in line and not line.startswith("#"))


def loopback_url(url):
    """Return url if it is http(s) to a loopback host, else exit with a message."""
    parsed = urlparse(url)
    host = parsed.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parsed.scheme not in ("http", "https") or not loopback:
        sys.exit(f"seed.py: refusing endpoint {url!r}: only http://127.0.0.1:PORT (loopback) is allowed")
    return url


def clients(url, region):
    """(elasticache, ssm, route53) boto3 clients for the emulator; one attempt, short timeouts."""
    kwargs = dict(
        endpoint_url=url,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=10),
    )
    return tuple(boto3.client(service, **kwargs) for service in ("elasticache", "ssm", "route53"))


def describe(ec, group_id):
    """The group's description, or None if it does not exist."""
    try:
        return ec.describe_replication_groups(ReplicationGroupId=group_id)["ReplicationGroups"][0]
    except ClientError as err:
        if err.response["Error"]["Code"] == "ReplicationGroupNotFoundFault":
            return None
        raise


def print_group(group):
    """One line for the group, one per member: id, CurrentRole, ReadEndpoint."""
    print(f"{group['ReplicationGroupId']}  status={group.get('Status')}")
    for node_group in group.get("NodeGroups", []):
        primary = node_group.get("PrimaryEndpoint") or {}
        if primary:
            print(
                f"  node group {node_group.get('NodeGroupId')}  "
                f"PrimaryEndpoint {primary.get('Address')}:{primary.get('Port')}"
            )
        for member in node_group.get("NodeGroupMembers", []):
            read = member.get("ReadEndpoint") or {}
            print(
                f"  {member.get('CacheClusterId'):<14} {member.get('CurrentRole') or '-':<8} "
                f"{read.get('Address')}:{read.get('Port')}"
            )


def seed(ec, groups):
    """Create each missing group; print every group."""
    for group_id in groups:
        group = describe(ec, group_id)
        if group is None:
            ec.create_replication_group(
                ReplicationGroupId=group_id,
                ReplicationGroupDescription=f"{group_id} cache (local emulator)",
                Engine="redis",
                CacheNodeType="cache.t4g.micro",
                ReplicasPerNodeGroup=1,  # moto ignores NumCacheClusters
                AutomaticFailoverEnabled=True,
            )
            group = describe(ec, group_id)
            print("created ", end="")
        else:
            print("exists  ", end="")
        print_group(group)


def primary_endpoint(group):
    """host:port of the member whose CurrentRole is primary (cluster mode disabled)."""
    for member in group["NodeGroups"][0]["NodeGroupMembers"]:
        if member.get("CurrentRole") == "primary":
            read = member["ReadEndpoint"]
            return f"{read['Address']}:{read['Port']}"
    sys.exit(f"seed.py: {group['ReplicationGroupId']} has no primary")


def publish(ec, ssm, targets):
    """Write each group's current primary into its parameter, as a reconcile would."""
    for pair in targets.split(","):
        group_id, _, name = pair.partition("=")
        value = primary_endpoint(describe(ec, group_id))
        ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True)
        print(f"published {name} = {value}")


def listed_name(name):
    """A record name as Route 53 lists it: trailing dot, '*' and other characters outside letters,
    digits, '-', '_' and '.' as a backslash and three octal digits ('*.shop.example.com' ->
    '\\052.shop.example.com.'). A name already written with such escapes is left as it is."""
    plain = set(string.ascii_letters + string.digits + "-_.\\")
    name = "".join(c if c in plain else "".join(f"\\{b:03o}" for b in c.encode()) for c in name)
    return name if name.endswith(".") else name + "."


def zone_id(r53):
    """The id of the emulator's example.com. zone (created if missing), and whether it was created."""
    for zone in r53.list_hosted_zones_by_name(DNSName=ZONE)["HostedZones"]:
        if zone["Name"] == ZONE:
            return zone["Id"].split("/")[-1], False
    zone = r53.create_hosted_zone(Name=ZONE, CallerReference="failover-local-seed")["HostedZone"]
    return zone["Id"].split("/")[-1], True


def pair_weights(r53, zid, record):
    """{set identifier: weight} of the records named `record` (either spelling) in the zone."""
    name = listed_name(record).lower()
    records = r53.list_resource_record_sets(HostedZoneId=zid, StartRecordName=record)["ResourceRecordSets"]
    return {r["SetIdentifier"]: r["Weight"] for r in records if r["Name"].lower() == name and "SetIdentifier" in r}


def ensure_pair(r53, zid, record):
    """Create the pair's missing records (blue 100 / green 0); whether any was created."""
    missing = {"blue": 100, "green": 0}.keys() - pair_weights(r53, zid, record).keys()
    if missing:
        set_weights(r53, zid, record, {"blue": 100, "green": 0}, action="CREATE", colours=sorted(missing))
    return bool(missing)


def set_weights(r53, zid, record, weights, action="UPSERT", colours=("blue", "green")):
    """Give the pair these weights {colour: weight} (one batch)."""
    changes = [
        {
            "Action": action,
            "ResourceRecordSet": {
                "Name": record,
                "Type": "A",
                "SetIdentifier": colour,
                "Weight": weights[colour],
                "TTL": 60,
                "ResourceRecords": [{"Value": COLOURS[colour]}],
            },
        }
        for colour in colours
    ]
    r53.change_resource_record_sets(HostedZoneId=zid, ChangeBatch={"Changes": changes})


def print_pair(r53, zid, record):
    """The zone id and the pair's weights."""
    weights = pair_weights(r53, zid, record)
    pair = f"blue {weights.get('blue')} / green {weights.get('green')}"
    print(f"hosted zone {zid} ({ZONE})  {listed_name(record)} A  {pair}")


def parse_weights(text):
    """'75/25' -> {"blue": 75, "green": 25}."""
    try:
        blue, green = (int(w) for w in text.split("/"))
    except ValueError:
        sys.exit(f"seed.py: --weights {text!r}: expected BLUE/GREEN, e.g. 75/25")
    return {"blue": blue, "green": green}


def failover(ec, group_id):
    """TestFailover on node group 0001, then print the new roles."""
    ec.test_failover(ReplicationGroupId=group_id, NodeGroupId="0001")
    print(f"TestFailover {group_id} node group 0001: new roles")
    print_group(describe(ec, group_id))


def show(ssm, names):
    """Print value, version and type of each parameter ('(not set)' when absent)."""
    found = {}
    for start in range(0, len(names), 10):  # GetParameters takes at most 10 names
        out = ssm.get_parameters(Names=names[start : start + 10], WithDecryption=True)
        found.update({p["Name"]: p for p in out["Parameters"]})
    for name in names:
        p = found.get(name)
        if p is None:
            print(f"{name}  (not set)")
        else:
            print(f"{name} = {p['Value']}  (version {p['Version']}, {p['Type']})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
        "--state",
        choices=["published"],
        help="published: write each group's primary into its parameter (--targets)",
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
    args = parser.parse_args(argv)

    ec, ssm, r53 = clients(loopback_url(args.endpoint_url), args.region)
    try:
        quiet = bool(args.state or args.failover or args.weights or args.show)
        if quiet:
            for group_id in args.groups:
                if describe(ec, group_id) is None:
                    seed(ec, [group_id])
        else:
            seed(ec, args.groups)
        zid, created = zone_id(r53)
        created = ensure_pair(r53, zid, args.record) or created
        if args.zone_id_file:
            with open(args.zone_id_file, "w") as f:
                f.write(zid + "\n")
        if created or not quiet:
            print_pair(r53, zid, args.record)
        if args.state == "published":
            publish(ec, ssm, args.targets)
        if args.failover:
            failover(ec, args.failover)
        if args.weights:
            set_weights(r53, zid, args.record, parse_weights(args.weights))
            print_pair(r53, zid, args.record)
        if args.show:
            show(ssm, args.show)
    except EndpointConnectionError:
        sys.exit(f"seed.py: no emulator at {args.endpoint_url}: start it with `make emulator`")
    except ClientError as err:
        error = err.response["Error"]
        sys.exit(f"seed.py: {err.operation_name} failed: {error.get('Code')}: {error.get('Message')}")


if __name__ == "__main__":
    main()
