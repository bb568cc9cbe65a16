"""`citylake template`: write the drop template of a resource, for its department's liaison.

    citylake template enterprise_registration --out ~/Desktop

Writes ``<resource>_template.xlsx`` (header, an example row, and a “填写说明” sheet explaining each
column) and ``<resource>_template.csv`` (header and example row, in the registration's encoding).
Exit code: 0, or 2 for an unknown resource, a resource extracted from a database (no drop), or an
output folder that cannot be written.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from citylake.core.settings import Settings
from citylake.drivers.cli.common import UsageError, fail, registrations, unknown_names
from citylake.stages import drop_template


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("resource", metavar="RESOURCE", help="the registered resource (a file-drop resource)")
    parser.add_argument("--out", metavar="FOLDER", default=".",
                        help="folder to write <resource>_template.xlsx and .csv into, created if missing "
                             "(default: the current folder)")


def run(args) -> int:
    try:
        regs = registrations(Settings.from_env().resources_dir)
    except (ValueError, UsageError) as exc:  # a broken registration is a ValueError too
        return fail("template", exc)
    reg = next((r for r in regs if r.resource == args.resource), None)
    if reg is None:
        return fail("template", unknown_names("resource", [args.resource], (r.resource for r in regs)))
    try:
        files = drop_template.files(reg)
    except ValueError as exc:  # NoDropTemplate, or text the declared encoding cannot hold
        return fail("template", exc)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (out / name).write_bytes(data)
    except OSError as exc:
        return fail("template", f"cannot write to {out}: {exc}")
    for name in files:
        print(out / name)
    return 0
