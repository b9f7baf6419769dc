"""Run the emulator: ``python -m awsbed.emulator [--host 127.0.0.1] [--port 0] [--parent-watch]``.

Binds a loopback address only (any other host is refused). Once ready it prints exactly one line to
stdout, ``FAILOVER_EMULATOR_READY http://HOST:PORT`` (``--port 0`` picks a free port), which is what
the Rust harness and ``awsbed.process.start_emulator`` read; anything printed later goes to stderr. With
``--parent-watch`` the process exits as soon as its stdin reaches EOF, so it cannot outlive the test
process that holds the pipe. SIGTERM and SIGINT stop it with exit status 0.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import sys
import threading
from types import FrameType

from .app import create_app, warm_up


def loopback_host(host: str) -> str | None:
    """Return host if it is a loopback address ("localhost" -> 127.0.0.1), else None."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        return host if ipaddress.ip_address(host).is_loopback else None
    except ValueError:
        return None


def watch_parent() -> None:
    """Exit the process as soon as stdin reaches EOF (the parent closed the pipe or died)."""
    try:
        sys.stdin.buffer.read()
    finally:
        os._exit(0)


def main(argv: list[str] | None = None) -> None:
    """Parse the CLI, start the server, print the READY line, serve until stopped."""
    parser = argparse.ArgumentParser(
        prog="python -m awsbed.emulator", description="moto server with failover extensions (see awsbed.emulator)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one (default)")
    parser.add_argument("--parent-watch", action="store_true", help="exit when stdin reaches EOF")
    args = parser.parse_args(argv)

    host = loopback_host(args.host)
    if host is None:
        parser.error(f"refusing to bind non-loopback host {args.host!r}")

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    if args.parent_watch:
        threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()

    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    # werkzeug logs one line per request at INFO; keep warnings/errors (to stderr) only.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    app = create_app()
    server = make_server(host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    warm_up(app)

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
