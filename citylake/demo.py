"""`citylake demo`: generate sample exports and run the whole chain for every resource.

By default the chain runs through Airflow — the very DAGs production runs — on an
embedded Airflow home under $CITYLAKE_HOME. `--direct` runs the same stage
functions in this process instead (no Airflow), which is quicker for a first look.
"""

from __future__ import annotations

import argparse
import json
import time

from .registry import load_registrations
from .settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, default=2000, help="rows per generated file (default 2000)")
    parser.add_argument("--seed", type=int, default=20261121)
    parser.add_argument("--direct", action="store_true", help="run stages in this process instead of through Airflow")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args) -> int:
    from .generate import generate
    from .summary import format_summary, resource_summary

    settings = Settings.from_env()
    settings.ensure_local_dirs()
    regs = load_registrations(settings.resources_dir)
    started = time.monotonic()
    duplicates_before = {r.resource: resource_summary(settings, r)["duplicate_drops"] for r in regs}
    truth = generate(settings, [r for r in regs if r.source.kind == "file"], rows=args.rows, seed=args.seed)
    print(f"generated {len(truth['files'])} sample exports ({args.rows} rows each) into the landing zone")

    if args.direct:
        _run_direct(settings, regs)
    else:
        from .airflow_support import run_all

        ok = run_all(settings, rows=args.rows, seed=args.seed)
        if not ok:
            print("one or more DAG runs failed; see the logs above")
            return 1

    summaries = [resource_summary(settings, r) for r in regs]
    for s in summaries:
        again = s["duplicate_drops"] - duplicates_before.get(s["resource"], 0)
        if again:
            print(f"{s['department']}/{s['resource']}: {again} drop(s) already ingested before — "
                  f"recognised by checksum and not ingested again (see the .duplicate receipts)")
    if args.json:
        print(json.dumps(summaries, ensure_ascii=False, indent=2))
    else:
        print()
        print(format_summary(summaries, settings))
        print(f"  receipts     see receipts/<dept>/<resource>/*.txt")
        print(f"directory: {settings.directory_dir}/ (directory.db, directory.json, directory.xlsx, site/index.html)")
        print(f"finished in {time.monotonic() - started:.0f} s")
    return 0


def _run_direct(settings: Settings, regs) -> None:
    from .pipeline import ingest_resource
    from .runner import run_resource
    from .spark import get_session

    spark = get_session(settings, "citylake-demo")
    for reg in regs:
        if reg.source.kind != "file":
            continue
        run_resource(spark, settings, reg)
    from catalog.publish import publish

    publish(settings, regs)
