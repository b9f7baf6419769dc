"""Route 53 change batches in the emulator (awsbed.emulator.route53): atomic, DELETE matching exactly,
CREATE of a live record refused, the error's wire format, and batches applied one at a time."""

from __future__ import annotations

import threading
import time
from typing import Any
from xml.etree import ElementTree

import pytest
from awsbed.emulator import route53
from awsbed.seed import weighted_record
from botocore.exceptions import ClientError
from helpers import Bed, Zone, error_code, valid_green_update, weighted_zone, with_weight

DELETE_BLUE_MISMATCH = (
    "Tried to delete resource record set [name='app.example.com.', type='A', set-identifier='blue'] "
    "but the values provided do not match the current values"
)


def test_conditional_update_changes_only_the_weight(bed: Bed) -> None:
    zone = weighted_zone(bed)
    before = zone.records()
    blue = zone.record("app.example.com.", "blue")
    alias_blue = zone.record("alias.example.com.", "blue")
    # the DELETEs match what was read, written differently: name case and trailing dot, value order,
    # alias DNS name case and trailing dot
    delete_blue = dict(blue, Name="APP.Example.com", ResourceRecords=blue["ResourceRecords"][::-1])
    delete_alias = dict(
        alias_blue, AliasTarget=dict(alias_blue["AliasTarget"], DNSName="BLUE-LB.us-east-1.elb.amazonaws.com")
    )
    resp = zone.change(
        [
            ("DELETE", delete_blue),
            ("CREATE", with_weight(blue, 40)),
            ("DELETE", delete_alias),
            ("CREATE", with_weight(alias_blue, 60)),
        ]
    )
    assert bed.r53.get_change(Id=resp["ChangeInfo"]["Id"])["ChangeInfo"]["Status"] == "INSYNC"
    weights = {("app.example.com.", "blue"): 40, ("alias.example.com.", "blue"): 60}
    expected = [
        with_weight(r, weights[(r["Name"], r.get("SetIdentifier"))])
        if (r["Name"], r.get("SetIdentifier")) in weights
        else r
        for r in before
    ]
    assert zone.records() == expected  # same records, same order, only two weights changed


def test_delete_with_wrong_ttl_fails_whole_batch(bed: Bed) -> None:
    zone = weighted_zone(bed)
    blue = zone.record("app.example.com.", "blue")
    zone.rejected(
        [*valid_green_update(zone), ("DELETE", dict(blue, TTL=61)), ("CREATE", with_weight(blue, 0))],
        DELETE_BLUE_MISMATCH,
    )


@pytest.mark.parametrize(
    "values",
    [["192.0.2.10"], ["192.0.2.10", "192.0.2.12"], ["192.0.2.10", "192.0.2.11", "192.0.2.12"]],
    ids=["fewer", "other", "more"],
)
def test_delete_with_wrong_values_fails_whole_batch(bed: Bed, values: list[str]) -> None:
    zone = weighted_zone(bed)
    blue = zone.record("app.example.com.", "blue")
    wrong = dict(blue, ResourceRecords=[{"Value": v} for v in values])
    zone.rejected(
        [*valid_green_update(zone), ("DELETE", wrong), ("CREATE", with_weight(blue, 0))], DELETE_BLUE_MISMATCH
    )


@pytest.mark.parametrize("wrong", ["weight", "health check"])
def test_delete_with_wrong_weight_or_health_check_fails_whole_batch(bed: Bed, wrong: str) -> None:
    zone = weighted_zone(bed)
    blue = zone.record("app.example.com.", "blue")
    record = with_weight(blue, 99) if wrong == "weight" else {k: v for k, v in blue.items() if k != "HealthCheckId"}
    zone.rejected(
        [*valid_green_update(zone), ("DELETE", record), ("CREATE", with_weight(blue, 0))], DELETE_BLUE_MISMATCH
    )


@pytest.mark.parametrize("wrong", ["dns name", "evaluate target health", "hosted zone id"])
def test_delete_with_wrong_alias_target_fails_whole_batch(bed: Bed, wrong: str) -> None:
    zone = weighted_zone(bed)
    blue = zone.record("alias.example.com.", "blue")
    target = blue["AliasTarget"]
    wrong_target = {
        "dns name": dict(target, DNSName="green-lb.us-east-1.elb.amazonaws.com."),
        "evaluate target health": dict(target, EvaluateTargetHealth=not target["EvaluateTargetHealth"]),
        "hosted zone id": dict(target, HostedZoneId="Z0000000000000"),
    }[wrong]
    zone.rejected(
        [*valid_green_update(zone), ("DELETE", dict(blue, AliasTarget=wrong_target)), ("CREATE", with_weight(blue, 0))],
        "Tried to delete resource record set [name='alias.example.com.', type='A', set-identifier='blue'] "
        "but the values provided do not match the current values",
    )


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            "delete of a missing record",
            "Tried to delete resource record set [name='app.example.com.', type='A', set-identifier='purple'] "
            "but it was not found",
        ),
        (
            "create of a live record",
            "Tried to create resource record set [name='app.example.com.', type='A', set-identifier='blue'] "
            "but it already exists",
        ),
    ],
)
def test_delete_of_missing_or_create_of_existing_record_fails_whole_batch(bed: Bed, change: str, problem: str) -> None:
    zone = weighted_zone(bed)
    blue = zone.record("app.example.com.", "blue")
    if change == "delete of a missing record":
        invalid = ("DELETE", dict(blue, SetIdentifier="purple"))
    else:
        invalid = ("CREATE", with_weight(blue, 1))
    zone.rejected([*valid_green_update(zone), invalid], problem)


def test_weighted_delete_removes_only_that_record(bed: Bed) -> None:
    zone = weighted_zone(bed)
    before = zone.records()
    blue = zone.record("app.example.com.", "blue")
    zone.change([("DELETE", blue)])
    assert zone.records() == [r for r in before if r != blue]
    # other.example.com. and alias.example.com. keep their "blue" records
    zone.record("other.example.com.", "blue")
    zone.record("alias.example.com.", "blue")


def test_recreate_after_delete_succeeds(bed: Bed) -> None:
    zone = weighted_zone(bed)
    green = zone.record("app.example.com.", "green")
    zone.change([("DELETE", green)])
    assert all(r.get("SetIdentifier") != "green" or r["Name"] != "app.example.com." for r in zone.records())
    # the very CREATE the zone was seeded with: moto's journal check rejected it as existing
    zone.change([("CREATE", weighted_record("app.example.com.", "green", 0, ["192.0.2.20"]))])
    assert zone.record("app.example.com.", "green") == green


def test_upsert_creates_and_replaces(bed: Bed) -> None:
    zone = weighted_zone(bed)
    new = weighted_record("new.example.com.", "blue", 10, ["192.0.2.40"], ttl=30)
    zone.change([("UPSERT", new)])
    assert zone.record("new.example.com.", "blue") == new
    green = zone.record("app.example.com.", "green")
    zone.change([("UPSERT", dict(with_weight(green, 30), TTL=120))])
    assert zone.record("app.example.com.", "green") == dict(with_weight(green, 30), TTL=120)
    zone.record("app.example.com.", "blue")  # untouched


def test_invalid_change_batch_wire_format(bed: Bed) -> None:
    zone = weighted_zone(bed)
    blue = zone.record("app.example.com.", "blue")
    green = zone.record("app.example.com.", "green")
    raw: list[tuple[int, bytes]] = []

    def capture(response_dict: dict[str, Any], **_: Any) -> None:
        raw.append((response_dict["status_code"], response_dict["body"]))

    bed.r53.meta.events.register("before-parse.route53.ChangeResourceRecordSets", capture)
    try:
        assert error_code(zone.change, [("CREATE", with_weight(blue, 1))]) == ("InvalidChangeBatch", 400)
        with pytest.raises(ClientError) as two:
            zone.change([("DELETE", with_weight(green, 9)), ("CREATE", green)])
    finally:
        bed.r53.meta.events.unregister("before-parse.route53.ChangeResourceRecordSets", capture)
    status, body = raw[0]
    assert status == 400
    root = ElementTree.fromstring(body)
    ns = "{https://route53.amazonaws.com/doc/2013-04-01/}"
    assert root.tag == ns + "ErrorResponse"  # what botocore and aws-sdk-route53 parse
    assert (root.findtext(f"{ns}Error/{ns}Type"), root.findtext(f"{ns}Error/{ns}Code")) == (
        "Sender",
        "InvalidChangeBatch",
    )
    assert root.findtext(f"{ns}Error/{ns}Message") == (
        "[Tried to create resource record set [name='app.example.com.', type='A', set-identifier='blue'] "
        "but it already exists]"
    )
    assert root.findtext(f"{ns}RequestId"), f"no RequestId in {body!r}"
    # one batch, two problems: both listed, in order
    assert two.value.response["Error"]["Message"] == (
        "[Tried to delete resource record set [name='app.example.com.', type='A', "
        "set-identifier='green'] but the values provided do not match the current values, "
        "Tried to create resource record set [name='app.example.com.', type='A', "
        "set-identifier='green'] but it already exists]"
    )


def test_change_is_pending_then_insync(bed: Bed) -> None:
    """An accepted change answers PENDING (as Route 53 does); GetChange then says INSYNC."""
    zone = Zone(bed.r53, "pending")
    record = {"Name": "a.example.com.", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.1"}]}
    info = zone.change([("CREATE", record)])["ChangeInfo"]
    assert info["Status"] == "PENDING"
    assert bed.r53.get_change(Id=info["Id"])["ChangeInfo"]["Status"] == "INSYNC"


def test_delayed_batch_is_validated_when_served(bed: Bed) -> None:
    zone = weighted_zone(bed)
    blue = zone.record("app.example.com.", "blue")
    bed.control.clear_requests()
    bed.control.add_fault(service="route53", operation="ChangeResourceRecordSets", delay_ms=1000, count=1)
    outcome = {}

    def conditional_update() -> None:
        try:
            zone.change([("DELETE", blue), ("CREATE", with_weight(blue, 50))])
            outcome["result"] = "applied"
        except ClientError as err:
            outcome["result"] = err.response["Error"]["Code"]

    thread = threading.Thread(target=conditional_update)
    thread.start()
    deadline = time.monotonic() + 5
    while not bed.control.requests():  # the delayed batch has arrived
        assert time.monotonic() < deadline, "the delayed batch never arrived"
        time.sleep(0.02)
    started = time.monotonic()
    zone.change([("UPSERT", with_weight(blue, 70))])  # served during the delay
    took = time.monotonic() - started
    still_waiting = thread.is_alive()
    thread.join(10)
    assert still_waiting, "the delayed batch was served before the concurrent UPSERT"
    assert took < 0.5, f"the concurrent UPSERT waited {took:.2f}s for the delayed batch"
    assert outcome.get("result") == "InvalidChangeBatch"  # validated against weight 70, not 100
    assert zone.record("app.example.com.", "blue") == with_weight(blue, 70)
    log = [(r["operation"], r["status"], r["fault_id"] is not None) for r in bed.control.requests()]
    assert log[:2] == [("ChangeResourceRecordSets", 400, True), ("ChangeResourceRecordSets", 200, False)]


def test_concurrent_conditional_updates_one_wins(bed: Bed) -> None:
    zone = weighted_zone(bed)
    blue = zone.record("app.example.com.", "blue")
    writers = 6
    barrier = threading.Barrier(writers)
    outcomes: list[str | None] = [None] * writers

    def conditional_update(i: int) -> None:
        changes = [("DELETE", blue), ("CREATE", with_weight(blue, 10 + i))]
        barrier.wait()
        try:
            zone.change(changes)
            outcomes[i] = "applied"
        except ClientError as err:
            outcomes[i] = err.response["Error"]["Code"]

    threads = [threading.Thread(target=conditional_update, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert sorted(outcomes) == ["InvalidChangeBatch"] * (writers - 1) + ["applied"]
    winner = outcomes.index("applied")
    assert zone.record("app.example.com.", "blue") == with_weight(blue, 10 + winner)


def test_batches_are_serialized_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two conditional updates of one record whose validations overlap: one must fail.

    Through HTTP the validation is too quick for two batches to interleave by chance, so this calls the
    patched backend method from two threads in this process, with the comparison of records slowed down.
    Without ROUTE53_CHANGE_LOCK both batches validate against the same old record and both apply.
    """
    from moto.route53.models import Route53Backend

    backend = Route53Backend("us-east-1", "123456789012")
    zone = backend.create_hosted_zone("example.com.", private_zone=False, caller_reference="lock")
    blue = weighted_record("app.example.com.", "blue", 100, ["192.0.2.10"])
    route53.change_resource_record_sets(backend, zone.id, [{"Action": "CREATE", "ResourceRecordSet": blue}])
    outcomes = []

    def conditional_update(weight: int) -> None:
        changes = [
            {"Action": "DELETE", "ResourceRecordSet": blue},
            {"Action": "CREATE", "ResourceRecordSet": with_weight(blue, weight)},
        ]
        try:
            route53.change_resource_record_sets(backend, zone.id, changes)
            outcomes.append("applied")
        except Exception as err:
            outcomes.append(getattr(err, "code", repr(err)))

    compare = route53.record_fields

    def slow_compare(record: Any) -> dict[str, Any]:
        time.sleep(0.05)
        return compare(record)

    monkeypatch.setattr(route53, "record_fields", slow_compare)
    threads = [threading.Thread(target=conditional_update, args=(weight,)) for weight in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(outcomes) == ["InvalidChangeBatch", "applied"]
    assert len([r for r in zone.rrsets if r.set_identifier == "blue"]) == 1
