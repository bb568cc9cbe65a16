"""`citylake serve`: the data service (sharing, open data, audit) on HTTP.

    citylake serve                              # 127.0.0.1:8700; OpenAPI at http://127.0.0.1:8700/docs
    citylake serve --host 0.0.0.0 --port 8700   # reachable from other machines (behind a TLS proxy)

The API is :mod:`citylake.drivers.service.app`; keys come from ``citylake keys issue``.
"""

from __future__ import annotations

import argparse

from citylake.core.settings import Settings
from citylake.drivers.cli.common import fail

DEFAULT_PORT = 8700


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")


def run(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        return fail("serve", f"--port {args.port} is not a port number")
    import uvicorn

    from citylake.drivers.service.app import create_app

    app = create_app(Settings.from_env())
    # The access log would print request lines only (never the Authorization header), but the
    # audit log is the record of who read what: keep one record.
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="info")
    return 0
