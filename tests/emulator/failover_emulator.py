"""Local AWS emulator for the failover tests: moto server plus a thin WSGI layer.

The integration tests run the Lambda functions offline against moto. Plain moto is
missing a few things those tests need, so this file wraps moto's own WSGI app in a
middleware that adds them:

* ElastiCache ``TestFailover``: moto answers 500 (not implemented). Here it swaps the
  primary and the first replica of the named node group and answers like AWS.
* ElastiCache ``ModifyReplicationGroup`` with ``PrimaryClusterId``: moto ignores the
  parameter. Here the named cluster becomes the primary before moto handles the rest.
* A small unsigned JSON control API under ``/_failover/`` so a test can drive the
  scenario from outside the AWS API:
    - fail a replication group over, set arbitrary roles (zero or two primaries),
      set the group status ("modifying"), point endpoints at real local Redis servers;
    - inject faults (error responses and/or delays) into any AWS operation, optionally only
      into requests whose body holds a given text (``body_contains``: one SSM parameter name);
    - read the log of AWS requests the emulator has served.
* ``POST /moto-api/reset`` (moto's own reset) also clears faults and the request log.
* Route 53 ``ChangeResourceRecordSets`` with Route 53's semantics (moto 5.2.5 has none of
  them): see "Route 53 change batches" below.
* Route 53 record names spelled as Route 53 spells them: a name is stored and listed with every
  character other than letters, digits, '-', '_' and '.' as a backslash and three octal digits
  (``*.shop.example.com`` is listed as ``\\052.shop.example.com.``; moto stores what it was sent), and
  either spelling names the same record in a change batch and in ``StartRecordName``.
* Route 53 answers an accepted ``ChangeResourceRecordSets`` with status ``PENDING``, as AWS
  does (moto says ``INSYNC``); ``GetChange`` then reports ``INSYNC``.
* SSM ``PutParameter`` without ``Type`` for a parameter that does not exist is refused with
  ``ValidationException`` (as AWS does), also with ``Overwrite`` (``patch_ssm``).

Everything else goes to moto unchanged. The ElastiCache parts read and write moto's
in-memory models directly (``ReplicationGroup.node_groups`` is a list of dicts; each
member dict has ``current_role``), which is why requirements.txt pins moto exactly.

Route 53 change batches
-----------------------
At startup ``patch_route53()`` replaces moto's ``Route53Backend.change_resource_record_sets``
(moto/route53/models.py) with ``change_resource_record_sets`` below, which does what the
Route 53 API reference documents:

* A batch is atomic. Every change is validated first, in order, against a copy of the zone's
  live records (each valid change is applied to the copy, so ``DELETE x`` then ``CREATE x``
  with new values is valid: the conditional update "delete exactly what I read, create the
  new version"). If any change is invalid the batch fails and nothing is written.
* DELETE must match the live record exactly: name (case-insensitive, trailing dot optional, '*'
  and '\\052' alike: names compare in Route 53's spelling, ``route53_name``),
  type, set identifier, TTL, values (as a sorted list) or alias target (zone id, DNS name
  case-insensitive without trailing dot, EvaluateTargetHealth), weight, health check id,
  Region, Failover, GeoLocation, MultiValueAnswer. It removes only that one record (moto
  removes every record with the set identifier across the zone).
* CREATE fails if the record (name, type, set identifier) is live; moto's check looked at its
  change journal instead and rejected re-creating a record that had been deleted.
* UPSERT creates or replaces. A record replaced by UPSERT or DELETE+CREATE keeps its place in
  the listing.
* Validate-and-apply of a batch holds ``ROUTE53_CHANGE_LOCK``: moto backends have no locks,
  and two concurrent batches must not both validate against the same old records. Requests
  are still served on many threads; a fault's delay happens in the middleware before the
  batch reaches moto, so a delayed batch is validated against the records live when it is
  finally served.
* Not modelled: the other consistency rules of Route 53 (CNAME next to other types, weighted
  next to non-weighted records of the same name and type, duplicate changes in one batch).

Errors: HTTP 400, code ``InvalidChangeBatch``, raised as a moto ``Route53ClientError`` so
that moto serializes it exactly like its own InvalidChangeBatch errors (e.g. its "Tried to
create ... but it already exists"): ``<ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/">
<Error><Type>Sender</Type><Code>InvalidChangeBatch</Code><Message>...</Message>...</Error>
<RequestId>...</RequestId></ErrorResponse>``. This is also the form Route 53 itself sends
today (the API reference still shows an older ``<InvalidChangeBatch><Messages>`` document;
the Kotlin SDK removed its parser for that in 2024, aws/aws-sdk-kotlin#1435). botocore reads
the code from it, and so does aws-sdk-route53 1.132.0, whose error parser
(``rest_xml_wrapped_errors``) looks only for ``<ErrorResponse><Error>``: given an
``<InvalidChangeBatch>`` root it finds no code and returns an unhandled error. The message
lists every invalid change the way Route 53 does, comma-separated in brackets:
``[Tried to delete resource record set [name='app.example.com.', type='A',
set-identifier='blue'] but the values provided do not match the current values]``; the
other two forms are "... but it was not found" and "Tried to create resource record set
[...] but it already exists".

Usage:
    python failover_emulator.py [--host 127.0.0.1] [--port 0] [--parent-watch]

Once ready it prints exactly one line to stdout, ``FAILOVER_EMULATOR_READY http://HOST:PORT``;
anything printed later goes to stderr. With ``--parent-watch`` the process exits as soon
as its stdin reaches EOF, so it cannot outlive the test process that holds the pipe.
"""

import argparse
import copy
import http
import io
import ipaddress
import json
import logging
import os
import re
import signal
import string
import sys
import threading
import time
import traceback
import uuid
from urllib.parse import parse_qs, quote, unquote, unquote_plus

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

DEFAULT_REGION = "us-east-1"
ELASTICACHE_VERSION = "2015-02-02"
ELASTICACHE_XMLNS = "http://elasticache.amazonaws.com/doc/2015-02-02/"
ROUTE53_XMLNS = "https://route53.amazonaws.com/doc/2013-04-01/"

# SigV4: "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/ssm/aws4_request, ..."
CREDENTIAL_SCOPE = re.compile(r"Credential=([^/,\s]+)/[^/]+/([^/]+)/([^/]+)/aws4_request")

# Route 53 is REST: the operation is given by method + path.
ROUTE53_OPERATIONS = [
    ("POST", re.compile(r"^/2013-04-01/hostedzone/[^/]+/rrset/?$"), "ChangeResourceRecordSets"),
    ("GET", re.compile(r"^/2013-04-01/hostedzone/[^/]+/rrset/?$"), "ListResourceRecordSets"),
    ("GET", re.compile(r"^/2013-04-01/change/[^/]+$"), "GetChange"),
    ("POST", re.compile(r"^/2013-04-01/hostedzone/?$"), "CreateHostedZone"),
    ("GET", re.compile(r"^/2013-04-01/hostedzone/[^/]+$"), "GetHostedZone"),
    ("GET", re.compile(r"^/2013-04-01/hostedzone/?$"), "ListHostedZones"),
]


class EmulatorError(Exception):
    """An error with an HTTP status and an AWS-style code.

    Raised by the ElastiCache helpers; the caller turns it into an AWS error
    (ElastiCache API) or into ``{"error": ...}`` JSON (control API).
    """

    def __init__(self, status, code, message):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


# --------------------------------------------------------------------------
# Request classification
# --------------------------------------------------------------------------


def read_body(environ):
    """Read the whole request body and put a fresh copy back for moto.

    WSGI bodies can be read only once; we peek at them (fault matching, Action
    detection), so we buffer the bytes and re-supply them as ``wsgi.input``.
    """
    stream = environ.get("wsgi.input")
    length = (environ.get("CONTENT_LENGTH") or "").strip()
    if stream is None:
        body = b""
    elif length.isdigit():
        body = stream.read(int(length))
    elif environ.get("wsgi.input_terminated"):  # chunked upload, read to the end
        body = stream.read()
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    if length or body:
        environ["CONTENT_LENGTH"] = str(len(body))
    return body


def query_params(environ, body):
    """Parameters of a query-protocol request: the form body plus the query string."""
    params = {}
    for source in (environ.get("QUERY_STRING", ""), body.decode("utf-8", "replace")):
        for key, values in parse_qs(source, keep_blank_values=True).items():
            params[key] = values[0]
    return params


def credential_scope(environ):
    """Return (access_key, region, service) from the SigV4 Authorization header, or Nones."""
    match = CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if not match:
        return None, None, None
    access_key, region, service = match.groups()
    return access_key, region, service.lower()


def detect_service(environ, body):
    """Name the AWS service of a request: "ssm", "elasticache", "route53", ...

    The SigV4 credential scope is authoritative; without it we guess from the
    X-Amz-Target prefix, the Route 53 path prefix or the ElastiCache API version.
    """
    _, _, service = credential_scope(environ)
    if service:
        return service
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        prefix = target.split(".", 1)[0]
        return "ssm" if prefix == "AmazonSSM" else prefix.lower()
    if environ.get("PATH_INFO", "").startswith("/2013-04-01/"):
        return "route53"
    if query_params(environ, body).get("Version") == ELASTICACHE_VERSION:
        return "elasticache"
    return "unknown"


def detect_operation(service, environ, body):
    """Name the API operation of a request ("GetParameter", "TestFailover", ...), or "Unknown"."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target and "." in target:  # awsJson protocol (SSM)
        return target.split(".", 1)[1]
    if service == "route53":
        method = environ.get("REQUEST_METHOD", "GET").upper()
        path = environ.get("PATH_INFO", "")
        for op_method, pattern, operation in ROUTE53_OPERATIONS:
            if method == op_method and pattern.match(path):
                return operation
        return "Unknown"
    action = query_params(environ, body).get("Action")  # query protocol (ElastiCache)
    return action or "Unknown"


def account_for_request(environ, access_key):
    """The moto account a signed request acts in, resolved the same way moto does."""
    if "MOTO_ACCOUNT_ID" in os.environ:
        return os.environ["MOTO_ACCOUNT_ID"]
    if environ.get("HTTP_X_MOTO_ACCOUNT_ID"):
        return environ["HTTP_X_MOTO_ACCOUNT_ID"]
    from moto.iam.models import get_account_id_from

    return get_account_id_from(access_key or "")


def default_account():
    """The account control-API calls act in unless the body names one."""
    from moto.core import DEFAULT_ACCOUNT_ID

    return os.environ.get("MOTO_ACCOUNT_ID", DEFAULT_ACCOUNT_ID)


# --------------------------------------------------------------------------
# Responses
# --------------------------------------------------------------------------


def status_line(status):
    """'404' -> '404 Not Found' (WSGI wants the reason phrase)."""
    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


def xml_escape(text):
    """Escape text for an XML element body."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def aws_error(service, status, code, message):
    """Build an AWS error response in the service's protocol.

    Returns (status, headers, body). ssm -> awsJson 1.1; route53 -> restXml;
    everything else -> query-protocol XML (with ElastiCache's namespace for elasticache).
    """
    request_id = str(uuid.uuid4())
    error_type = "Sender" if status < 500 else "Receiver"
    headers = [("x-amzn-RequestId", request_id)]
    if service == "ssm":
        body = json.dumps({"__type": code, "message": message})
        headers += [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", code)]
    else:
        error = (
            f"<Error><Type>{error_type}</Type><Code>{xml_escape(code)}</Code>"
            f"<Message>{xml_escape(message)}</Message></Error><RequestId>{request_id}</RequestId>"
        )
        if service == "route53":
            body = f'<?xml version="1.0"?><ErrorResponse xmlns="{ROUTE53_XMLNS}">{error}</ErrorResponse>'
        elif service == "elasticache":
            body = f'<ErrorResponse xmlns="{ELASTICACHE_XMLNS}">{error}</ErrorResponse>'
        else:
            body = f"<ErrorResponse>{error}</ErrorResponse>"
        headers.append(("Content-Type", "text/xml"))
    return status, headers, body.encode("utf-8")


def json_response(status, payload):
    """A control-API JSON response as (status, headers, body)."""
    return status, [("Content-Type", "application/json")], json.dumps(payload).encode("utf-8")


def set_content_length(headers, body):
    """Copy of headers with Content-Length matching body."""
    headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
    return [*headers, ("Content-Length", str(len(body)))]


# --------------------------------------------------------------------------
# ElastiCache model helpers (operate on moto's in-memory ReplicationGroup)
# --------------------------------------------------------------------------


def find_replication_group(account_id, region, group_id):
    """moto's ReplicationGroup object, or EmulatorError 404 ReplicationGroupNotFoundFault."""
    from moto.elasticache.models import elasticache_backends

    group = elasticache_backends[account_id][region].replication_groups.get(group_id)
    if group is None:
        raise EmulatorError(404, "ReplicationGroupNotFoundFault", f"Replication group {group_id} not found.")
    return group


def get_node_group(group, node_group_id):
    """The node group dict with this id, or EmulatorError 404 NodeGroupNotFoundFault."""
    for node_group in group.node_groups:
        if node_group["node_group_id"] == node_group_id:
            return node_group
    raise EmulatorError(
        404,
        "NodeGroupNotFoundFault",
        f"Node group {node_group_id} not found in replication group {group.replication_group_id}.",
    )


def node_group_of_member(group, cluster_id):
    """The node group dict containing member cluster_id, or None."""
    for node_group in group.node_groups:
        for member in node_group["node_group_members"]:
            if member["cache_cluster_id"] == cluster_id:
                return node_group
    return None


def find_member(group, cluster_id):
    """The member dict for cluster_id, or EmulatorError 404."""
    node_group = node_group_of_member(group, cluster_id)
    if node_group is None:
        raise EmulatorError(
            404,
            "CacheClusterNotFound",
            f"Cache cluster {cluster_id} is not a member of replication group {group.replication_group_id}.",
        )
    return next(m for m in node_group["node_group_members"] if m["cache_cluster_id"] == cluster_id)


def current_primary(node_group):
    """Id of the node group's primary, or None.

    moto only sets ``current_role`` for cluster-mode-disabled groups; for
    cluster-mode-enabled ones no member has a role and the first member
    (``<group>-<ng>-001``) is the primary by construction.
    """
    members = node_group["node_group_members"]
    for member in members:
        if member.get("current_role") == "primary":
            return member["cache_cluster_id"]
    if members and not any("current_role" in m for m in members):
        return members[0]["cache_cluster_id"]
    return None


def promote(group, node_group, new_primary):
    """Make new_primary the node group's only primary; every other member becomes a replica."""
    for member in node_group["node_group_members"]:
        member["current_role"] = "primary" if member["cache_cluster_id"] == new_primary else "replica"
    if group.cluster_mode != "enabled":  # PrimaryClusterId only exists for cluster mode disabled
        group.primary_cluster_id = new_primary


def fail_over(group, node_group_id=None, new_primary=None):
    """Swap roles in a node group, like TestFailover.

    node_group_id defaults to the node group containing new_primary, else "0001".
    new_primary defaults to the first member that is not the current primary.
    Returns {"replication_group_id", "node_group_id", "old_primary", "new_primary"}.
    """
    if node_group_id:
        node_group = get_node_group(group, node_group_id)
    elif new_primary:
        node_group = node_group_of_member(group, new_primary)
        if node_group is None:
            find_member(group, new_primary)  # raises the 404
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


def all_roles(group):
    """{member id: current role (None if moto set none)} over every node group."""
    return {m["cache_cluster_id"]: m.get("current_role") for ng in group.node_groups for m in ng["node_group_members"]}


def endpoint(value, what):
    """Validate {"address": str, "port": int} from the control API into moto's endpoint dict."""
    if not isinstance(value, dict) or not isinstance(value.get("address"), str):
        raise EmulatorError(400, "BadRequest", f'{what} must be {{"address": str, "port": int}}')
    try:
        port = int(value.get("port", 6379))
    except (TypeError, ValueError):
        raise EmulatorError(400, "BadRequest", f"{what}.port must be an integer") from None
    return {"address": value["address"], "port": port}


# --------------------------------------------------------------------------
# Route 53: atomic, exact-match ChangeResourceRecordSets (patched into moto)
# --------------------------------------------------------------------------

# moto's Route 53 backend has no lock; batches validate and apply under this one.
ROUTE53_CHANGE_LOCK = threading.Lock()


# Route 53 spells every character of a name other than letters, digits, '-', '_' and '.' as a
# backslash and three octal digits ('*' is '\052'): it stores and lists names that way and takes
# either spelling in a request. moto stores what it was sent.
ROUTE53_PLAIN_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-_.")
ROUTE53_ESCAPE = re.compile(r"\\(?:([0-3][0-7]{2})|(.))", re.S)


def route53_name_bytes(name):
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


def route53_name(name):
    """A name spelled as Route 53 stores and lists it: '*.shop.example.com.' -> '\\052.shop.example.com.'."""
    return "".join(
        chr(byte) if chr(byte) in ROUTE53_PLAIN_CHARACTERS else f"\\{byte:03o}" for byte in route53_name_bytes(name)
    )


def dns_name(name):
    """A DNS name in comparable form: Route 53's spelling (route53_name), lower case, no trailing dot."""
    return route53_name(name).rstrip(".").lower()


def record_key(name, record_type, set_identifier):
    """What identifies a resource record set in a zone: (name, type, set identifier)."""
    return dns_name(name), record_type, set_identifier or None


def record_label(name, record_type, set_identifier):
    """Route 53's way of naming a record set in an error: [name='a.example.', type='A', set-identifier='x']."""
    fqdn = name if name.endswith(".") else name + "."
    label = f"name='{fqdn}', type='{record_type}'"
    if set_identifier:
        label += f", set-identifier='{set_identifier}'"
    return f"[{label}]"


def _int_or_none(value):
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def _bool_or_none(value):
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def record_fields(record):
    """Every field a DELETE must match, from a moto RecordSet, in comparable form.

    Values compare as a sorted list (moto stores plain strings; a request, and moto's own
    SOA record, carry {"Value": ...} dicts). Alias DNS names compare case-insensitively
    without the trailing dot. MultiValueAnswer=false is the same as absent.
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


def route53_invalid_change_batch(problems):
    """moto's Route53 error class carrying code InvalidChangeBatch and Route 53's message list.

    Raised from the backend, it is serialized by moto exactly like moto's own
    InvalidChangeBatch errors (see the module docstring for the wire format).
    """
    from moto.route53.exceptions import Route53ClientError

    error = Route53ClientError("InvalidChangeBatch", "[" + ", ".join(problems) + "]")
    error.problems = list(problems)  # not "messages": moto would serialize a model member of that name
    return error


def change_resource_record_sets(backend, zone_id, change_list):
    """Replacement for moto's ``Route53Backend.change_resource_record_sets``: Route 53's semantics.

    The batch is validated against a copy of the zone's live records, applying each valid
    change to the copy in order (so DELETE x then CREATE x is valid); any problem fails the
    whole batch with InvalidChangeBatch and nothing is written. Otherwise the copy becomes
    the zone's record list in one assignment (readers see the old or the new list).
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

        # slots: the zone's records in order; a deleted record leaves None, so that a CREATE of
        # the same record in this batch takes its place (listing order stays as it was).
        slots = list(zone.rrsets)
        index = {record_key(r.name, r.type, r.set_identifier): i for i, r in enumerate(slots)}
        vacated = {}  # key -> slot of a record deleted earlier in this batch
        problems = []
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
            raise route53_invalid_change_batch(problems)
        zone.rrsets = [r for r in slots if r is not None]
        for change in journal:  # moto's change journal; nothing reads it any more, kept for fidelity
            zone.rr_changes.append(change)


def record_sets_from(zone, start_type, start_name):
    """Replacement for moto's ``FakeZone.get_record_sets`` (ListResourceRecordSets): the zone's records
    sorted as Route 53 sorts them, from (StartRecordName, StartRecordType) on.

    As moto does: by name with the labels reversed, then by type; but a name is compared by the
    characters it stands for, so '\\052' sorts as '*' (before '.' and '0', as Route 53 documents), and
    StartRecordName may spell a character either way ('*.shop.example.com' or '\\052.shop.example.com').
    Not modelled, as in moto: the trailing dot's part in the order, case-insensitive order.
    """
    from moto.route53.models import reverse_domain_name

    def position(name, record_type):
        return reverse_domain_name(route53_name_bytes(name).decode("latin-1")), record_type or ""

    records = sorted(zone.rrsets, key=lambda record: position(record.name, record.type))
    if not start_name:
        return records
    start = position(start_name, start_type)
    return [record for record in records if position(record.name, record.type) >= start]


def patch_route53():
    """Install change_resource_record_sets and record_sets_from into moto's Route 53 models (idempotent)."""
    from moto.route53.models import FakeZone, Route53Backend

    Route53Backend.change_resource_record_sets = change_resource_record_sets
    FakeZone.get_record_sets = record_sets_from


def patch_ssm():
    """SSM PutParameter as AWS does it: creating a parameter needs a Type, also with Overwrite.

    moto 5.2.5 requires Type for a new parameter only without Overwrite, and otherwise creates
    it with no type. The reconciler sends Type only when it creates a parameter, so a parameter
    deleted between its read and its write must be refused here as AWS refuses it.
    """
    from moto.ssm.exceptions import ValidationException
    from moto.ssm.models import SimpleSystemManagerBackend

    original = getattr(
        SimpleSystemManagerBackend.put_parameter, "__wrapped__", SimpleSystemManagerBackend.put_parameter
    )

    def put_parameter(self, name, description, value, parameter_type, *args, **kwargs):
        if not parameter_type and not self._parameters.get(name):
            raise ValidationException("A parameter type is required when you create a parameter.")
        return original(self, name, description, value, parameter_type, *args, **kwargs)

    put_parameter.__wrapped__ = original
    SimpleSystemManagerBackend.put_parameter = put_parameter


# --------------------------------------------------------------------------
# The middleware
# --------------------------------------------------------------------------


class FailoverEmulator:
    """WSGI middleware in front of moto's DomainDispatcherApplication.

    Requests are served on many threads: ``self.lock`` guards the fault list,
    the request log, and our own edits of moto's ElastiCache models.
    """

    def __init__(self, moto_app):
        self.moto_app = moto_app
        self.lock = threading.Lock()
        self.faults = []  # dicts; see add_fault
        self.next_fault_id = 1
        self.requests = []  # request log entries, in arrival order

    # ---- WSGI entry point ------------------------------------------------

    def __call__(self, environ, start_response):
        """Route: /_failover/* -> control API, /moto-api/* -> moto, anything else -> AWS path."""
        path = environ.get("PATH_INFO", "")
        body = read_body(environ)
        try:
            if path.startswith("/_failover/"):
                status, headers, payload = self.handle_control(environ, path, body)
            elif path.startswith("/moto-api"):
                if path.rstrip("/") == "/moto-api/reset" and environ.get("REQUEST_METHOD") == "POST":
                    self.clear_state()
                status, headers, payload = self.call_moto(environ)
            else:
                status, headers, payload = self.handle_aws(environ, body)
        except Exception:  # keep serving; tell the client and log the traceback
            traceback.print_exc(file=sys.stderr)
            status, headers, payload = json_response(500, {"error": traceback.format_exc(limit=3)})
        start_response(status_line(status), set_content_length(headers, payload))
        return [payload]

    def call_moto(self, environ):
        """Run a request through moto; return (status, headers, body) fully buffered."""
        captured = {}

        def capture_start_response(status, headers, exc_info=None):
            captured["status"] = int(status.split(" ", 1)[0])
            captured["headers"] = list(headers)
            return lambda data: None  # the write() callable, unused by Flask

        result = self.moto_app(environ, capture_start_response)
        try:
            body = b"".join(result)
        finally:
            if hasattr(result, "close"):
                result.close()
        return captured["status"], captured["headers"], body

    def clear_state(self):
        """Forget all faults and the request log (moto-api reset)."""
        with self.lock:
            self.faults.clear()
            self.requests.clear()

    # ---- AWS requests ----------------------------------------------------

    def handle_aws(self, environ, body):
        """Log the request, apply a matching fault if any, else serve it (moto + extensions)."""
        service = detect_service(environ, body)
        operation = detect_operation(service, environ, body)
        entry = {
            "service": service,
            "operation": operation,
            "method": environ.get("REQUEST_METHOD"),
            "path": environ.get("PATH_INFO", ""),
            "status": None,
            "fault_id": None,
        }
        with self.lock:
            self.requests.append(entry)

        fault = self.take_fault(service, operation, environ, body)
        if fault:
            if fault["delay_ms"]:
                time.sleep(fault["delay_ms"] / 1000.0)
            if fault["code"]:
                response = aws_error(service, fault["status"], fault["code"], fault["message"])
            else:
                response = self.serve_aws(service, operation, environ, body)
        else:
            response = self.serve_aws(service, operation, environ, body)

        with self.lock:
            entry["status"] = response[0]
            entry["fault_id"] = fault["id"] if fault else None
        return response

    def serve_aws(self, service, operation, environ, body):
        """Serve an AWS request: our ElastiCache extensions first, else plain moto."""
        if service == "elasticache":
            try:
                if operation == "TestFailover":
                    return self.test_failover(environ, body)
                if operation == "ModifyReplicationGroup":
                    self.apply_primary_cluster_id(environ, body)
            except EmulatorError as err:
                return aws_error("elasticache", err.status, err.code, err.message)
        status, headers, payload = self.call_moto(environ)
        if service == "route53" and operation == "ChangeResourceRecordSets" and status == 200:
            # Route 53 answers a change as PENDING; GetChange reports INSYNC once it has propagated.
            payload = payload.replace(b"<Status>INSYNC</Status>", b"<Status>PENDING</Status>")
        return status, headers, payload

    def elasticache_group(self, environ, params):
        """moto's ReplicationGroup named by the request's ReplicationGroupId (its account/region)."""
        access_key, region, _ = credential_scope(environ)
        account_id = account_for_request(environ, access_key)
        return find_replication_group(account_id, region or DEFAULT_REGION, params.get("ReplicationGroupId", ""))

    def test_failover(self, environ, body):
        """ElastiCache TestFailover: swap roles, then answer with the group as AWS does.

        The response body is moto's DescribeReplicationGroups output for the
        group with the wrapper elements renamed to TestFailoverResponse/Result
        and the ReplicationGroups list unwrapped to a single ReplicationGroup.
        """
        params = query_params(environ, body)
        group_id = params.get("ReplicationGroupId", "")
        with self.lock:
            group = self.elasticache_group(environ, params)
            fail_over(group, node_group_id=params.get("NodeGroupId") or "0001")

        describe = (
            f"Action=DescribeReplicationGroups&Version={ELASTICACHE_VERSION}&ReplicationGroupId={quote(group_id)}"
        )
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
        status, headers, xml = self.call_moto(inner)
        if status != 200:
            return status, headers, xml
        text = xml.decode("utf-8")
        text = text.replace("DescribeReplicationGroupsResponse", "TestFailoverResponse")
        text = text.replace("DescribeReplicationGroupsResult", "TestFailoverResult")
        text = text.replace("<ReplicationGroups>", "").replace("</ReplicationGroups>", "")
        return status, headers, text.encode("utf-8")

    def apply_primary_cluster_id(self, environ, body):
        """ModifyReplicationGroup PrimaryClusterId=X: make X primary in its node group.

        The request then goes to moto unchanged (moto ignores PrimaryClusterId), so
        its response already shows the new roles. An unknown group is left for moto
        to report; an unknown cluster id is InvalidParameterValue.
        """
        params = query_params(environ, body)
        new_primary = params.get("PrimaryClusterId")
        if not new_primary:
            return
        with self.lock:
            try:
                group = self.elasticache_group(environ, params)
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

    # ---- faults ----------------------------------------------------------

    def take_fault(self, service, operation, environ, body):
        """First active fault matching this request (its count is used up by one), or None.

        ``match`` is looked for in the path and query and in the body, each as sent and
        URL-decoded. ``body_contains`` is looked for in the body only, as sent (UTF-8 text, no
        decoding): in an SSM request that is the JSON text, where botocore and the Rust SDK
        (aws-smithy-json) write '/' unescaped, so ``"/app/b/redis"`` finds that parameter name.
        """
        text = body.decode("utf-8", "replace")
        path = environ.get("PATH_INFO", "") + "?" + environ.get("QUERY_STRING", "")
        haystacks = [path, unquote(path), text, unquote_plus(text)]
        with self.lock:
            for fault in self.faults:
                if fault["remaining"] == 0:
                    continue
                if fault["service"] not in (service, "*") or fault["operation"] not in (operation, "*"):
                    continue
                if fault["match"] and not any(fault["match"] in h for h in haystacks):
                    continue
                if fault["body_contains"] and fault["body_contains"] not in text:
                    continue
                if fault["remaining"] is not None:
                    fault["remaining"] -= 1
                fault["hits"] += 1
                return dict(fault)
        return None

    def add_fault(self, spec):
        """Validate a fault spec from POST /_failover/faults and store it; returns its id."""
        if not isinstance(spec.get("service"), str) or not spec["service"]:
            raise EmulatorError(400, "BadRequest", '"service" is required (e.g. "ssm", or "*")')
        count = spec.get("count")
        if count is not None and (not isinstance(count, int) or count < 1):
            raise EmulatorError(400, "BadRequest", '"count" must be a positive integer or null')
        body_contains = spec.get("body_contains")
        if body_contains is not None and (not isinstance(body_contains, str) or not body_contains):
            raise EmulatorError(400, "BadRequest", '"body_contains" must be a non-empty string or null')
        code = spec.get("code")
        try:
            status = int(spec.get("status") or 400)
            delay_ms = int(spec.get("delay_ms") or 0)
        except (TypeError, ValueError):
            raise EmulatorError(400, "BadRequest", '"status" and "delay_ms" must be integers') from None
        with self.lock:
            fault = {
                "id": self.next_fault_id,
                "service": spec["service"].lower(),
                "operation": spec.get("operation") or "*",
                "status": status,
                "code": code or None,
                "message": spec.get("message") or (code or ""),
                "delay_ms": delay_ms,
                "count": count,
                "remaining": count,
                "hits": 0,
                "match": spec.get("match") or None,
                "body_contains": body_contains,
            }
            self.next_fault_id += 1
            self.faults.append(fault)
        return fault["id"]

    # ---- control API -----------------------------------------------------

    def handle_control(self, environ, path, body):
        """Dispatch /_failover/* requests. JSON in, JSON out; errors are {"error": "..."}."""
        method = environ.get("REQUEST_METHOD", "GET").upper()
        path = path.rstrip("/")
        try:
            data = json.loads(body) if body.strip() else {}
        except ValueError:
            return json_response(400, {"error": "request body is not valid JSON"})
        if not isinstance(data, dict):
            return json_response(400, {"error": "request body must be a JSON object"})

        routes = {
            ("POST", "/_failover/elasticache/failover"): self.control_failover,
            ("POST", "/_failover/elasticache/roles"): self.control_roles,
            ("POST", "/_failover/elasticache/status"): self.control_status,
            ("POST", "/_failover/elasticache/endpoints"): self.control_endpoints,
            ("POST", "/_failover/faults"): lambda d: {"id": self.add_fault(d)},
            ("GET", "/_failover/faults"): lambda d: self.snapshot(self.faults),
            ("DELETE", "/_failover/faults"): lambda d: self.clear_list(self.faults),
            ("GET", "/_failover/requests"): lambda d: self.snapshot(self.requests),
            ("DELETE", "/_failover/requests"): lambda d: self.clear_list(self.requests),
        }
        handler = routes.get((method, path))
        if handler is None:
            known = any(p == path for _, p in routes)
            return json_response(405 if known else 404, {"error": f"no control endpoint {method} {path}"})
        try:
            return json_response(200, handler(data))
        except EmulatorError as err:
            return json_response(err.status, {"error": err.message, "code": err.code})

    def snapshot(self, items):
        """Copy of a shared list (faults or request log) taken under the lock."""
        with self.lock:
            return [dict(item) for item in items]

    def clear_list(self, items):
        """Empty a shared list under the lock."""
        with self.lock:
            items.clear()
        return {"cleared": True}

    def control_group(self, data):
        """The ReplicationGroup named in a control request (optional "region", "account_id")."""
        group_id = data.get("replication_group_id")
        if not isinstance(group_id, str) or not group_id:
            raise EmulatorError(400, "BadRequest", '"replication_group_id" is required')
        region = data.get("region") or DEFAULT_REGION
        account_id = data.get("account_id") or default_account()
        return find_replication_group(account_id, region, group_id)

    def control_failover(self, data):
        """POST /_failover/elasticache/failover {replication_group_id, new_primary?, node_group_id?}."""
        with self.lock:
            group = self.control_group(data)
            return fail_over(group, data.get("node_group_id"), data.get("new_primary"))

    def control_roles(self, data):
        """POST /_failover/elasticache/roles {replication_group_id, roles: {member: role}}.

        Any role strings are accepted, so a test can show zero or two primaries.
        """
        roles = data.get("roles")
        if not isinstance(roles, dict):
            raise EmulatorError(400, "BadRequest", '"roles" must be an object {member: role}')
        with self.lock:
            group = self.control_group(data)
            members = {cluster_id: find_member(group, cluster_id) for cluster_id in roles}
            for cluster_id, role in roles.items():
                members[cluster_id]["current_role"] = role
            primaries = [m for m, r in all_roles(group).items() if r == "primary"]
            if group.cluster_mode != "enabled" and len(primaries) == 1:
                group.primary_cluster_id = primaries[0]
            return {"replication_group_id": group.replication_group_id, "roles": all_roles(group)}

    def control_status(self, data):
        """POST /_failover/elasticache/status {replication_group_id, status}: group and node group Status."""
        status = data.get("status")
        if not isinstance(status, str) or not status:
            raise EmulatorError(400, "BadRequest", '"status" is required (e.g. "modifying")')
        with self.lock:
            group = self.control_group(data)
            group.status = status
            for node_group in group.node_groups:
                node_group["status"] = status
            return {"replication_group_id": group.replication_group_id, "status": status}

    def control_endpoints(self, data):
        """POST /_failover/elasticache/endpoints: point members / node group at real addresses.

        Body: {replication_group_id, members?: {member: {address, port}},
               primary_endpoint?: {address, port}, reader_endpoint?: {address, port},
               node_group_id?: "0001", configuration_endpoint?: {address, port}}.
        """
        members = data.get("members") or {}
        if not isinstance(members, dict):
            raise EmulatorError(400, "BadRequest", '"members" must be an object {member: {address, port}}')
        with self.lock:
            group = self.control_group(data)
            new_reads = {cid: endpoint(value, f"members.{cid}") for cid, value in members.items()}
            targets = {cid: find_member(group, cid) for cid in new_reads}  # validate all first
            for cid, read_endpoint in new_reads.items():
                targets[cid]["read_endpoint"] = read_endpoint
            node_group = None
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


# --------------------------------------------------------------------------
# Startup
# --------------------------------------------------------------------------


def warm_up(emulator):
    """Load the ElastiCache, SSM and Route 53 backends before announcing readiness.

    One read-only request per service goes straight to moto (not logged): it
    imports the service modules, builds moto's per-service Flask app, loads the
    botocore model used for serialization and creates the us-east-1 backend.
    Without this, the first real request of each service takes up to ~1 s.
    """
    requests = [
        (
            "elasticache",
            "POST",
            "/",
            f"Action=DescribeReplicationGroups&Version={ELASTICACHE_VERSION}",
            {"CONTENT_TYPE": "application/x-www-form-urlencoded; charset=utf-8"},
        ),
        (
            "ssm",
            "POST",
            "/",
            '{"Name": "/failover-emulator/warm-up"}',
            {"CONTENT_TYPE": "application/x-amz-json-1.1", "HTTP_X_AMZ_TARGET": "AmazonSSM.GetParameter"},
        ),
        ("route53", "GET", "/2013-04-01/hostedzone", "", {}),
    ]
    for service, method, path, body, extra in requests:
        data = body.encode("utf-8")
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "0",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_AUTHORIZATION": (
                f"AWS4-HMAC-SHA256 Credential=WARMUP/20240101/{DEFAULT_REGION}/{service}/aws4_request, "
                "SignedHeaders=host, Signature=0"
            ),
            "CONTENT_LENGTH": str(len(data)),
            "wsgi.input": io.BytesIO(data),
            "wsgi.errors": sys.stderr,
            "wsgi.url_scheme": "http",
            "wsgi.version": (1, 0),
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        environ.update(extra)
        emulator.call_moto(environ)


def loopback_host(host):
    """Return host if it is a loopback address ("localhost" -> 127.0.0.1), else None."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        return host if ipaddress.ip_address(host).is_loopback else None
    except ValueError:
        return None


def watch_parent():
    """Exit the process as soon as stdin reaches EOF (the parent closed the pipe or died)."""
    try:
        sys.stdin.buffer.read()
    finally:
        os._exit(0)


def main(argv=None):
    """Parse the CLI, start the server, print the READY line, serve until killed."""
    parser = argparse.ArgumentParser(description="moto server with failover extensions (see module docstring)")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one (default)")
    parser.add_argument("--parent-watch", action="store_true", help="exit when stdin reaches EOF")
    args = parser.parse_args(argv)

    host = loopback_host(args.host)
    if host is None:
        parser.error(f"refusing to bind non-loopback host {args.host!r}")

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    if args.parent_watch:
        threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()

    # werkzeug logs one line per request at INFO; keep warnings/errors (to stderr) only.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    patch_route53()
    patch_ssm()
    emulator = FailoverEmulator(DomainDispatcherApplication(create_backend_app))
    server = make_server(host, args.port, emulator, threaded=True, request_handler=MotoRequestHandler)
    warm_up(emulator)

    port = server.server_address[1]
    url_host = f"[{host}]" if ":" in host else host
    sys.stdout.write(f"FAILOVER_EMULATOR_READY http://{url_host}:{port}\n")
    sys.stdout.flush()
    # moto occasionally print()s; keep the parent's stdout pipe to the READY line only.
    sys.stdout = sys.stderr

    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
