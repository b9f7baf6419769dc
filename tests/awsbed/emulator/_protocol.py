"""The wire level the emulator's modules share: request bodies and parameters, who signed a request,
AWS error bodies in each service's protocol, and WSGI responses.

Changes nothing in moto. It exists so that the service modules (elasticache, route53, ssm, faults) and
the WSGI layer (app) read and answer requests the same way: a request body is read once and put back for
moto, an error of a service is written in that service's protocol (awsJson 1.1 for SSM, restXml for
Route 53, query XML for ElastiCache), and a control-API answer is JSON.
"""

from __future__ import annotations

import http
import io
import json
import os
import re
import uuid
from typing import Any
from urllib.parse import parse_qs

Environ = dict[str, Any]
"""A WSGI environ."""
Headers = list[tuple[str, str]]
"""WSGI response headers."""
Response = tuple[int, Headers, bytes]
"""A fully buffered response: (status, headers, body)."""

DEFAULT_REGION = "us-east-1"
ELASTICACHE_VERSION = "2015-02-02"
ELASTICACHE_XMLNS = "http://elasticache.amazonaws.com/doc/2015-02-02/"
ROUTE53_XMLNS = "https://route53.amazonaws.com/doc/2013-04-01/"

# SigV4: "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/ssm/aws4_request, ..."
CREDENTIAL_SCOPE = re.compile(r"Credential=([^/,\s]+)/[^/]+/([^/]+)/([^/]+)/aws4_request")


class EmulatorError(Exception):
    """An error with an HTTP status and an AWS-style code.

    Raised by the ElastiCache helpers and the control API's validation; the caller turns it into an
    AWS error (ElastiCache API) or into ``{"error": ..., "code": ...}`` JSON (control API).
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def read_body(environ: Environ) -> bytes:
    """Read the whole request body and put a fresh copy back for moto.

    WSGI bodies can be read only once; we peek at them (fault matching, Action detection), so we buffer
    the bytes and re-supply them as ``wsgi.input``.
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


def query_params(environ: Environ, body: bytes) -> dict[str, str]:
    """Parameters of a query-protocol request: the form body plus the query string."""
    params = {}
    for source in (environ.get("QUERY_STRING", ""), body.decode("utf-8", "replace")):
        for key, values in parse_qs(source, keep_blank_values=True).items():
            params[key] = values[0]
    return params


def credential_scope(environ: Environ) -> tuple[str | None, str | None, str | None]:
    """(access_key, region, service) from the SigV4 Authorization header, or Nones."""
    match = CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if not match:
        return None, None, None
    access_key, region, service = match.groups()
    return access_key, region, service.lower()


def account_for_request(environ: Environ, access_key: str | None) -> str:
    """The moto account a signed request acts in, resolved the same way moto does."""
    if "MOTO_ACCOUNT_ID" in os.environ:
        return os.environ["MOTO_ACCOUNT_ID"]
    if environ.get("HTTP_X_MOTO_ACCOUNT_ID"):
        return environ["HTTP_X_MOTO_ACCOUNT_ID"]
    from moto.iam.models import get_account_id_from

    return get_account_id_from(access_key or "")


def default_account() -> str:
    """The account control-API calls act in unless the body names one."""
    from moto.core import DEFAULT_ACCOUNT_ID

    return os.environ.get("MOTO_ACCOUNT_ID", DEFAULT_ACCOUNT_ID)


def status_line(status: int) -> str:
    """'404' -> '404 Not Found' (WSGI wants the reason phrase)."""
    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


def xml_escape(text: object) -> str:
    """Escape text for an XML element body."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def aws_error(service: str, status: int, code: str, message: str) -> Response:
    """An AWS error response in the service's protocol.

    ssm -> awsJson 1.1; route53 -> restXml; everything else -> query-protocol XML (with ElastiCache's
    namespace for elasticache).
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


def json_response(status: int, payload: object) -> Response:
    """A control-API JSON response."""
    return status, [("Content-Type", "application/json")], json.dumps(payload).encode("utf-8")


def set_content_length(headers: Headers, body: bytes) -> Headers:
    """Copy of headers with Content-Length matching body."""
    headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
    return [*headers, ("Content-Length", str(len(body)))]
