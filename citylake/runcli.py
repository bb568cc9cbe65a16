"""`citylake run`: run pipeline stages for one resource or a department, in this process."""

from __future__ import annotations

import argparse
import json

from .registry import load_registrations
from .settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--resource")
    target.add_argument("--department")
    parser.add_argument("--stage", choices=["ingest", "conform", "check", "curate", "receipt", "all"], default="all")


def run(args) -> int:
    from . import pipeline

    settings = Settings.from_env()
    regs = [r for r in load_registrations(settings.resources_dir)
            if r.resource == args.resource or r.department == args.department]
    if not regs:
        print("no such resource or department")
        return 2
    spark = None
    if args.stage in ("conform", "curate", "all"):
        from .spark import get_session

        spark = get_session(settings, "citylake-run")
    for reg in regs:
        out: dict = {"resource": reg.resource}
        if args.stage in ("ingest", "all"):
            out["ingest"] = [o.as_dict() for o in pipeline.ingest_resource(settings, reg)]
        if args.stage in ("conform", "all"):
            from jobs.conform import conform_batches

            out["conform"] = [r.as_dict() for r in conform_batches(spark, settings, reg)]
        if args.stage in ("check", "all"):
            out["check"] = [{"batch_id": r["batch_id"], "success": r["success"]} for r in pipeline.check_batches(settings, reg)]
        if args.stage in ("curate", "all"):
            from jobs.curate import curate_resource

            out["curate"] = curate_resource(spark, settings, reg).as_dict()
        if args.stage in ("receipt", "all"):
            out["receipts"] = [r["status"] for r in pipeline.write_receipts(settings, reg)]
        print(json.dumps(out, ensure_ascii=False, default=str))
    return 0
