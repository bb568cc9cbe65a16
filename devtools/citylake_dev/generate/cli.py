"""`citylake generate`: write sample departmental exports, with known defects, into the landing zone.

Exit code: 0 written, 2 usage error (unknown resource, bad --rows, no registrations).
"""

from __future__ import annotations

import argparse

from citylake.core.registry import RegistrationError
from citylake.core.settings import Settings
from citylake.drivers.cli.common import UsageError, fail, registrations, unknown_names
from citylake_dev.generate.build import generate
from citylake_dev.generate.truth import truth_path

DEFAULT_ROWS = 200
DEFAULT_SEED = 20261121


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, metavar="N",
                        help=f"data rows per file, at least 1 (default {DEFAULT_ROWS})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, metavar="SEED",
                        help=f"random seed; the same seed gives the same bytes (default {DEFAULT_SEED})")
    parser.add_argument(
        "--resource", action="append", default=[], metavar="RESOURCE",
        help="only this resource (repeatable; default: every registered file resource)",
    )
    parser.add_argument(
        "--files-per-resource", type=int, default=1, metavar="K",
        help="export files per resource, at least 1 (default 1)",
    )


def run(args: argparse.Namespace) -> int:
    if args.rows < 1 or args.files_per_resource < 1:
        return fail("generate", "--rows and --files-per-resource must be at least 1")
    settings = Settings.from_env()
    try:
        regs = registrations(settings.resources_dir)
    except (RegistrationError, UsageError) as exc:
        return fail("generate", exc)
    if args.resource:
        by_name = {r.resource: r for r in regs}
        unknown = [r for r in args.resource if r not in by_name]
        if unknown:
            return fail("generate", unknown_names("resource", unknown, by_name))
        regs = [by_name[r] for r in dict.fromkeys(args.resource)]
    truth = generate(settings, regs, rows=args.rows, seed=args.seed, files_per_resource=args.files_per_resource)
    for path, entry in truth["files"].items():
        n_bad = sum(entry["bad"].values())
        reasons = ", ".join(f"{k}={v}" for k, v in entry["bad"].items())
        print(f"{path}: {entry['rows']} rows, {n_bad} bad ({reasons})")
    print(f"truth: {truth_path(settings)}")
    return 0
