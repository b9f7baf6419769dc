"""A Lambda Runtime API for one function process, as the benchmarks (bench/functions.py) drive it.

    api = RuntimeApi()                         # serves on 127.0.0.1, a free port
    env["AWS_LAMBDA_RUNTIME_API"] = api.address
    ...start the function process...
    at, kind, body = api.invoke(event)         # kind: "response" or "error"
    api.stop()

The four endpoints a custom runtime uses (``/next``, ``/response``, ``/error``, ``/init/error``). Each
function process gets its own, so a killed process's last ``/next``, still in flight, can never take the
next process's event. ``invoke`` times what a caller sees (the monotonic time the answer arrived), and
``first_next`` records when the process first asked for work (its init is over).
"""

from __future__ import annotations

import http.server
import json
import queue
import sys
import threading
import time
import uuid
from typing import Any

ACCOUNT = "123456789012"
"""The account of the function ARN every invocation carries."""


class RuntimeApi:
    """The Runtime API of one function process (see the module docstring)."""

    def __init__(self, function_name: str = "bench") -> None:
        self.events: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.done: dict[str, queue.Queue[tuple[float, str, bytes]]] = {}
        self.first_next: float | None = None
        self.lock = threading.Lock()
        arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{function_name}"
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if not self.path.endswith("/runtime/invocation/next"):
                    return self.reply(404, b"{}")
                with api.lock:
                    if api.first_next is None:
                        api.first_next = time.monotonic()
                request_id, body = api.events.get()
                headers = {
                    "Lambda-Runtime-Aws-Request-Id": request_id,
                    "Lambda-Runtime-Deadline-Ms": str(int((time.time() + 60) * 1000)),
                    "Lambda-Runtime-Invoked-Function-Arn": arn,
                    "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000;Sampled=0",
                }
                self.reply(200, body, headers)
                return None

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                parts = self.path.split("/")
                if "invocation" in parts:
                    request_id, kind = parts[-2], parts[-1]
                    waiting = api.done.get(request_id)
                    if waiting is not None:
                        waiting.put((time.monotonic(), kind, body))
                elif self.path.endswith("/init/error"):
                    print(f"init error: {body.decode()}", file=sys.stderr)
                self.reply(202, b"{}")

            def reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                # A killed function process leaves its pending /next answered into a closed socket.
                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        """``host:port``, the value of ``AWS_LAMBDA_RUNTIME_API``."""
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def invoke(self, event: Any, timeout: float = 60) -> tuple[float, str, Any]:
        """Queues `event`; returns (monotonic time of the answer, kind, parsed body). queue.Empty on timeout."""
        request_id = str(uuid.uuid4())
        self.done[request_id] = queue.Queue()
        self.events.put((request_id, json.dumps(event).encode()))
        try:
            at, kind, body = self.done[request_id].get(timeout=timeout)
        finally:
            self.done.pop(request_id, None)
        return at, kind, json.loads(body or b"null")

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()
