"""Route 53 in the emulator: change batches and record names as Route 53 has them, not as moto 5.2.5 does.

What it changes in moto, and why (the rollback's conditional update, DELETE exactly what was read then
CREATE the new version, can only be tested against Route 53's own rules):

* ``patch()`` replaces ``Route53Backend.change_resource_record_sets`` (moto/route53/models.py) with
  ``change_resource_record_sets`` below, which does what the Route 53 API reference documents:

  - A batch is atomic. Every change is validated first, in order, against a copy of the zone's live
    records (each valid change is applied to the copy, so ``DELETE x`` then ``CREATE x`` with new values
    is valid). If any change is invalid the batch fails and nothing is written. moto applies changes one
    by one.
  - DELETE must match the live record exactly: name (case-insensitive, trailing dot optional, '*' and
    '\\052' alike: names compare in Route 53's spelling, ``route53_name``), type, set identifier, TTL,
    values (as a sorted list) or alias target (zone id, DNS name case-insensitive without trailing dot,
    EvaluateTargetHealth), weight, health check id, Region, Failover, GeoLocation, MultiValueAnswer. It
    removes only that one record (moto removes every record with the set identifier across the zone).
  - CREATE fails if the record (name, type, set identifier) is live; moto's check looked at its change
    journal instead and rejected re-creating a record that had been deleted.
  - UPSERT creates or replaces. A record replaced by UPSERT or DELETE+CREATE keeps its place in the
    listing.
  - Validate-and-apply of a batch holds ``ROUTE53_CHANGE_LOCK``: moto backends have no locks, and two
    concurrent batches must not both validate against the same old records. A fault's delay happens in
    the WSGI layer before the batch reaches moto, so a delayed batch is validated against the records
    live when it is finally served.
  - Not modelled: the other consistency rules of Route 53 (CNAME next to other types, weighted next to
    non-weighted records of the same name and type, duplicate changes in one batch).

* Names are stored and listed as Route 53 spells them, every character other than letters, digits, '-',
  '_' and '.' as a backslash and three octal digits (``*.shop.example.com`` is listed as
  ``\\052.shop.example.com.``; moto stores what it was sent); either spelling names the same record in a
  change batch and in ``StartRecordName``. ``patch()`` also replaces ``FakeZone.get_record_sets`` with
  ``record_sets_from``, which sorts '\\052' as '*' (before '.' and digits, as Route 53 documents).
* An accepted ``ChangeResourceRecordSets`` is answered ``PENDING``, as AWS does (moto says ``INSYNC``);
  ``GetChange`` then reports ``INSYNC`` (``pending``, applied by the WSGI layer).

Errors: HTTP 400, code ``InvalidChangeBatch``, raised as a moto ``Route53ClientError`` so that moto
serializes it exactly like its own InvalidChangeBatch errors: ``<ErrorResponse
xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Error><Type>Sender</Type><Code>InvalidChangeBatch
</Code><Message>...</Message>...</Error><RequestId>...</RequestId></ErrorResponse>``. This is also the
form Route 53 itself sends today (the API reference still shows an older ``<InvalidChangeBatch><Messages>``
document; the Kotlin SDK removed its parser for that in 2024, aws/aws-sdk-kotlin#1435). botocore reads the
code from it, and so does aws-sdk-route53 1.132.0, whose error parser (``rest_xml_wrapped_errors``) looks
only for ``<ErrorResponse><Error>``. The message lists every invalid change the way Route 53 does,
comma-separated in brackets: ``[Tried to delete resource record set [name='app.example.com.', type='A',
set-identifier='blue'] but the values provided do not match the current values]``; the other two forms
are "... but it was not found" and "Tried to create resource record set [...] but it already exists".
"""

from __future__ import annotations

import copy
import re
import string
import threading
from typing import Any

# Route 53 is REST: the operation is given by method + path.
OPERATIONS = [
    ("POST", re.compile(r"^/2013-04-01/hostedzone/[^/]+/rrset/?$"), "ChangeResourceRecordSets"),
    ("GET", re.compile(r"^/2013-04-01/hostedzone/[^/]+/rrset/?$"), "ListResourceRecordSets"),
    ("GET", re.compile(r"^/2013-04-01/change/[^/]+$"), "GetChange"),
    ("POST", re.compile(r"^/2013-04-01/hostedzone/?$"), "CreateHostedZone"),
    ("GET", re.compile(r"^/2013-04-01/hostedzone/[^/]+$"), "GetHostedZone"),
    ("GET", re.compile(r"^/2013-04-01/hostedzone/?$"), "ListHostedZones"),
]

# moto's Route 53 backend has no lock; batches validate and apply under this one.
ROUTE53_CHANGE_LOCK = threading.Lock()

# Route 53 spells every character of a name other than letters, digits, '-', '_' and '.' as a backslash
# and three octal digits ('*' is '\052'): it stores and lists names that way and takes either spelling
# in a request. moto stores what it was sent.
ROUTE53_PLAIN_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-_.")
ROUTE53_ESCAPE = re.compile(r"\\(?:([0-3][0-7]{2})|(.))", re.S)

Record = Any
"""moto's ``RecordSet`` (moto.route53.models)."""


def operation(method: str, path: str) -> str:
    """The Route 53 operation a request's method and path name, or "Unknown"."""
    for op_method, pattern, name in OPERATIONS:
        if method == op_method and pattern.match(path):
            return name
    return "Unknown"


def pending(payload: bytes) -> bytes:
    """An accepted change's answer as Route 53 gives it: PENDING (GetChange then reports INSYNC)."""
    return payload.replace(b"<Status>INSYNC</Status>", b"<Status>PENDING</Status>")


# ---- names --------------------------------------------------------------------------------------------


def route53_name_bytes(name: str | None) -> bytes:
    """The bytes a Route 53 name stands for: '\\052', '\\*' and '*' are all b'*'; the rest as UTF-8."""
    name = name or ""
    spelled = bytearray()
    position = 0
    for escape in ROUTE53_ESCAPE.finditer(name):
        spelled += name[position : escape.start()].encode("utf-8")
        if escape.group(1):
            spelled.append(int(escape.group(1), 8))
        else:
            spelled += escape.group(2).encode("utf-8")
        position = escape.end()
    spelled += name[position:].encode("utf-8")
    return bytes(spelled)


def route53_name(name: str | None) -> str:
    """A name spelled as Route 53 stores and lists it: '*.shop.example.com.' -> '\\052.shop.example.com.'."""
    return "".join(
        chr(byte) if chr(byte) in ROUTE53_PLAIN_CHARACTERS else f"\\{byte:03o}" for byte in route53_name_bytes(name)
    )


def dns_name(name: str | None) -> str:
    """A DNS name in comparable form: Route 53's spelling (route53_name), lower case, no trailing dot."""
    return route53_name(name).rstrip(".").lower()


def record_key(name: str, record_type: str | None, set_identifier: str | None) -> tuple[str, str | None, str | None]:
    """What identifies a resource record set in a zone: (name, type, set identifier)."""
    return dns_name(name), record_type, set_identifier or None


def record_label(name: str, record_type: str | None, set_identifier: str | None) -> str:
    """Route 53's way of naming a record set in an error: [name='a.example.', type='A', set-identifier='x']."""
    fqdn = name if name.endswith(".") else name + "."
    label = f"name='{fqdn}', type='{record_type}'"
    if set_identifier:
        label += f", set-identifier='{set_identifier}'"
    return f"[{label}]"


# ---- records ----------------------------------------------------------------------------------------


def _int_or_none(value: Any) -> Any:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def _bool_or_none(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def record_fields(record: Record) -> dict[str, Any]:
    """Every field a DELETE must match, from a moto RecordSet, in comparable form.

    Values compare as a sorted list (moto stores plain strings; a request, and moto's own SOA record,
    carry {"Value": ...} dicts). Alias DNS names compare case-insensitively without the trailing dot.
    MultiValueAnswer=false is the same as absent.
    """
    alias = record.alias_target
    geo = record.geo_location
    return {
        "TTL": _int_or_none(record.ttl),
        "ResourceRecords": sorted(r.get("Value") if isinstance(r, dict) else r for r in record.records or []),
        "AliasTarget": (
            (
                alias.get("HostedZoneId"),
                dns_name(alias.get("DNSName")),
                _bool_or_none(alias.get("EvaluateTargetHealth")),
            )
            if alias
            else None
        ),
        "Weight": _int_or_none(record.weight),
        "HealthCheckId": record.health_check_id or None,
        "Region": record.region or None,
        "Failover": record.failover or None,
        "GeoLocation": tuple(sorted((k, v) for k, v in geo.items() if v not in (None, ""))) if geo else None,
        "MultiValueAnswer": _bool_or_none(record.multi_value_answer) or None,
    }


def invalid_change_batch(problems: list[str]) -> Exception:
    """moto's Route53 error class carrying code InvalidChangeBatch and Route 53's message list.

    Raised from the backend, it is serialized by moto exactly like moto's own InvalidChangeBatch errors
    (see the module docstring for the wire format).
    """
    from moto.route53.exceptions import Route53ClientError

    error = Route53ClientError("InvalidChangeBatch", "[" + ", ".join(problems) + "]")
    error.problems = list(problems)  # not "messages": moto would serialize a model member of that name
    return error


def change_resource_record_sets(backend: Any, zone_id: str, change_list: list[dict[str, Any]]) -> None:
    """Replacement for moto's ``Route53Backend.change_resource_record_sets``: Route 53's semantics.

    The batch is validated against a copy of the zone's live records, applying each valid change to the
    copy in order (so DELETE x then CREATE x is valid); any problem fails the whole batch with
    InvalidChangeBatch and nothing is written. Otherwise the copy becomes the zone's record list in one
    assignment (readers see the old or the new list).
    """
    from moto.route53.exceptions import DnsNameInvalidForZone, InvalidActionValue
    from moto.route53.models import RecordSet
    from moto.route53.utils import validate_domain_name

    with ROUTE53_CHANGE_LOCK:
        zone = backend.get_hosted_zone(zone_id)  # NoSuchHostedZone
        zone_name = dns_name(zone.name)
        # Malformed changes: moto's own errors, raised before anything is looked at or written.
        for change in change_list:
            if change["Action"] not in ("CREATE", "UPSERT", "DELETE"):
                raise InvalidActionValue(change["Action"])
            name = change["ResourceRecordSet"]["Name"]
            validate_domain_name(name, code="InvalidChangeBatch")
            if dns_name(name) != zone_name and not dns_name(name).endswith("." + zone_name):
                raise DnsNameInvalidForZone(name=name, zone_name=zone.name)

        # slots: the zone's records in order; a deleted record leaves None, so that a CREATE of the same
        # record in this batch takes its place (listing order stays as it was).
        slots = list(zone.rrsets)
        index = {record_key(r.name, r.type, r.set_identifier): i for i, r in enumerate(slots)}
        vacated: dict[tuple[str, str | None, str | None], int] = {}  # key -> slot of a record deleted earlier
        problems: list[str] = []
        journal = []
        for change in change_list:
            action = change["Action"]
            record_set = copy.deepcopy(change["ResourceRecordSet"])
            journal.append(copy.deepcopy(change))
            record_set["Name"] = route53_name(record_set["Name"])  # stored as Route 53 spells it
            if not record_set["Name"].endswith("."):
                record_set["Name"] += "."
            key = record_key(record_set["Name"], record_set.get("Type"), record_set.get("SetIdentifier"))
            label = record_label(record_set["Name"], record_set.get("Type"), record_set.get("SetIdentifier"))
            position = index.get(key)
            live = slots[position] if position is not None else None
            if action == "DELETE":
                if live is None:
                    problems.append(f"Tried to delete resource record set {label} but it was not found")
                elif record_fields(RecordSet(record_set)) != record_fields(live):
                    problems.append(
                        f"Tried to delete resource record set {label} but the values provided do not match "
                        "the current values"
                    )
                else:
                    slots[position] = None
                    del index[key]
                    vacated[key] = position
                continue
            if "ResourceRecords" in record_set:  # moto stores plain value strings
                record_set["ResourceRecords"] = [r["Value"] for r in record_set["ResourceRecords"]]
            new_record = RecordSet(record_set)
            if action == "CREATE" and live is not None:
                problems.append(f"Tried to create resource record set {label} but it already exists")
            elif live is not None:  # UPSERT of an existing record: replace it in place
                slots[position] = new_record
            else:
                position = vacated.pop(key, None)
                if position is None:
                    position = len(slots)
                    slots.append(new_record)
                else:
                    slots[position] = new_record
                index[key] = position
        if problems:
            raise invalid_change_batch(problems)
        zone.rrsets = [r for r in slots if r is not None]
        for change in journal:  # moto's change journal; nothing reads it any more, kept for fidelity
            zone.rr_changes.append(change)


def record_sets_from(zone: Any, start_type: str | None, start_name: str | None) -> list[Record]:
    """Replacement for moto's ``FakeZone.get_record_sets`` (ListResourceRecordSets): the zone's records
    sorted as Route 53 sorts them, from (StartRecordName, StartRecordType) on.

    As moto does: by name with the labels reversed, then by type; but a name is compared by the
    characters it stands for, so '\\052' sorts as '*' (before '.' and '0', as Route 53 documents), and
    StartRecordName may spell a character either way ('*.shop.example.com' or '\\052.shop.example.com').
    Not modelled, as in moto: the trailing dot's part in the order, case-insensitive order.
    """
    from moto.route53.models import reverse_domain_name

    def position(name: str, record_type: str | None) -> tuple[str, str]:
        return reverse_domain_name(route53_name_bytes(name).decode("latin-1")), record_type or ""

    records = sorted(zone.rrsets, key=lambda record: position(record.name, record.type))
    if not start_name:
        return records
    start = position(start_name, start_type)
    return [record for record in records if position(record.name, record.type) >= start]


def patch() -> None:
    """Install change_resource_record_sets and record_sets_from into moto's Route 53 models (idempotent)."""
    from moto.route53.models import FakeZone, Route53Backend

    Route53Backend.change_resource_record_sets = change_resource_record_sets
    FakeZone.get_record_sets = record_sets_from
