"""Benchmark: generate exports, then time each step of the chain per resource.

    .venv/bin/python scripts/bench_conform.py [--rows 100000] [--resource R]

Prints rows/s per stage and the peak memory of this process (the Spark driver JVM is separate;
its heap is bounded by CITYLAKE_SPARK_DRIVER_MEMORY). Figures, not assertions: compare runs.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from citylake.core.registry import load_registrations
from citylake.core.settings import Settings
from citylake.core.spark import get_session
from citylake.stages.chain import run_resource
from citylake_dev.generate import generate


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--resource", action="append")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="citylake-bench-"))
    settings = Settings.from_env(home=home, lake_uri=(home / "lake").as_uri(),
                                 directory_url=f"sqlite:///{home}/directory/directory.db")
    settings.ensure_local_dirs()
    regs = [r for r in load_registrations(settings.resources_dir)
            if r.source.kind == "file" and (not args.resource or r.resource in args.resource)]
    t = time.perf_counter()
    generate(settings, regs, rows=args.rows, seed=1)
    print(f"generate: {len(regs)} files x {args.rows} rows in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    spark = get_session(settings, "citylake-bench")
    spark.range(1).count()
    print(f"spark start: {time.perf_counter() - t:.1f} s  (master {settings.spark_master})")

    print(f"{'resource':28} {'rows':>8} {'ingest s':>9} {'conform s':>10} {'rows/s':>9} {'check s':>8} {'curate s':>9}")
    for reg in regs:
        run = run_resource(spark, settings, reg, only=("ingest", "conform", "check", "curate"))
        secs = {s.step: s.seconds for s in run.steps}
        [res] = run.result("conform")
        print(f"{reg.resource:28} {res.received:>8} {secs['ingest']:>9.1f} {secs['conform']:>10.1f} "
              f"{res.received / secs['conform']:>9.0f} {secs['check']:>8.1f} {secs['curate']:>9.1f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the Python driver: {peak:.0f} MiB; lake at {home}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
