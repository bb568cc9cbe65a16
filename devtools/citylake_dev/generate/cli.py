"""`citylake generate`: arguments and entry point."""

from __future__ import annotations

import argparse
import sys

from citylake.core.registry import load_registrations
from citylake.core.settings import Settings
from citylake_dev.generate.build import generate
from citylake_dev.generate.truth import truth_path

DEFAULT_ROWS = 200
DEFAULT_SEED = 20261121


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help=f"data rows per file (default {DEFAULT_ROWS})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    parser.add_argument(
        "--resource", action="append", default=[], metavar="RESOURCE",
        help="only this resource (repeatable; default: every registered file resource)",
    )
    parser.add_argument(
        "--files-per-resource", type=int, default=1, metavar="K", help="export files per resource (default 1)"
    )


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    regs = load_registrations(settings.resources_dir)
    if args.resource:
        by_name = {r.resource: r for r in regs}
        unknown = [r for r in args.resource if r not in by_name]
        if unknown:
            known = ", ".join(sorted(by_name))
            print(f"unknown resource(s): {', '.join(unknown)}; registered: {known}", file=sys.stderr)
            return 2
        regs = [by_name[r] for r in dict.fromkeys(args.resource)]
    if args.rows < 1 or args.files_per_resource < 1:
        print("--rows and --files-per-resource must be at least 1", file=sys.stderr)
        return 2
    truth = generate(settings, regs, rows=args.rows, seed=args.seed, files_per_resource=args.files_per_resource)
    for path, entry in truth["files"].items():
        n_bad = sum(entry["bad"].values())
        reasons = ", ".join(f"{k}={v}" for k, v in entry["bad"].items())
        print(f"{path}: {entry['rows']} rows, {n_bad} bad ({reasons})")
    print(f"truth: {truth_path(settings)}")
    return 0
