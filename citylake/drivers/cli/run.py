"""`citylake run`: run the chain (or some of its steps) for one resource or a department, here."""

from __future__ import annotations

import argparse
import json

from citylake.core.registry import load_registrations
from citylake.core.settings import Settings
from citylake.stages.chain import ALL_STEPS, SPARK_STEPS, run_resource, steps


def add_arguments(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--resource", help="one registered resource")
    target.add_argument("--department", help="every resource of one department")
    parser.add_argument("--stage", choices=[*ALL_STEPS, "all"], default="all",
                        help="run only this step of the chain (default: all, in order)")


def _jsonable(result):
    if isinstance(result, list):
        return [_jsonable(r) for r in result]
    return result.as_dict() if hasattr(result, "as_dict") else result


def run(args) -> int:
    settings = Settings.from_env()
    regs = [r for r in load_registrations(settings.resources_dir)
            if r.resource == args.resource or r.department == args.department]
    if not regs:
        print("no such resource or department")
        return 2
    only = None if args.stage == "all" else (args.stage,)
    spark = None
    if any(step in SPARK_STEPS and (only is None or step in only) for reg in regs for step in steps(reg)):
        from citylake.core.spark import get_session

        spark = get_session(settings, "citylake-run")
    for reg in regs:
        run_ = run_resource(spark, settings, reg, only=only)
        out = {"resource": reg.resource, **{s.step: _jsonable(s.result) for s in run_.steps}}
        print(json.dumps(out, ensure_ascii=False, default=str))
    return 0
