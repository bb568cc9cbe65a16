"""Start-up shared by the Spark job scripts: parse arguments, find the registration, open Spark."""

from __future__ import annotations

import argparse
import sys

from citylake.registry import Registration, find_registration
from citylake.settings import Settings


def start(parser: argparse.ArgumentParser, argv: list[str] | None, stage: str):
    """(args, settings, registration, spark) for ``--resource``; exits 2 naming the registered ones."""
    from citylake.spark import get_session

    parser.add_argument("--resource", required=True)
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    try:
        reg: Registration = find_registration(settings.resources_dir, args.resource)
    except LookupError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None
    return args, settings, reg, get_session(settings, f"citylake-{stage}-{args.resource}")
