"""Faults, the request log, reset and the control API's errors (awsbed.emulator.faults and .app)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from awsbed.seed import create_group
from botocore.exceptions import ClientError
from helpers import Bed, Zone, control, error_code


def fail_once(bed: Bed, service: str, operation: str, code: str, message: str) -> int:
    """A fault that answers the next `operation` of `service` with `code` (HTTP 400), once."""
    return bed.control.add_fault(service=service, operation=operation, status=400, code=code, message=message, count=1)


def test_ssm_throttle_fault(bed: Bed) -> None:
    bed.ssm.put_parameter(Name="/orders/primary", Value="orders-001", Type="String")
    fault = control(
        bed,
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
    assert isinstance(fault.get("id"), int), f"bad fault id {fault}"
    with pytest.raises(ClientError) as throttled:
        bed.ssm.get_parameter(Name="/orders/primary")
    assert throttled.value.response["Error"]["Code"] == "ThrottlingException"
    assert throttled.value.response["Error"]["Message"] == "Rate exceeded"
    assert throttled.value.response["ResponseMetadata"]["RetryAttempts"] == 0
    assert bed.ssm.get_parameter(Name="/orders/primary")["Parameter"]["Value"] == "orders-001"
    assert [(f["id"], f["remaining"], f["hits"]) for f in bed.control.faults()] == [(fault["id"], 0, 1)]


def test_fault_match_and_wildcard_operation(bed: Bed) -> None:
    bed.ssm.put_parameter(Name="/orders/primary", Value="a", Type="String")
    bed.ssm.put_parameter(Name="/payments/primary", Value="b", Type="String")
    bed.control.add_fault(service="ssm", operation="*", status=500, code="InternalServerError", match="orders")
    assert bed.ssm.get_parameter(Name="/payments/primary")["Parameter"]["Value"] == "b"
    for _ in range(2):  # no count: every matching request fails
        assert error_code(bed.ssm.get_parameter, Name="/orders/primary") == ("InternalServerError", 500)
    assert error_code(bed.ssm.get_parameters, Names=["/orders/primary"]) == ("InternalServerError", 500)
    bed.control.clear_faults()
    assert bed.control.faults() == []
    assert bed.ssm.get_parameter(Name="/orders/primary")["Parameter"]["Value"] == "a"


def test_elasticache_fault(bed: Bed) -> None:
    create_group(bed.ec, "orders", replicas=2)
    fail_once(bed, "elasticache", "DescribeReplicationGroups", "InvalidReplicationGroupState", "busy")
    assert error_code(bed.ec.describe_replication_groups, ReplicationGroupId="orders") == (
        "InvalidReplicationGroupState",
        400,
    )
    bed.ec.describe_replication_groups(ReplicationGroupId="orders")


def test_route53_fault(bed: Bed) -> None:
    zone = Zone(bed.r53, "ref-1", name="example.internal")
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
    fail_once(bed, "route53", "ChangeResourceRecordSets", "PriorRequestNotComplete", "still busy")
    assert error_code(bed.r53.change_resource_record_sets, HostedZoneId=zone.id, ChangeBatch=change) == (
        "PriorRequestNotComplete",
        400,
    )
    resp = bed.r53.change_resource_record_sets(HostedZoneId=zone.id, ChangeBatch=change)
    bed.r53.get_change(Id=resp["ChangeInfo"]["Id"])
    assert "orders.example.internal." in [r["Name"] for r in zone.records()]
    assert [(r["operation"], r["status"]) for r in bed.control.requests()] == [
        ("CreateHostedZone", 201),
        ("ChangeResourceRecordSets", 400),
        ("ChangeResourceRecordSets", 200),
        ("GetChange", 200),
        ("ListResourceRecordSets", 200),
    ]


def test_delay_fault(bed: Bed) -> None:
    bed.ssm.put_parameter(Name="/orders/primary", Value="a", Type="String")
    bed.control.add_fault(service="ssm", operation="GetParameter", delay_ms=600, count=1)
    started = time.monotonic()
    assert bed.ssm.get_parameter(Name="/orders/primary")["Parameter"]["Value"] == "a"
    delayed = time.monotonic() - started
    started = time.monotonic()
    bed.ssm.get_parameter(Name="/orders/primary")
    fast = time.monotonic() - started
    assert delayed >= 0.6, f"delay fault took only {delayed:.3f}s"
    assert fast < 0.5, f"second call still slow: {fast:.3f}s"


def test_fault_body_contains_denies_one_parameter(bed: Bed) -> None:
    """body_contains: only requests whose raw body holds the text fail; other names and operations pass.
    The error is awsJson 1.1 (__type) with HTTP 400, as SSM sends it."""
    bed.ssm.put_parameter(Name="/app/a/redis", Value="a:6379", Type="String")
    bed.ssm.put_parameter(Name="/app/b/redis", Value="b:6379", Type="String")
    denied = (
        "User: arn:aws:sts::123456789012:assumed-role/reconciler/s is not authorized to perform: "
        "ssm:GetParameters on resource: arn:aws:ssm:us-east-1:123456789012:parameter/app/b/redis"
    )
    fault_id = bed.control.add_fault(
        service="ssm",
        operation="GetParameters",
        body_contains="/app/b/redis",
        code="AccessDeniedException",
        message=denied,
    )
    sent: list[bytes] = []
    raw: list[dict[str, Any]] = []
    bed.ssm.meta.events.register("before-send.ssm.GetParameters", lambda request, **_: sent.append(request.body))
    bed.ssm.meta.events.register("before-parse.ssm.GetParameters", lambda response_dict, **_: raw.append(response_dict))
    try:
        for _ in range(2):  # no count: every matching request fails
            assert error_code(bed.ssm.get_parameters, Names=["/app/a/redis", "/app/b/redis"]) == (
                "AccessDeniedException",
                400,
            )
        got = bed.ssm.get_parameters(Names=["/app/a/redis"])["Parameters"]
        assert [p["Value"] for p in got] == ["a:6379"]
    finally:
        bed.ssm.meta.events.unregister("before-send.ssm.GetParameters")
        bed.ssm.meta.events.unregister("before-parse.ssm.GetParameters")
    # botocore sends '/' unescaped (so does aws-smithy-json): the raw body holds the name as is
    assert b'"/app/b/redis"' in sent[0] and b"\\/" not in sent[0], f"body: {sent[0]!r}"
    assert raw[0]["status_code"] == 400
    assert json.loads(raw[0]["body"]) == {"__type": "AccessDeniedException", "message": denied}
    # other operations are not matched by operation; GetParameter of the same name succeeds
    assert bed.ssm.get_parameter(Name="/app/b/redis")["Parameter"]["Value"] == "b:6379"
    assert bed.ssm.get_parameter(Name="/app/a/redis")["Parameter"]["Value"] == "a:6379"
    assert [(f["id"], f["body_contains"], f["hits"]) for f in bed.control.faults()] == [(fault_id, "/app/b/redis", 2)]


def test_fault_body_contains_looks_at_the_body_only(bed: Bed) -> None:
    """Unlike "match" (path, query and body), body_contains never matches the path; both given: both must hold."""
    zone = Zone(bed.r53, "body")
    bed.control.add_fault(service="route53", body_contains=zone.id, code="Throttling")
    bed.r53.list_resource_record_sets(HostedZoneId=zone.id)  # GET: the zone id is in the path, not the body
    bed.ssm.put_parameter(Name="/app/a/redis", Value="a", Type="String")
    bed.control.add_fault(service="ssm", match="/app/a/", body_contains="WithDecryption", code="Throttling")
    assert bed.ssm.get_parameter(Name="/app/a/redis")["Parameter"]["Value"] == "a"
    assert error_code(bed.ssm.get_parameter, Name="/app/a/redis", WithDecryption=True) == ("Throttling", 400)
    for bad in ("", 5, ["x"]):
        control(bed, "faults", {"service": "ssm", "body_contains": bad, "code": "Throttling"}, expect=400)


def test_request_log(bed: Bed) -> None:
    create_group(bed.ec, "orders", replicas=2)
    bed.ssm.put_parameter(Name="/orders/primary", Value="a", Type="String")
    bed.control.add_fault(service="ssm", operation="GetParameters", code="ThrottlingException", count=1)
    error_code(bed.ssm.get_parameters, Names=["/orders/primary"])
    bed.ssm.get_parameters(Names=["/orders/primary"])
    bed.ec.test_failover(ReplicationGroupId="orders", NodeGroupId="0001")
    log = bed.control.requests()
    assert [(r["service"], r["operation"], r["status"]) for r in log] == [
        ("elasticache", "CreateReplicationGroup", 200),
        ("ssm", "PutParameter", 200),
        ("ssm", "GetParameters", 400),
        ("ssm", "GetParameters", 200),
        ("elasticache", "TestFailover", 200),
    ]
    assert log[0]["path"] == "/"
    assert log[2]["fault_id"] is not None and log[3]["fault_id"] is None, f"fault ids wrong: {log}"
    bed.control.clear_requests()
    assert bed.control.requests() == []


def test_moto_reset_clears_faults_and_log(bed: Bed) -> None:
    create_group(bed.ec, "orders", replicas=2)
    bed.control.add_fault(service="ssm", operation="*", code="ThrottlingException")
    status, _ = bed.control.call("POST", "/moto-api/reset")
    assert status == 200
    assert bed.control.faults() == []
    assert bed.control.requests() == []
    assert bed.ec.describe_replication_groups()["ReplicationGroups"] == []
    bed.ssm.describe_parameters()  # the ssm fault is gone


def test_control_errors(bed: Bed) -> None:
    control(bed, "nope", {}, expect=404)
    control(bed, "faults", method="PUT", expect=405)
    control(bed, "faults", {"operation": "GetParameter"}, expect=400)
    status, _ = bed.control.call("POST", "/_failover/faults", None)
    assert status == 400
