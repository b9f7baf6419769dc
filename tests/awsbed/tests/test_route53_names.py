"""Route 53 record names in the emulator (awsbed.emulator.route53): stored, listed and sorted as Route 53
spells them ('*' as '\\052'), either spelling naming the same record."""

from __future__ import annotations

import pytest
from awsbed.emulator.route53 import route53_name
from awsbed.seed import weighted_record
from helpers import Bed, Zone, with_weight

WILD = "\\052.shop.example.com."
PLAIN = {"Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.30"}]}


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("*.shop.example.com.", WILD),
        ("\\052.shop.example.com", "\\052.shop.example.com"),
        ("\\*.shop.example.com", "\\052.shop.example.com"),
        ("x+y.example.com.", "x\\053y.example.com."),
        ("A-b_c.example.com", "A-b_c.example.com"),
    ],
)
def test_names_are_spelled_as_route53_spells_them(sent: str, stored: str) -> None:
    assert route53_name(sent) == stored


def test_wildcard_name_is_stored_and_listed_escaped(bed: Bed) -> None:
    """A '*' is stored and listed as '\\052' (other characters outside a-z, 0-9, '-', '_', '.' as backslash
    + 3 octal digits); either spelling names the same record in a change batch."""
    zone = Zone(bed.r53, "wild")
    zone.change(
        [
            ("CREATE", weighted_record("*.shop.example.com.", "blue", 100, ["192.0.2.10"])),
            ("CREATE", weighted_record("*.shop.example.com", "green", 0, ["192.0.2.20"])),
            ("CREATE", dict(PLAIN, Name="0.shop.example.com.")),
            ("CREATE", dict(PLAIN, Name="shop.example.com.")),
            ("CREATE", dict(PLAIN, Name="x+y.example.com.")),
        ]
    )
    names = [r["Name"] for r in zone.records() if r["Type"] == "A"]
    # sorted as Route 53 sorts: by the name's characters ('*' before '0'), labels reversed
    assert names == ["shop.example.com.", WILD, WILD, "0.shop.example.com.", "x\\053y.example.com."]
    blue = zone.record(WILD, "blue")
    green = zone.record(WILD, "green")
    assert blue == weighted_record(WILD, "blue", 100, ["192.0.2.10"])
    # conditional updates: DELETE written with '*' (and other case) matches the stored '\052' record
    star_blue = dict(blue, Name="*.shop.example.com")
    before = zone.records()
    zone.change([("DELETE", dict(blue, Name="*.SHOP.example.com")), ("CREATE", with_weight(star_blue, 40))])
    assert zone.record(WILD, "blue") == with_weight(blue, 40)
    zone.change([("DELETE", green), ("CREATE", with_weight(green, 60))])  # as listed
    assert zone.records() == [
        with_weight(r, {"blue": 40, "green": 60}[r["SetIdentifier"]]) if r["Name"] == WILD else r for r in before
    ]
    # both spellings are one name: CREATE of a live record fails, DELETE must still match exactly
    zone.rejected(
        [("CREATE", with_weight(dict(blue, Name="*.shop.example.com."), 1))],
        "Tried to create resource record set [name='\\052.shop.example.com.', type='A', "
        "set-identifier='blue'] but it already exists",
    )
    zone.rejected(
        [("DELETE", with_weight(star_blue, 100))],
        "[name='\\052.shop.example.com.', type='A', set-identifier='blue'] but the values provided do not "
        "match the current values",
    )
    zone.change([("UPSERT", dict(with_weight(star_blue, 7), Name="\\052.shop.example.com"))])
    assert zone.record(WILD, "blue") == with_weight(blue, 7)
    assert len(zone.records()) == len(before)


@pytest.mark.parametrize("start", ["*.shop.example.com", "*.shop.example.com.", "\\052.shop.example.com", WILD])
def test_list_from_a_wildcard_name(bed: Bed, start: str) -> None:
    """StartRecordName may be given as '*.shop.example.com' or '\\052.shop.example.com'."""
    zone = Zone(bed.r53, "wild-list")
    zone.change(
        [
            ("CREATE", dict(PLAIN, Name="0.shop.example.com.")),
            ("CREATE", weighted_record("*.shop.example.com", "blue", 100, ["192.0.2.10"])),
            ("CREATE", weighted_record("*.shop.example.com", "green", 0, ["192.0.2.20"])),
            ("CREATE", dict(PLAIN, Name="shop.example.com.")),
        ]
    )
    page = bed.r53.list_resource_record_sets(HostedZoneId=zone.id, StartRecordName=start, MaxItems="2")
    assert [(r["Name"], r.get("SetIdentifier")) for r in page["ResourceRecordSets"]] == [
        (WILD, "blue"),
        (WILD, "green"),
    ]
    assert (page["IsTruncated"], page["NextRecordName"]) == (True, "0.shop.example.com.")
    page = bed.r53.list_resource_record_sets(HostedZoneId=zone.id, StartRecordName=start, StartRecordType="A")
    assert page["ResourceRecordSets"][0]["Name"] == WILD
