"""A client of the emulator's control API (``/_failover/...``, unsigned JSON; see awsbed.emulator.app).

    control = Control(emulator.url)
    control.failover("orders", new_primary="orders-002")
    fault_id = control.add_fault(service="ssm", operation="GetParameter", code="ThrottlingException", count=1)
    calls = [r["operation"] for r in control.requests()]

The named methods raise ``ControlError`` on any answer but 2xx; ``call`` returns every answer as it
came, for tests of the API itself. Never uses a proxy: the emulator is on 127.0.0.1.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ControlError(RuntimeError):
    """The control API answered with an error status."""

    def __init__(self, method: str, path: str, status: int, body: Any) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {body}")
        self.status = status
        self.body = body


class Control:
    """The control API of the emulator at `url` (``http://127.0.0.1:PORT``)."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def call(self, method: str, path: str, payload: Any = None) -> tuple[int, Any]:
        """Any request to the emulator: (status, the body parsed as JSON, else raw bytes, or None if empty)."""
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with _NO_PROXY.open(request, timeout=self.timeout) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as err:
            status, body = err.code, err.read()
        try:
            return status, json.loads(body) if body else None
        except ValueError:
            return status, body

    def request(self, method: str, what: str, payload: Any = None) -> Any:
        """``METHOD /_failover/<what>``: the JSON answer, or ControlError."""
        path = "/_failover/" + what
        status, body = self.call(method, path, payload)
        if not 200 <= status < 300:
            raise ControlError(method, path, status, body)
        return body

    # ---- ElastiCache ------------------------------------------------------------------------------

    def failover(self, group: str, new_primary: str | None = None, node_group_id: str | None = None) -> dict[str, Any]:
        """Fail `group` over as TestFailover does, or to `new_primary`: {old_primary, new_primary, ...}."""
        body: dict[str, Any] = {"replication_group_id": group}
        if new_primary:
            body["new_primary"] = new_primary
        if node_group_id:
            body["node_group_id"] = node_group_id
        return self.request("POST", "elasticache/failover", body)

    def set_roles(self, group: str, roles: dict[str, str]) -> dict[str, Any]:
        """Set members' CurrentRole, any strings (e.g. two replicas, a failover in progress)."""
        return self.request("POST", "elasticache/roles", {"replication_group_id": group, "roles": roles})

    def set_status(self, group: str, status: str) -> dict[str, Any]:
        """Set the group's and its node groups' Status (e.g. "modifying")."""
        return self.request("POST", "elasticache/status", {"replication_group_id": group, "status": status})

    def set_endpoints(self, group: str, members: dict[str, tuple[str, int]], **node_group: Any) -> dict[str, Any]:
        """Point members at real addresses, {member: (address, port)}; `node_group` may add
        primary_endpoint, reader_endpoint, configuration_endpoint ({address, port}) and node_group_id."""
        body = {
            "replication_group_id": group,
            "members": {member: {"address": host, "port": port} for member, (host, port) in members.items()},
            **node_group,
        }
        return self.request("POST", "elasticache/endpoints", body)

    # ---- faults, the request log, reset ------------------------------------------------------------

    def add_fault(self, **spec: Any) -> int:
        """Add a fault rule (fields as in awsbed.emulator.faults); its id."""
        return self.request("POST", "faults", spec)["id"]

    def faults(self) -> list[dict[str, Any]]:
        """The fault rules, with their `remaining` count and `hits`."""
        return self.request("GET", "faults")

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        self.request("DELETE", "faults")

    def requests(self) -> list[dict[str, Any]]:
        """The AWS requests served since the last clear: service, operation, method, path, status, fault_id."""
        return self.request("GET", "requests")

    def clear_requests(self) -> None:
        """Empty the request log."""
        self.request("DELETE", "requests")

    def reset(self) -> None:
        """moto's own reset (every resource gone), which also clears faults and the request log."""
        status, body = self.call("POST", "/moto-api/reset")
        if status != 200:
            raise ControlError("POST", "/moto-api/reset", status, body)
