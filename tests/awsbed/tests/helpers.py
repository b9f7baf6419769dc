"""What several test modules of the emulator's suite share: the bed a test gets, failed calls, control
calls with an expected status, and a hosted zone to change and read back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from awsbed.control import Control
from awsbed.seed import create_zone, weighted_record
from botocore.exceptions import ClientError

HEALTH_CHECK_ID = "0b4c9d2e-1f3a-4b5c-8d7e-9f0a1b2c3d4e"


@dataclass
class Bed:
    """The session's emulator, freshly reset: its URL, boto3 clients and control API (conftest.bed)."""

    url: str
    ec: Any
    ssm: Any
    r53: Any
    control: Control


def error_code(call: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[str, int]:
    """Run a boto3 call that must fail; return (error code, HTTP status)."""
    try:
        call(*args, **kwargs)
    except ClientError as err:
        return err.response["Error"]["Code"], err.response["ResponseMetadata"]["HTTPStatusCode"]
    raise AssertionError(f"{getattr(call, '__name__', call)} did not fail")


def control(bed: Bed, what: str, payload: Any = None, method: str = "POST", expect: int = 200) -> Any:
    """``METHOD /_failover/<what>``, which must answer `expect`; the answer's JSON."""
    status, body = bed.control.call(method, "/_failover/" + what, payload)
    assert status == expect, f"{method} /_failover/{what}: status {status} != {expect}: {body}"
    return body


def alias_record(name: str, set_identifier: str, weight: int, dns_name: str) -> dict[str, Any]:
    """A weighted alias record set (target: a load balancer name)."""
    return {
        "Name": name,
        "Type": "A",
        "SetIdentifier": set_identifier,
        "Weight": weight,
        "AliasTarget": {"HostedZoneId": "Z35SXDOTRQ7X7K", "DNSName": dns_name, "EvaluateTargetHealth": True},
    }


def with_weight(record: dict[str, Any], weight: int) -> dict[str, Any]:
    """Copy of a record set with another weight."""
    return dict(record, Weight=weight)


class Zone:
    """A hosted zone of the emulator, changed and read back through boto3."""

    def __init__(self, r53: Any, caller_reference: str, name: str = "example.com") -> None:
        self.r53 = r53
        self.id = create_zone(r53, name, caller_reference)

    def change(self, changes: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
        """Submit one change batch [(action, record set), ...]; the response."""
        batch = {"Changes": [{"Action": action, "ResourceRecordSet": record} for action, record in changes]}
        return self.r53.change_resource_record_sets(HostedZoneId=self.id, ChangeBatch=batch)

    def records(self) -> list[dict[str, Any]]:
        """Every record set of the zone, in listing order."""
        return self.r53.list_resource_record_sets(HostedZoneId=self.id)["ResourceRecordSets"]

    def record(self, name: str, set_identifier: str) -> dict[str, Any]:
        """The one live record set with this name and set identifier (fails if not exactly one)."""
        found = [r for r in self.records() if r["Name"] == name and r.get("SetIdentifier") == set_identifier]
        assert len(found) == 1, f"expected one {name} {set_identifier}, found {found}"
        return found[0]

    def rejected(self, changes: list[tuple[str, dict[str, Any]]], *fragments: str) -> None:
        """The batch fails with InvalidChangeBatch (HTTP 400) naming `fragments`, and changes nothing."""
        before = self.records()
        try:
            self.change(changes)
        except ClientError as err:
            error = err.response["Error"]
            assert (error["Code"], err.response["ResponseMetadata"]["HTTPStatusCode"]) == ("InvalidChangeBatch", 400)
            for fragment in fragments:
                assert fragment in error["Message"]
        else:
            raise AssertionError("the change batch was accepted")
        assert self.records() == before


def weighted_zone(bed: Bed) -> Zone:
    """Zone example.com with weighted pairs (blue, green) at app. (values) and alias. (alias targets),
    and a record other. with set identifier blue too."""
    zone = Zone(bed.r53, "seed")
    zone.change(
        [
            (
                "CREATE",
                weighted_record(
                    "app.example.com.", "blue", 100, ["192.0.2.10", "192.0.2.11"], HealthCheckId=HEALTH_CHECK_ID
                ),
            ),
            ("CREATE", weighted_record("app.example.com.", "green", 0, ["192.0.2.20"])),
            ("CREATE", alias_record("alias.example.com.", "blue", 100, "blue-lb.us-east-1.elb.amazonaws.com.")),
            ("CREATE", alias_record("alias.example.com.", "green", 0, "green-lb.us-east-1.elb.amazonaws.com.")),
            ("CREATE", weighted_record("other.example.com.", "blue", 100, ["192.0.2.30"], ttl=300)),
        ]
    )
    return zone


def valid_green_update(zone: Zone) -> list[tuple[str, dict[str, Any]]]:
    """A valid conditional update (DELETE + CREATE) of app. green to weight 5, to lead a batch."""
    green = zone.record("app.example.com.", "green")
    return [("DELETE", green), ("CREATE", with_weight(green, 5))]
