"""`citylake tables`: every table analysts can query, with the facts to choose one.

For each registered resource's curated table (``<department>.<resource>``): its directory code (目录代码,
from the directory's code register; before the first publication the classification prefix and
``…``), name, provider, rows, last update (how current the data is: the newest receipt time it
holds, Beijing time), freshness against its 更新周期 and the quality pass rate of its latest checked
batch (the share of rules passed; "blocked" when that batch failed the gate). A resource with nothing
curated yet is listed with 0 rows. Then the reference tables (``ref.*``). ``--json`` gives the same
facts. Exit code: 0, or 2 when the registrations cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys

from citylake.core.registry import RegistrationError
from citylake.core.settings import Settings
from citylake.drivers.cli.common import UsageError, fail, listed_registrations
from citylake.drivers.cli.query import print_table
from citylake.stages.query import table_list


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="print a JSON list, one object per table: table, kind, directory_code, name, provider, "
                             "rows, last_updated, update_cycle, freshness, quality_pass_rate, …")


def _code(t: dict) -> str:
    if t["directory_code"]:
        return t["directory_code"]
    return f"{t['directory_prefix']}/…" if t["directory_prefix"] else "—"


def _quality(t: dict) -> str:
    if t["quality_pass_rate"] is None:
        return "—"
    return f"{t['quality_pass_rate'] * 100:.0f}%" + (" blocked" if t["quality_passed"] is False else "")


def _rows(t: dict) -> str:
    return f"{t['rows']:,}" if t["exists"] else "0 (no table yet)"


def run(args) -> int:
    try:
        settings = Settings.from_env()
        regs = listed_registrations(settings.resources_dir)
    except (RegistrationError, ValueError, UsageError) as exc:
        return fail("tables", exc)
    found, warnings = table_list(settings, regs)
    for warning in warnings:
        print(f"citylake tables: warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(found, ensure_ascii=False, indent=2))
        return 0
    print_table(
        ["code", "table", "name", "provider", "rows", "last update", "cycle", "freshness", "quality"],
        [[_code(t), t["table"], t["name"], t["provider"], _rows(t), t["last_updated"] or "—",
          t["update_cycle"] or "—", t["freshness_zh"] or "—", _quality(t)] for t in found],
        right={4},
    )
    if any(t["kind"] == "curated" and not t["directory_code"] for t in found):
        print("prefix/… : the directory code is assigned at the next `citylake catalog publish`")
    print("columns: citylake describe TABLE · SQL: citylake query \"SELECT … FROM <department>.<resource>\"")
    return 0
