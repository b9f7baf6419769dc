"""Seed a running failover emulator for a by-hand run of the Lambdas (`make seed-emulator`).

Default: create the cluster-mode-disabled replication groups ``orders`` and ``sessions``
(one primary ``<group>-001``, one replica ``<group>-002``, automatic failover on) unless they
already exist, then print each group's members and roles.

    python tests/emulator/seed.py                           # create (idempotent) and print
    python tests/emulator/seed.py --failover orders         # TestFailover on node group 0001
    python tests/emulator/seed.py --show /app/orders/redis  # SSM parameter values and versions

``--failover`` and ``--show`` only do what they say (no seeding); given together, the failover
runs first. The emulator URL comes from ``--endpoint-url``, else ``EMULATOR_URL``, else
http://127.0.0.1:5005. Only loopback URLs are accepted: this script never talks to AWS.
"""

import argparse
import ipaddress
import os
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
    """(elasticache, ssm) boto3 clients for the emulator; one attempt, short timeouts."""
    kwargs = dict(
        endpoint_url=url,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=10),
    )
    return boto3.client("elasticache", **kwargs), boto3.client("ssm", **kwargs)


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
    args = parser.parse_args(argv)

    ec, ssm = clients(loopback_url(args.endpoint_url), args.region)
    try:
        if not args.failover and not args.show:
            seed(ec, args.groups)
        if args.failover:
            failover(ec, args.failover)
        if args.show:
            show(ssm, args.show)
    except EndpointConnectionError:
        sys.exit(f"seed.py: no emulator at {args.endpoint_url}: start it with `make emulator`")
    except ClientError as err:
        error = err.response["Error"]
        sys.exit(f"seed.py: {err.operation_name} failed: {error.get('Code')}: {error.get('Message')}")


if __name__ == "__main__":
    main()
