"""The `citylake` command.

Each subcommand lives in its own module, which provides ``add_arguments(parser)``
and ``run(args) -> int``; this file only wires them, importing lazily so that
`citylake check` starts fast (no Spark, no Airflow).
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, help)
SUBCOMMANDS = {
    "demo": ("citylake.demo", "generate sample exports and run the whole chain for every resource"),
    "generate": ("citylake.generate", "write realistic, dirty departmental exports into the landing zone"),
    "check": ("citylake.checkcli", "check identifiers: uscc, cn_id, org_code, division_code, mobile"),
    "run": ("citylake.runcli", "run pipeline stages for one resource or department"),
    "catalog": ("catalog.cli", "publish the data-resource directory, or show what changed"),
    "registrations": ("citylake.regcli", "validate and list the resource registrations"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="citylake", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        sp.set_defaults(_module=module_name)
        module = importlib.import_module(module_name)
        module.add_arguments(sp)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Build only the requested subcommand's module when possible (fast start for `check`).
    if argv and argv[0] in SUBCOMMANDS and argv[0] not in ("-h", "--help"):
        name = argv[0]
        module_name, help_text = SUBCOMMANDS[name]
        parser = argparse.ArgumentParser(prog=f"citylake {name}", description=help_text)
        module = importlib.import_module(module_name)
        module.add_arguments(parser)
        args = parser.parse_args(argv[1:])
        return int(module.run(args) or 0)
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(importlib.import_module(args._module).run(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
