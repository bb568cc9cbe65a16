"""`citylake registrations`: validate every registration and list them."""

from __future__ import annotations

import argparse
import sys

from citylake.core.registry import RegistrationError, load_registrations
from citylake.core.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", help="resources folder (default: CITYLAKE_RESOURCES_DIR or registrations)")


def run(args) -> int:
    settings = Settings.from_env()
    try:
        regs = load_registrations(args.dir or settings.resources_dir)
    except RegistrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for reg in regs:
        print(f"{reg.department:8} {reg.resource:28} {reg.name}  [{reg.source.kind}:{reg.source.format}, "
              f"{reg.update_cycle}, {len(reg.fields)} fields, key {'+'.join(reg.key)}]")
    return 0
