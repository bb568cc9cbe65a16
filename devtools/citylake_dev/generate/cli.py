"""`citylake generate`: write sample departmental exports, with known defects, into the landing zone.

``--shape NAME`` makes the files in one of the shapes real exports come in (:data:`.shapes.SHAPES`);
without ``--resource`` it makes them for every registration the shape applies to.

Exit code: 0 written, 2 usage error (unknown resource or shape, bad --rows, no registrations, a shape
that cannot apply to the named resource).
"""

from __future__ import annotations

import argparse

from citylake.core.registry import RegistrationError
from citylake.core.settings import Settings
from citylake.drivers.cli.common import UsageError, fail, registrations, unknown_names
from citylake_dev.generate.build import generate
from citylake_dev.generate.shapes import SHAPES, problem
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
    parser.add_argument(
        "--shape", choices=sorted(SHAPES), default=None, metavar="SHAPE",
        help="make the files in this shape: " + "; ".join(f"{k}: {v}" for k, v in SHAPES.items()),
    )
    parser.add_argument(
        "--workers", type=int, default=None, metavar="N",
        help="processes making rows (default: one per CPU, up to 4, for big runs; the bytes are the same)",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    if args.rows < 1 or args.files_per_resource < 1:
        return fail("generate", "--rows and --files-per-resource must be at least 1")
    if args.workers is not None and args.workers < 1:
        return fail("generate", "--workers must be at least 1")
    settings = Settings.from_env()
    try:
        regs = registrations(settings.resources_dir)
    except (RegistrationError, UsageError) as exc:
        return fail("generate", exc)
    shape = getattr(args, "shape", None)
    if args.resource:
        by_name = {r.resource: r for r in regs}
        unknown = [r for r in args.resource if r not in by_name]
        if unknown:
            return fail("generate", unknown_names("resource", unknown, by_name))
        regs = [by_name[r] for r in dict.fromkeys(args.resource)]
    elif shape:
        for reg in regs:
            if why := problem(shape, reg, args.rows):
                print(f"{reg.resource}: skipped ({why})")
        regs = [reg for reg in regs if problem(shape, reg, args.rows) is None]
        if not regs:
            return fail("generate", f"no registration the shape {shape} applies to")
    try:
        truth = generate(
            settings, regs, rows=args.rows, seed=args.seed, files_per_resource=args.files_per_resource,
            workers=getattr(args, "workers", None), shape=shape,
        )  # fmt: skip
    except ValueError as exc:
        return fail("generate", exc)
    for path, entry in truth["files"].items():
        n_bad = sum(entry["bad"].values())
        reasons = ", ".join(f"{k}={v}" for k, v in entry["bad"].items())
        line = f"{path}: {entry['rows']} rows, {n_bad} bad ({reasons})"
        if "shape" in entry:
            line += f" [shape {entry['shape']['name']}; registration overrides {entry['registration_overrides'] or 'none'}]"
        print(line)
    print(f"truth: {truth_path(settings)}")
    return 0
