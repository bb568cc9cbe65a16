"""`citylake registrations`: validate every registration and list them.

Exit code: 0 all valid, 2 a broken file, a missing folder or a folder without registrations.
"""

from __future__ import annotations

import argparse
import json

from citylake.core.registry import Registration, RegistrationError
from citylake.core.settings import Settings
from citylake.drivers.cli.common import UsageError, fail, registrations


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", metavar="FOLDER",
                        help="resources folder, holding <department>/<resource>.yaml "
                             "(default: CITYLAKE_RESOURCES_DIR, else ./registrations)")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON list: department, resource, name, source_kind, source_format, "
                             "update_cycle, field_count, key")


def as_dict(reg: Registration) -> dict:
    return {
        "department": reg.department,
        "resource": reg.resource,
        "name": reg.name,
        "source_kind": reg.source.kind,
        "source_format": reg.source.format,
        "update_cycle": reg.update_cycle,
        "field_count": len(reg.fields),
        "key": list(reg.key),
    }


def run(args) -> int:
    try:
        if args.dir:
            regs = registrations(args.dir, hint="--dir")
        else:
            regs = registrations(Settings.from_env().resources_dir)
    except (RegistrationError, UsageError) as exc:
        return fail("registrations", exc)
    if args.json:
        print(json.dumps([as_dict(r) for r in regs], ensure_ascii=False, indent=2))
        return 0
    for reg in regs:
        print(f"{reg.department:8} {reg.resource:28} {reg.name}  [{reg.source.kind}:{reg.source.format}, "
              f"{reg.update_cycle}, {len(reg.fields)} fields, key {'+'.join(reg.key)}]")
    return 0
