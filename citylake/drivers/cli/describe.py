"""`citylake describe TABLE`: a queryable table's columns, with titles, types, sensitivity and masking.

    citylake describe scjg.enterprise_registration
    citylake describe resident_population --json
    citylake describe ref.divisions

TABLE is ``<department>.<resource>`` (or the resource alone, or ``lake.<department>.<resource>``) or a
reference table ``ref.*``. For a curated table: each column as the table has it (as the registration
will make it, before its first curate) with its title, the table's type and the registered one, the
sensitivity, the mask a personal field is curated with and what it does to a value, and a field's code
list; then the restricted fields, which curate leaves out. Exit code: 0, or 2 for an unknown table.
"""

from __future__ import annotations

import argparse
import json

from citylake.core.registry import RegistrationError
from citylake.core.settings import Settings
from citylake.drivers.cli.common import UsageError, fail, listed_registrations, unknown_names
from citylake.drivers.cli.query import print_table
from citylake.stages.query import UnknownTable, describe


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("table", metavar="TABLE",
                        help="<department>.<resource> (or the resource name) or ref.divisions, ref.division_editions, "
                             "ref.codes (`citylake tables` lists them)")
    parser.add_argument("--json", action="store_true", help="print one JSON object: the table's facts and columns")


def _mask(c: dict) -> str:
    return f"{c['mask']} ({c['mask_example']})" if c["mask"] else "—"


def _codes(c: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in c["codes"].items()) if c["codes"] else ""


def run(args) -> int:
    try:
        settings = Settings.from_env()
        regs = listed_registrations(settings.resources_dir)
    except (RegistrationError, ValueError, UsageError) as exc:
        return fail("describe", exc)
    try:
        facts = describe(settings, regs, args.table)
    except UnknownTable as exc:
        return fail("describe", unknown_names("table", exc.unknown, exc.known))
    if args.json:
        print(json.dumps(facts, ensure_ascii=False, indent=2))
        return 0
    print(f"{facts['table']}  {facts['name']}  ({facts['kind']})")
    about = [f"provider {facts['provider']}"]
    if facts["kind"] == "curated":
        code = facts["directory_code"] or f"{facts['directory_prefix']}/… (assigned at the next publication)"
        about += [f"directory code {code}", f"key {', '.join(facts['key'])}", f"update cycle {facts['update_cycle']}"]
        about.append(f"{facts['rows']:,} rows, last update {facts['last_updated']}" if facts["exists"]
                     else "no table yet: columns as the registration will make them")
    else:
        about.append(f"{facts['rows']:,} rows")
    print("  " + " · ".join(about))
    print_table(
        ["column", "title", "type", "registered", "sensitivity", "mask", "codes"],
        [[c["name"], c["title"], c["type"] or "—", c["registered_type"] or "—", c["sensitivity"] or "—",
          _mask(c), _codes(c)] for c in facts["columns"]],
    )
    if facts["withheld"]:
        print("not in the table (restricted, left out by curate): "
              + ", ".join(f"{w['name']} {w['title']}" for w in facts["withheld"]))
    return 0
