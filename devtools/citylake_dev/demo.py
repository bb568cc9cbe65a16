"""`citylake demo`: generate sample exports and run the whole chain for every resource.

By default the chain runs through Airflow — the very DAGs production runs — on an embedded
Airflow home under $CITYLAKE_HOME. `--direct` runs the same chain (:mod:`citylake.stages.chain`)
in this process instead (no Airflow), which is quicker for a first look. Both seed the demo's SQL
source first, so the SQL-source resource goes through the chain too.
"""

from __future__ import annotations

import argparse
import json
import time

from citylake.core.lake import Lake
from citylake.core.ledger import Ledger
from citylake.core.registry import load_registrations
from citylake.core.settings import Settings

DEFAULT_ROWS = 2000
DEFAULT_SEED = 20261121


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, metavar="N",
                        help=f"rows per generated file (default {DEFAULT_ROWS})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, metavar="SEED",
                        help=f"random seed of the sample exports; the same seed gives the same bytes "
                             f"(default {DEFAULT_SEED})")
    parser.add_argument(
        "--direct", action="store_true", help="run the chain in this process instead of through Airflow"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args) -> int:
    from citylake_dev.demo_source import DEMO_SOURCE_TABLE, demo_source_path, seed_demo_source_db
    from citylake_dev.dev_env import load_dev_env
    from citylake_dev.generate import generate

    settings = Settings.from_env()
    settings.ensure_local_dirs()
    load_dev_env(settings)  # connections of the embedded default (Spark local, the demo SQL source)
    regs = load_registrations(settings.resources_dir)
    started = time.monotonic()
    duplicates_before = {r.resource: Ledger.read(settings, r).duplicate_drops for r in regs}
    truth = generate(settings, [r for r in regs if r.source.kind == "file"], rows=args.rows, seed=args.seed)
    print(f"generated {len(truth['files'])} sample exports ({args.rows} rows each) into the landing zone")
    src = demo_source_path(settings)
    if src is not None and not src.exists():
        info = seed_demo_source_db(settings, rows=min(args.rows, 2000), seed=args.seed)
        print(f"seeded the demo source database {src} ({info['inserted']} rows in {DEMO_SOURCE_TABLE})")

    if args.direct:
        _run_direct(settings, regs)
    else:
        from citylake_dev.airflow_embedded import run_all

        ok = run_all(settings)
        if not ok:
            print("one or more DAG runs failed; see the logs above")
            return 1

    summaries = [Ledger.read(settings, r).summary() for r in regs]
    for s in summaries:
        again = s["duplicate_drops"] - duplicates_before.get(s["resource"], 0)
        if again:
            print(
                f"{s['department']}/{s['resource']}: {again} drop(s) already ingested before — "
                f"recognised by checksum and not ingested again (see the .duplicate receipts)"
            )
    if args.json:
        print(json.dumps(summaries, ensure_ascii=False, indent=2))
    else:
        print()
        print(format_summary(summaries, settings))
        print("  receipts     see receipts/<dept>/<resource>/*.txt")
        print(f"directory: {settings.directory_dir}/ (directory.db, directory.json, directory.xlsx, site/index.html)")
        print(f"finished in {time.monotonic() - started:.0f} s")
    return 0


def _run_direct(settings: Settings, regs) -> None:
    from citylake.core.spark import get_session
    from citylake.stages.chain import run_resource
    from citylake.stages.publish.publish import publish

    spark = get_session(settings, "citylake-demo")
    for reg in regs:
        run_resource(spark, settings, reg, on_step=lambda res, step: print(f"{res}: {step}", flush=True))
    publish(settings, regs)


def format_summary(rows: list[dict], settings: Settings) -> str:
    lake = Lake.from_settings(settings)
    out = []
    for s in rows:
        out.append(
            f"{s['department']}/{s['resource']} {s['name']}\n"
            f"  batches {s['batches']} (rejected files {s['rejected_files']}), rows received {s['received']}, "
            f"standardized {s['standardized']}, quarantined {s['quarantined']}, curated {s['curated']}, "
            f"quality passed {s['quality_passed']}/{s['quality_checked']} batches"
        )
        if s["reasons"]:
            out.append("  quarantined by reason: " + ", ".join(f"{k}={v}" for k, v in s["reasons"].items()))
    out.append("")
    out.append(f"lake:      {lake.uri}")
    for zone in ("raw", "standardized", "quarantine", "curated", "quality", "receipts"):
        out.append(f"  {zone:12} {lake.uri}/{zone}/")
    return "\n".join(out)
