"""`citylake serve`: the data service (sharing, open data, audit) on HTTP.

    citylake serve                              # 127.0.0.1:8700; OpenAPI at http://127.0.0.1:8700/docs
    citylake serve --host 0.0.0.0 --port 8700   # reachable from other machines (behind a TLS proxy)

The API is :mod:`citylake.drivers.service.app`; keys come from ``citylake keys issue``. It listens on
loopback unless told otherwise. With ``CITYLAKE_ENV=production`` it refuses to start while a secret
still holds its placeholder from .env.example (``change-me…``, also as a database URL's password) or
``CITYLAKE_RECORD_KEY_SECRET`` is unset, and names the variable.
"""

from __future__ import annotations

import argparse
import copy
from dataclasses import fields

from citylake.core.settings import ENV, S3_ENV, Settings, is_placeholder
from citylake.drivers.cli.common import fail

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8700


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help=f"address to listen on (default {DEFAULT_HOST}: this machine only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")


def production_problems(settings: Settings) -> list[str]:
    """What keeps the service from starting in production: every setting (the secrets among them:
    the record-key secret, the S3 secret, the databases' passwords) still holding a placeholder of
    .env.example, and a missing record-key secret."""
    problems = []
    if not settings.record_key_secret:
        problems.append(f"{ENV['record_key_secret']} is not set")
    values = {ENV[f.name]: getattr(settings, f.name) for f in fields(settings) if f.name in ENV}
    values.update({S3_ENV[name]: getattr(settings.s3, name) for name in S3_ENV})
    problems += [f"{var} still holds the placeholder of .env.example (change-me…)"
                 for var, value in values.items() if isinstance(value, str) and is_placeholder(value)]
    return problems


def log_config() -> dict:
    """uvicorn's logging, plus the service's own logger (unexpected errors) on the same stream."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["citylake"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def run(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        return fail("serve", f"--port {args.port} is not a port number")
    settings = Settings.from_env()
    if settings.is_production:
        problems = production_problems(settings)
        if problems:
            return fail("serve", f"refusing to start in production ({ENV['environment']}={settings.environment}): "
                        + "; ".join(problems))
    import uvicorn

    from citylake.drivers.service.app import create_app

    app = create_app(settings)
    # No access log: request lines never carry the Authorization header, but the audit log is the
    # record of who read what: keep one record.
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="info", log_config=log_config())
    return 0
