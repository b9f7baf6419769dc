"""Fault injection in the emulator: error answers and delays for chosen AWS requests.

What it changes in moto, and why: moto has no fault injection, and the functions' retry, timeout and
error paths (throttling, server errors, AccessDenied on one parameter, a slow endpoint) must be tested
against the real SDK clients. A fault rule is added with ``POST /_failover/faults`` and matched by the
WSGI layer (app) before a request reaches moto:

* ``service`` (required; ``"*"`` for any), ``operation`` (default any), ``status`` (default 400),
  ``code``, ``message`` (default the code), ``delay_ms``, ``count`` (how many requests it applies to;
  default every one);
* ``match``: a substring of the request's path and query or its body, each as sent or URL-decoded;
* ``body_contains``: a substring of the body only, as sent (UTF-8 text, no decoding). In an SSM request
  that is the JSON text, where botocore and the Rust SDK (aws-smithy-json) write '/' unescaped, so
  ``"/app/b/redis"`` finds that parameter name.

Every field given must match. A fault with a ``code`` answers with that error in the service's protocol
(``_protocol.aws_error``); one without only delays the request, which moto then serves. Faults are listed
(``GET``, with ``remaining`` and ``hits``) and cleared (``DELETE``); ``POST /moto-api/reset`` clears them.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import unquote, unquote_plus

from ._protocol import EmulatorError, Environ

Fault = dict[str, Any]
"""A stored fault rule, as the control API lists it."""


class FaultTable:
    """The fault rules, in the order they were added; safe to use from many threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.faults: list[Fault] = []
        self.next_id = 1

    def add(self, spec: dict[str, Any]) -> int:
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
                "id": self.next_id,
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
            self.next_id += 1
            self.faults.append(fault)
        return fault["id"]

    def take(self, service: str, operation: str, environ: Environ, body: bytes) -> Fault | None:
        """A copy of the first active fault matching this request (its count is used up by one), or None."""
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

    def snapshot(self) -> list[Fault]:
        """Copies of the rules (GET /_failover/faults)."""
        with self.lock:
            return [dict(fault) for fault in self.faults]

    def clear(self) -> dict[str, bool]:
        """Forget every rule (DELETE /_failover/faults, and moto-api reset)."""
        with self.lock:
            self.faults.clear()
        return {"cleared": True}
