"""ElastiCache in the emulator (awsbed.emulator.elasticache): TestFailover, PrimaryClusterId, and the
control API's failover, roles, status and endpoints."""

from __future__ import annotations

from awsbed.seed import create_group, describe_group, roles
from helpers import Bed, control, error_code


def create_orders(bed: Bed) -> None:
    """Cluster-mode-disabled group 'orders': orders-001 primary, -002/-003 replicas."""
    create_group(bed.ec, "orders", replicas=2, description="orders cache")


def roles_of(bed: Bed, group_id: str = "orders") -> dict[str, str | None]:
    """{member: CurrentRole} from DescribeReplicationGroups (None if absent)."""
    group = describe_group(bed.ec, group_id)
    assert group is not None
    return roles(group)


def test_test_failover_swaps_primary_and_first_replica(bed: Bed) -> None:
    create_orders(bed)
    assert roles_of(bed) == {"orders-001": "primary", "orders-002": "replica", "orders-003": "replica"}
    resp = bed.ec.test_failover(ReplicationGroupId="orders", NodeGroupId="0001")
    assert resp["ReplicationGroup"]["ReplicationGroupId"] == "orders"
    assert roles(resp["ReplicationGroup"])["orders-002"] == "primary"
    assert roles_of(bed) == {"orders-001": "replica", "orders-002": "primary", "orders-003": "replica"}
    # and back: the first replica (orders-001) becomes primary again
    bed.ec.test_failover(ReplicationGroupId="orders", NodeGroupId="0001")
    assert roles_of(bed)["orders-001"] == "primary"
    assert error_code(bed.ec.test_failover, ReplicationGroupId="nope", NodeGroupId="0001") == (
        "ReplicationGroupNotFoundFault",
        404,
    )
    assert error_code(bed.ec.test_failover, ReplicationGroupId="orders", NodeGroupId="0009") == (
        "NodeGroupNotFoundFault",
        404,
    )


def test_test_failover_in_cluster_mode(bed: Bed) -> None:
    bed.ec.create_replication_group(
        ReplicationGroupId="cm",
        ReplicationGroupDescription="cluster mode",
        Engine="redis",
        CacheNodeType="cache.t3.micro",
        ClusterMode="enabled",
        NumNodeGroups=2,
        ReplicasPerNodeGroup=1,
    )
    assert roles_of(bed, "cm") == {"cm-0001-001": None, "cm-0001-002": None, "cm-0002-001": None, "cm-0002-002": None}
    bed.ec.test_failover(ReplicationGroupId="cm", NodeGroupId="0002")
    assert roles_of(bed, "cm") == {
        "cm-0001-001": None,
        "cm-0001-002": None,
        "cm-0002-001": "replica",
        "cm-0002-002": "primary",
    }


def test_modify_with_primary_cluster_id_promotes_it(bed: Bed) -> None:
    create_orders(bed)
    resp = bed.ec.modify_replication_group(
        ReplicationGroupId="orders", PrimaryClusterId="orders-003", ApplyImmediately=True
    )
    assert roles(resp["ReplicationGroup"]) == {
        "orders-001": "replica",
        "orders-002": "replica",
        "orders-003": "primary",
    }
    assert roles_of(bed)["orders-003"] == "primary"
    modify = bed.ec.modify_replication_group
    assert error_code(modify, ReplicationGroupId="orders", PrimaryClusterId="orders-999", ApplyImmediately=True) == (
        "InvalidParameterValue",
        400,
    )
    assert error_code(modify, ReplicationGroupId="nope", PrimaryClusterId="orders-001", ApplyImmediately=True) == (
        "ReplicationGroupNotFoundFault",
        404,
    )


def test_control_failover(bed: Bed) -> None:
    create_orders(bed)
    body = control(bed, "elasticache/failover", {"replication_group_id": "orders"})
    assert body == {
        "replication_group_id": "orders",
        "node_group_id": "0001",
        "old_primary": "orders-001",
        "new_primary": "orders-002",
    }
    body = bed.control.failover("orders", new_primary="orders-003", node_group_id="0001")
    assert (body["old_primary"], body["new_primary"]) == ("orders-002", "orders-003")
    assert roles_of(bed) == {"orders-001": "replica", "orders-002": "replica", "orders-003": "primary"}
    control(bed, "elasticache/failover", {"replication_group_id": "nope"}, expect=404)
    err = control(bed, "elasticache/failover", {"replication_group_id": "orders", "new_primary": "x"}, expect=404)
    assert "error" in err


def test_control_roles_status_and_endpoints(bed: Bed) -> None:
    create_orders(bed)
    bed.control.set_roles("orders", {"orders-001": "replica", "orders-002": "replica"})
    assert roles_of(bed) == {"orders-001": "replica", "orders-002": "replica", "orders-003": "replica"}
    bed.control.set_roles("orders", {"orders-001": "primary", "orders-002": "primary"})
    assert sorted(m for m, r in roles_of(bed).items() if r == "primary") == ["orders-001", "orders-002"]
    control(bed, "elasticache/roles", {"replication_group_id": "orders", "roles": {"nope": "primary"}}, expect=404)

    bed.control.set_status("orders", "modifying")
    group = describe_group(bed.ec, "orders")
    assert group is not None
    assert (group["Status"], group["NodeGroups"][0]["Status"]) == ("modifying", "modifying")

    bed.control.set_endpoints(
        "orders",
        {"orders-001": ("127.0.0.1", 7001), "orders-002": ("127.0.0.1", 7002)},
        primary_endpoint={"address": "127.0.0.1", "port": 7000},
        reader_endpoint={"address": "127.0.0.1", "port": 7010},
    )
    group = describe_group(bed.ec, "orders")
    assert group is not None
    node_group = group["NodeGroups"][0]
    assert node_group["PrimaryEndpoint"] == {"Address": "127.0.0.1", "Port": 7000}
    assert node_group["ReaderEndpoint"] == {"Address": "127.0.0.1", "Port": 7010}
    reads = {m["CacheClusterId"]: m["ReadEndpoint"] for m in node_group["NodeGroupMembers"]}
    assert reads["orders-001"] == {"Address": "127.0.0.1", "Port": 7001}
    assert reads["orders-002"] == {"Address": "127.0.0.1", "Port": 7002}
    assert reads["orders-003"]["Address"].endswith(".cache.amazonaws.com"), "orders-003 endpoint changed"
