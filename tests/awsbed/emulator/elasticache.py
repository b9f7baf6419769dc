"""ElastiCache in the emulator: failovers moto 5.2.5 cannot do, and the control API's group edits.

What it changes in moto, and why:

* ``TestFailover``: moto answers 500 (not implemented). Here it swaps the primary and the first replica
  of the named node group and answers like AWS (the group, as DescribeReplicationGroups shows it, in a
  ``TestFailoverResponse``). The reconciler's tests need a failover they can cause through the API.
* ``ModifyReplicationGroup`` with ``PrimaryClusterId``: moto answers 200 and changes nothing. Here the
  named cluster becomes the primary before moto handles the rest of the request, so moto's answer
  already shows the new roles. An unknown cluster id is ``InvalidParameterValue``.
* The control API's ``/_failover/elasticache/...`` endpoints: ``failover`` (as TestFailover, or to a
  given member), ``roles`` (any roles, e.g. zero or two primaries), ``status`` (e.g. ``modifying``: moto
  never leaves ``available``) and ``endpoints`` (point members and node groups at real addresses, such
  as local redis-server processes: moto's hostnames are random and resolve nowhere).

These read and write moto's in-memory models directly: ``ReplicationGroup.node_groups`` is a list of
dicts whose members carry ``current_role`` (cluster mode disabled only), ``read_endpoint`` and so on.
That is why requirements.txt pins moto exactly. Requests are served on many threads, so every edit of
the models made here holds ``MODEL_LOCK``.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from ._protocol import (
    DEFAULT_REGION,
    ELASTICACHE_VERSION,
    EmulatorError,
    Environ,
    Response,
    account_for_request,
    aws_error,
    credential_scope,
    default_account,
    query_params,
)

MODEL_LOCK = threading.Lock()
"""Held by every edit of moto's ElastiCache models made here (moto's backends have no locks)."""

Group = Any
"""moto's ``ReplicationGroup`` (moto.elasticache.models)."""
NodeGroup = dict[str, Any]
"""One of moto's node group dicts: ``node_group_id``, ``node_group_members``, endpoints, status."""
Member = dict[str, Any]
"""One of moto's member dicts: ``cache_cluster_id``, ``current_role``, ``read_endpoint``."""


# ---- moto's models --------------------------------------------------------------------------------


def find_replication_group(account_id: str, region: str, group_id: str) -> Group:
    """moto's ReplicationGroup object, or EmulatorError 404 ReplicationGroupNotFoundFault."""
    from moto.elasticache.models import elasticache_backends

    group = elasticache_backends[account_id][region].replication_groups.get(group_id)
    if group is None:
        raise EmulatorError(404, "ReplicationGroupNotFoundFault", f"Replication group {group_id} not found.")
    return group


def get_node_group(group: Group, node_group_id: str) -> NodeGroup:
    """The node group dict with this id, or EmulatorError 404 NodeGroupNotFoundFault."""
    for node_group in group.node_groups:
        if node_group["node_group_id"] == node_group_id:
            return node_group
    raise EmulatorError(
        404,
        "NodeGroupNotFoundFault",
        f"Node group {node_group_id} not found in replication group {group.replication_group_id}.",
    )


def node_group_of_member(group: Group, cluster_id: str) -> NodeGroup | None:
    """The node group dict containing member cluster_id, or None."""
    for node_group in group.node_groups:
        for member in node_group["node_group_members"]:
            if member["cache_cluster_id"] == cluster_id:
                return node_group
    return None


def find_member(group: Group, cluster_id: str) -> Member:
    """The member dict for cluster_id, or EmulatorError 404."""
    node_group = node_group_of_member(group, cluster_id)
    if node_group is None:
        raise EmulatorError(
            404,
            "CacheClusterNotFound",
            f"Cache cluster {cluster_id} is not a member of replication group {group.replication_group_id}.",
        )
    return next(m for m in node_group["node_group_members"] if m["cache_cluster_id"] == cluster_id)


def current_primary(node_group: NodeGroup) -> str | None:
    """Id of the node group's primary, or None.

    moto only sets ``current_role`` for cluster-mode-disabled groups; for cluster-mode-enabled ones no
    member has a role and the first member (``<group>-<ng>-001``) is the primary by construction.
    """
    members = node_group["node_group_members"]
    for member in members:
        if member.get("current_role") == "primary":
            return member["cache_cluster_id"]
    if members and not any("current_role" in m for m in members):
        return members[0]["cache_cluster_id"]
    return None


def promote(group: Group, node_group: NodeGroup, new_primary: str) -> None:
    """Make new_primary the node group's only primary; every other member becomes a replica."""
    for member in node_group["node_group_members"]:
        member["current_role"] = "primary" if member["cache_cluster_id"] == new_primary else "replica"
    if group.cluster_mode != "enabled":  # PrimaryClusterId only exists for cluster mode disabled
        group.primary_cluster_id = new_primary


def fail_over(group: Group, node_group_id: str | None = None, new_primary: str | None = None) -> dict[str, Any]:
    """Swap roles in a node group, like TestFailover.

    node_group_id defaults to the node group containing new_primary, else "0001". new_primary defaults
    to the first member that is not the current primary.
    Returns {"replication_group_id", "node_group_id", "old_primary", "new_primary"}.
    """
    if node_group_id:
        node_group = get_node_group(group, node_group_id)
    elif new_primary:
        found = node_group_of_member(group, new_primary)
        if found is None:
            find_member(group, new_primary)  # raises the 404
        node_group = found
    else:
        node_group = get_node_group(group, "0001")
    members = [m["cache_cluster_id"] for m in node_group["node_group_members"]]
    old_primary = current_primary(node_group)
    if new_primary is None:
        candidates = [m for m in members if m != old_primary]
        if not candidates:
            raise EmulatorError(
                400,
                "TestFailoverNotAvailableFault",
                f"Node group {node_group['node_group_id']} has no replica to fail over to.",
            )
        new_primary = candidates[0]
    elif new_primary not in members:
        raise EmulatorError(
            404,
            "CacheClusterNotFound",
            f"Cache cluster {new_primary} is not a member of node group {node_group['node_group_id']}.",
        )
    promote(group, node_group, new_primary)
    return {
        "replication_group_id": group.replication_group_id,
        "node_group_id": node_group["node_group_id"],
        "old_primary": old_primary,
        "new_primary": new_primary,
    }


def all_roles(group: Group) -> dict[str, str | None]:
    """{member id: current role (None if moto set none)} over every node group."""
    return {m["cache_cluster_id"]: m.get("current_role") for ng in group.node_groups for m in ng["node_group_members"]}


def endpoint(value: object, what: str) -> dict[str, Any]:
    """Validate {"address": str, "port": int} from the control API into moto's endpoint dict."""
    if not isinstance(value, dict) or not isinstance(value.get("address"), str):
        raise EmulatorError(400, "BadRequest", f'{what} must be {{"address": str, "port": int}}')
    try:
        port = int(value.get("port", 6379))
    except (TypeError, ValueError):
        raise EmulatorError(400, "BadRequest", f"{what}.port must be an integer") from None
    return {"address": value["address"], "port": port}


# ---- the ElastiCache API ---------------------------------------------------------------------------


def request_group(environ: Environ, params: dict[str, str]) -> Group:
    """moto's ReplicationGroup named by the request's ReplicationGroupId (in its account and region)."""
    access_key, region, _ = credential_scope(environ)
    account_id = account_for_request(environ, access_key)
    return find_replication_group(account_id, region or DEFAULT_REGION, params.get("ReplicationGroupId", ""))


def serve(operation: str, environ: Environ, body: bytes, call_moto: Callable[[Environ], Response]) -> Response | None:
    """Our part of an ElastiCache request: the whole answer (TestFailover, an error), or None for moto's."""
    try:
        if operation == "TestFailover":
            return test_failover(environ, body, call_moto)
        if operation == "ModifyReplicationGroup":
            apply_primary_cluster_id(environ, body)
    except EmulatorError as err:
        return aws_error("elasticache", err.status, err.code, err.message)
    return None


def test_failover(environ: Environ, body: bytes, call_moto: Callable[[Environ], Response]) -> Response:
    """ElastiCache TestFailover: swap roles, then answer with the group as AWS does.

    The response body is moto's DescribeReplicationGroups output for the group with the wrapper
    elements renamed to TestFailoverResponse/Result and the ReplicationGroups list unwrapped to a single
    ReplicationGroup.
    """
    params = query_params(environ, body)
    group_id = params.get("ReplicationGroupId", "")
    with MODEL_LOCK:
        group = request_group(environ, params)
        fail_over(group, node_group_id=params.get("NodeGroupId") or "0001")

    describe = f"Action=DescribeReplicationGroups&Version={ELASTICACHE_VERSION}&ReplicationGroupId={quote(group_id)}"
    inner = dict(environ)
    inner.update(
        {
            "REQUEST_METHOD": "POST",
            "QUERY_STRING": "",
            "CONTENT_TYPE": "application/x-www-form-urlencoded; charset=utf-8",
            "CONTENT_LENGTH": str(len(describe)),
            "wsgi.input": io.BytesIO(describe.encode("utf-8")),
        }
    )
    status, headers, xml = call_moto(inner)
    if status != 200:
        return status, headers, xml
    text = xml.decode("utf-8")
    text = text.replace("DescribeReplicationGroupsResponse", "TestFailoverResponse")
    text = text.replace("DescribeReplicationGroupsResult", "TestFailoverResult")
    text = text.replace("<ReplicationGroups>", "").replace("</ReplicationGroups>", "")
    return status, headers, text.encode("utf-8")


def apply_primary_cluster_id(environ: Environ, body: bytes) -> None:
    """ModifyReplicationGroup PrimaryClusterId=X: make X primary in its node group.

    The request then goes to moto unchanged (moto ignores PrimaryClusterId), so its response already
    shows the new roles. An unknown group is left for moto to report; an unknown cluster id is
    InvalidParameterValue.
    """
    params = query_params(environ, body)
    new_primary = params.get("PrimaryClusterId")
    if not new_primary:
        return
    with MODEL_LOCK:
        try:
            group = request_group(environ, params)
        except EmulatorError:
            return  # moto answers ReplicationGroupNotFoundFault itself
        node_group = node_group_of_member(group, new_primary)
        if node_group is None:
            raise EmulatorError(
                400,
                "InvalidParameterValue",
                f"Cache cluster {new_primary} is not a member of replication group {group.replication_group_id}.",
            )
        promote(group, node_group, new_primary)


# ---- the control API: POST /_failover/elasticache/<what> ------------------------------------------


def control_group(data: dict[str, Any]) -> Group:
    """The ReplicationGroup named in a control request (optional "region", "account_id")."""
    group_id = data.get("replication_group_id")
    if not isinstance(group_id, str) or not group_id:
        raise EmulatorError(400, "BadRequest", '"replication_group_id" is required')
    region = data.get("region") or DEFAULT_REGION
    account_id = data.get("account_id") or default_account()
    return find_replication_group(account_id, region, group_id)


def control_failover(data: dict[str, Any]) -> dict[str, Any]:
    """POST /_failover/elasticache/failover {replication_group_id, new_primary?, node_group_id?}."""
    with MODEL_LOCK:
        group = control_group(data)
        return fail_over(group, data.get("node_group_id"), data.get("new_primary"))


def control_roles(data: dict[str, Any]) -> dict[str, Any]:
    """POST /_failover/elasticache/roles {replication_group_id, roles: {member: role}}.

    Any role strings are accepted, so a test can show zero or two primaries.
    """
    roles = data.get("roles")
    if not isinstance(roles, dict):
        raise EmulatorError(400, "BadRequest", '"roles" must be an object {member: role}')
    with MODEL_LOCK:
        group = control_group(data)
        members = {cluster_id: find_member(group, cluster_id) for cluster_id in roles}
        for cluster_id, role in roles.items():
            members[cluster_id]["current_role"] = role
        primaries = [m for m, r in all_roles(group).items() if r == "primary"]
        if group.cluster_mode != "enabled" and len(primaries) == 1:
            group.primary_cluster_id = primaries[0]
        return {"replication_group_id": group.replication_group_id, "roles": all_roles(group)}


def control_status(data: dict[str, Any]) -> dict[str, Any]:
    """POST /_failover/elasticache/status {replication_group_id, status}: group and node group Status."""
    status = data.get("status")
    if not isinstance(status, str) or not status:
        raise EmulatorError(400, "BadRequest", '"status" is required (e.g. "modifying")')
    with MODEL_LOCK:
        group = control_group(data)
        group.status = status
        for node_group in group.node_groups:
            node_group["status"] = status
        return {"replication_group_id": group.replication_group_id, "status": status}


def control_endpoints(data: dict[str, Any]) -> dict[str, Any]:
    """POST /_failover/elasticache/endpoints: point members / node group at real addresses.

    Body: {replication_group_id, members?: {member: {address, port}}, primary_endpoint?: {address, port},
    reader_endpoint?: {address, port}, node_group_id?: "0001", configuration_endpoint?: {address, port}}.
    """
    members = data.get("members") or {}
    if not isinstance(members, dict):
        raise EmulatorError(400, "BadRequest", '"members" must be an object {member: {address, port}}')
    with MODEL_LOCK:
        group = control_group(data)
        new_reads = {cid: endpoint(value, f"members.{cid}") for cid, value in members.items()}
        targets = {cid: find_member(group, cid) for cid in new_reads}  # validate all first
        for cid, read_endpoint in new_reads.items():
            targets[cid]["read_endpoint"] = read_endpoint
        if data.get("primary_endpoint") or data.get("reader_endpoint"):
            node_group = get_node_group(group, data.get("node_group_id") or "0001")
            if data.get("primary_endpoint"):
                primary = endpoint(data["primary_endpoint"], "primary_endpoint")
                node_group["primary_endpoint"] = primary
                node_group["primary_endpoint_address"] = primary["address"]
                node_group["port"] = primary["port"]
            if data.get("reader_endpoint"):
                reader = endpoint(data["reader_endpoint"], "reader_endpoint")
                node_group["reader_endpoint"] = reader
                node_group["reader_endpoint_address"] = reader["address"]
        if data.get("configuration_endpoint"):
            group.configuration_endpoint = endpoint(data["configuration_endpoint"], "configuration_endpoint")
        return {
            "replication_group_id": group.replication_group_id,
            "members": {
                m["cache_cluster_id"]: m.get("read_endpoint")
                for ng in group.node_groups
                for m in ng["node_group_members"]
            },
            "node_groups": {
                ng["node_group_id"]: {
                    "primary_endpoint": ng.get("primary_endpoint"),
                    "reader_endpoint": ng.get("reader_endpoint"),
                }
                for ng in group.node_groups
            },
        }


CONTROL: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "/_failover/elasticache/failover": control_failover,
    "/_failover/elasticache/roles": control_roles,
    "/_failover/elasticache/status": control_status,
    "/_failover/elasticache/endpoints": control_endpoints,
}
"""The control API's ElastiCache endpoints (all POST), by path."""
