"""The `citylake` command.

Each subcommand lives in its own module, which provides ``add_arguments(parser)`` and
``run(args) -> int``; this file only wires them, importing lazily so that `citylake check`
starts fast (no Spark, no Airflow). Development commands (`demo`, `generate`) come from the
``citylake-dev`` distribution through the ``citylake.commands`` entry-point group, so the product
package never imports its dev tooling.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from importlib.metadata import entry_points

from citylake import __version__

# name -> (module, help)
SUBCOMMANDS = {
    "check": ("citylake.drivers.cli.check", "check identifiers: uscc, cn_id, org_code, division_code, mobile"),
    "run": ("citylake.drivers.cli.run", "run the chain (or some of its steps) for one resource or department"),
    "catalog": ("citylake.drivers.cli.catalog", "publish the data-resource directory, or show what changed"),
    "reprocess": ("citylake.drivers.cli.reprocess", "run refused, failed or blocked batches again from raw, "
                  "once their cause is fixed"),
    "status": ("citylake.drivers.cli.status", "where each resource's batches stand: state, rows, quality, "
               "freshness, what is waiting"),
    "registrations": ("citylake.drivers.cli.registrations", "validate and list the resource registrations"),
    "template": ("citylake.drivers.cli.template", "write a resource's drop template (XLSX and CSV) for its "
                 "department's liaison"),
    "history": ("citylake.drivers.cli.history", "a resource's table snapshots: when, which batches, rows added "
                "and deleted, and how to read the table as of one"),
    "query": ("citylake.drivers.cli.query", "SQL over the curated and reference tables by name (DuckDB, or Spark "
              "with --engine spark): a table on the terminal, or csv, json, parquet, xlsx"),
    "tables": ("citylake.drivers.cli.tables", "every queryable table: directory code, name, provider, rows, last "
               "update, freshness, quality"),
    "describe": ("citylake.drivers.cli.describe", "a table's columns: titles, types, sensitivity and masking"),
    "sql-server": ("citylake.drivers.cli.sql_server", "a Spark Connect endpoint over the catalog for BI tools and "
                   "notebooks (sc://host:15002)"),
    "serve": ("citylake.drivers.cli.serve", "the data service: sharing between departments, open data and the "
              "audit log over HTTP (OpenAPI at /docs)"),
    "keys": ("citylake.drivers.cli.keys", "issue, list and revoke the data service's API keys"),
}
PLUGIN_GROUP = "citylake.commands"


def subcommands() -> dict[str, tuple[str, str]]:
    """Built-in subcommands plus those installed by other distributions (``citylake-dev``)."""
    found = dict(SUBCOMMANDS)
    for ep in entry_points(group=PLUGIN_GROUP):
        if ep.name not in found:
            found[ep.name] = (ep.value, "")
    return found


def _load(module_name: str):
    module = importlib.import_module(module_name)
    doc = (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else ""
    # A plugin's help is its docstring's first line, "`citylake demo`: what it does": keep the what.
    return module, re.sub(r"^`citylake [\w-]+`:\s*", "", doc).rstrip(".")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="citylake", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"citylake {__version__}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                help="`citylake COMMAND --help` tells more")
    for name, (module_name, help_text) in subcommands().items():
        module, doc = _load(module_name)
        sp = sub.add_parser(name, help=help_text or doc, description=help_text or doc)
        sp.set_defaults(_module=module_name)
        module.add_arguments(sp)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    commands = subcommands()
    # Build only the requested subcommand's module when possible (fast start for `check`).
    if argv and argv[0] in commands:
        name = argv[0]
        module_name, help_text = commands[name]
        module, doc = _load(module_name)
        parser = argparse.ArgumentParser(prog=f"citylake {name}", description=help_text or doc)
        module.add_arguments(parser)
        args = parser.parse_args(argv[1:])
        return int(module.run(args) or 0)
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(importlib.import_module(args._module).run(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
