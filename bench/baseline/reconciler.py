"""The reconciler's job in plain boto3, for the baseline: for each configured group, find the
primary, compare with the parameter, write it if it differs.

Same AWS calls as the Rust function on the no-change path: one DescribeReplicationGroups (by id
for one group; paged listing of 100 otherwise) and GetParameters in batches of 10.
"""

import os

import boto3
from botocore.config import Config


def init():
    targets = [pair.split("=", 1) for pair in os.environ["REDIS_TARGETS"].split(",")]
    config = Config(retries={"mode": "standard", "total_max_attempts": 4}, connect_timeout=2, read_timeout=4)
    return {
        "targets": targets,
        "ec": boto3.client("elasticache", config=config),
        "ssm": boto3.client("ssm", config=config),
    }


def describe(ec, ids):
    if len(ids) == 1:
        return {
            g["ReplicationGroupId"]: g
            for g in ec.describe_replication_groups(ReplicationGroupId=ids[0])["ReplicationGroups"]
        }
    wanted, found, marker = set(ids), {}, None
    while True:
        kwargs = {"MaxRecords": 100, **({"Marker": marker} if marker else {})}
        page = ec.describe_replication_groups(**kwargs)
        for g in page["ReplicationGroups"]:
            if g["ReplicationGroupId"] in wanted:
                found[g["ReplicationGroupId"]] = g
        marker = page.get("Marker")
        if not marker or len(found) == len(wanted):
            return found


def primary(group):
    for member in group["NodeGroups"][0]["NodeGroupMembers"]:
        if member.get("CurrentRole") == "primary":
            e = member["ReadEndpoint"]
            return f"{e['Address']}:{e['Port']}"
    raise RuntimeError(f"{group['ReplicationGroupId']} has no primary")


def handle(state, event, _time_left):
    targets = state["targets"]
    groups = describe(state["ec"], [g for g, _ in targets])
    names = [p for _, p in targets]
    current = {}
    for start in range(0, len(names), 10):
        out = state["ssm"].get_parameters(Names=names[start : start + 10], WithDecryption=True)
        current.update({p["Name"]: p["Value"] for p in out["Parameters"]})
    results = []
    for group_id, name in targets:
        endpoint = primary(groups[group_id])
        if current.get(name) == endpoint:
            action = "unchanged"
        else:
            state["ssm"].put_parameter(Name=name, Value=endpoint, Type="String", Overwrite=True)
            action = "updated"
        results.append({"replication_group_id": group_id, "parameter": name, "current": endpoint, "action": action})
    return {"results": results}
