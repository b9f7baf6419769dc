"""The emulator's WSGI layer: moto's own server app behind a middleware that adds what the tests need.

What it changes in moto, and why: nothing inside moto itself (the service modules do that); it sits in
front of moto's ``DomainDispatcherApplication`` and

* routes ``/_failover/*`` to the control API (unsigned JSON in and out, errors ``{"error", "code"}``):
  ``POST elasticache/{failover,roles,status,endpoints}`` (elasticache.py), ``POST|GET|DELETE faults``
  (faults.py) and ``GET|DELETE requests``, the log below;
* logs every AWS request it serves, in order, with its service, operation, method, path, status and the
  fault that answered it, because the tests count and order the calls the functions make;
* applies a matching fault (delay, error answer) before a request reaches moto;
* hands ElastiCache requests to elasticache.py first (TestFailover, PrimaryClusterId) and rewrites an
  accepted Route 53 change to ``PENDING`` (route53.py);
* clears faults and the log on moto's own ``POST /moto-api/reset``;
* answers any exception with a 500 JSON body and keeps serving.

``create_app()`` installs the Route 53 and SSM patches and returns the middleware; ``warm_up()`` loads
moto's services before the server says it is ready.
"""

from __future__ import annotations

import io
import json
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Any

from . import elasticache, route53, ssm
from ._protocol import (
    DEFAULT_REGION,
    ELASTICACHE_VERSION,
    EmulatorError,
    Environ,
    Response,
    aws_error,
    credential_scope,
    json_response,
    query_params,
    read_body,
    set_content_length,
    status_line,
)
from .faults import FaultTable

StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]


def detect_service(environ: Environ, body: bytes) -> str:
    """Name the AWS service of a request: "ssm", "elasticache", "route53", ...

    The SigV4 credential scope is authoritative; without it we guess from the X-Amz-Target prefix, the
    Route 53 path prefix or the ElastiCache API version.
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


def detect_operation(service: str, environ: Environ, body: bytes) -> str:
    """Name the API operation of a request ("GetParameter", "TestFailover", ...), or "Unknown"."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target and "." in target:  # awsJson protocol (SSM)
        return target.split(".", 1)[1]
    if service == "route53":
        return route53.operation(environ.get("REQUEST_METHOD", "GET").upper(), environ.get("PATH_INFO", ""))
    action = query_params(environ, body).get("Action")  # query protocol (ElastiCache)
    return action or "Unknown"


class RequestLog:
    """The AWS requests served, in arrival order (GET /_failover/requests); safe from many threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: list[dict[str, Any]] = []

    def start(self, service: str, operation: str, environ: Environ) -> dict[str, Any]:
        """Log a request as it arrives; its status is filled in by ``finish``."""
        entry = {
            "service": service,
            "operation": operation,
            "method": environ.get("REQUEST_METHOD"),
            "path": environ.get("PATH_INFO", ""),
            "status": None,
            "fault_id": None,
        }
        with self.lock:
            self.entries.append(entry)
        return entry

    def finish(self, entry: dict[str, Any], status: int, fault_id: int | None) -> None:
        """Record how a logged request was answered."""
        with self.lock:
            entry["status"] = status
            entry["fault_id"] = fault_id

    def snapshot(self) -> list[dict[str, Any]]:
        """Copies of the entries."""
        with self.lock:
            return [dict(entry) for entry in self.entries]

    def clear(self) -> dict[str, bool]:
        """Forget every entry."""
        with self.lock:
            self.entries.clear()
        return {"cleared": True}


class FailoverEmulator:
    """WSGI middleware in front of moto's DomainDispatcherApplication (see the module docstring)."""

    def __init__(self, moto_app: WsgiApp) -> None:
        self.moto_app = moto_app
        self.faults = FaultTable()
        self.requests = RequestLog()
        self.routes: dict[tuple[str, str], Callable[[dict[str, Any]], Any]] = {
            **{("POST", path): handler for path, handler in elasticache.CONTROL.items()},
            ("POST", "/_failover/faults"): lambda d: {"id": self.faults.add(d)},
            ("GET", "/_failover/faults"): lambda d: self.faults.snapshot(),
            ("DELETE", "/_failover/faults"): lambda d: self.faults.clear(),
            ("GET", "/_failover/requests"): lambda d: self.requests.snapshot(),
            ("DELETE", "/_failover/requests"): lambda d: self.requests.clear(),
        }

    def __call__(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        """Route: /_failover/* -> control API, /moto-api/* -> moto, anything else -> AWS path."""
        path = environ.get("PATH_INFO", "")
        body = read_body(environ)
        try:
            if path.startswith("/_failover/"):
                status, headers, payload = self.handle_control(environ, path, body)
            elif path.startswith("/moto-api"):
                if path.rstrip("/") == "/moto-api/reset" and environ.get("REQUEST_METHOD") == "POST":
                    self.faults.clear()
                    self.requests.clear()
                status, headers, payload = self.call_moto(environ)
            else:
                status, headers, payload = self.handle_aws(environ, body)
        except Exception:  # keep serving; tell the client and log the traceback
            traceback.print_exc(file=sys.stderr)
            status, headers, payload = json_response(500, {"error": traceback.format_exc(limit=3)})
        start_response(status_line(status), set_content_length(headers, payload))
        return [payload]

    def call_moto(self, environ: Environ) -> Response:
        """Run a request through moto; return (status, headers, body) fully buffered."""
        captured: dict[str, Any] = {}

        def capture_start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
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

    def handle_aws(self, environ: Environ, body: bytes) -> Response:
        """Log the request, apply a matching fault if any, else serve it (moto + extensions)."""
        service = detect_service(environ, body)
        operation = detect_operation(service, environ, body)
        entry = self.requests.start(service, operation, environ)
        fault = self.faults.take(service, operation, environ, body)
        if fault and fault["delay_ms"]:
            time.sleep(fault["delay_ms"] / 1000.0)
        if fault and fault["code"]:
            response = aws_error(service, fault["status"], fault["code"], fault["message"])
        else:
            response = self.serve_aws(service, operation, environ, body)
        self.requests.finish(entry, response[0], fault["id"] if fault else None)
        return response

    def serve_aws(self, service: str, operation: str, environ: Environ, body: bytes) -> Response:
        """Serve an AWS request: our ElastiCache extensions first, else plain moto."""
        if service == "elasticache":
            ours = elasticache.serve(operation, environ, body, self.call_moto)
            if ours is not None:
                return ours
        status, headers, payload = self.call_moto(environ)
        if service == "route53" and operation == "ChangeResourceRecordSets" and status == 200:
            payload = route53.pending(payload)
        return status, headers, payload

    def handle_control(self, environ: Environ, path: str, body: bytes) -> Response:
        """Dispatch /_failover/* requests. JSON in, JSON out; errors are {"error": "..."}."""
        method = environ.get("REQUEST_METHOD", "GET").upper()
        path = path.rstrip("/")
        try:
            data = json.loads(body) if body.strip() else {}
        except ValueError:
            return json_response(400, {"error": "request body is not valid JSON"})
        if not isinstance(data, dict):
            return json_response(400, {"error": "request body must be a JSON object"})
        handler = self.routes.get((method, path))
        if handler is None:
            known = any(p == path for _, p in self.routes)
            return json_response(405 if known else 404, {"error": f"no control endpoint {method} {path}"})
        try:
            return json_response(200, handler(data))
        except EmulatorError as err:
            return json_response(err.status, {"error": err.message, "code": err.code})


def create_app() -> FailoverEmulator:
    """Patch moto's Route 53 and SSM models and wrap moto's server app in the middleware."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    route53.patch()
    ssm.patch()
    return FailoverEmulator(DomainDispatcherApplication(create_backend_app))


def warm_up(app: FailoverEmulator) -> None:
    """Load the ElastiCache, SSM and Route 53 backends before announcing readiness.

    One read-only request per service goes straight to moto (not logged): it imports the service
    modules, builds moto's per-service Flask app, loads the botocore model used for serialization and
    creates the us-east-1 backend. Without this, the first real request of each service takes up to ~1 s.
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
        app.call_moto(environ)
