"""Time the quality check on one large standardized batch: seconds, Spark jobs, driver memory.

    .venv/bin/python tests/stages/check/bench_check.py [--rows 100000] [--resource R …] [--before DIR]

Writes the batch with the tests' builder (tests/stages/check/conftest.py, pyiceberg), warms up
Great Expectations on a small batch, then runs ``check_batch`` once per resource. ``--before DIR``
also runs an older implementation for comparison: ``DIR/runner_before.py`` (with its suite as
``DIR/suite_before.py``), e.g. the pandas check as of commit f1e9aa1::

    mkdir -p /tmp/check_before
    git show f1e9aa1:citylake/stages/check/runner.py \\
      | sed 's/from citylake.stages.check.suite import/from suite_before import/' > /tmp/check_before/runner_before.py
    git show f1e9aa1:citylake/stages/check/suite.py \\
      | sed "s|^EXTRAS_DIR = .*|EXTRAS_DIR = Path('citylake/stages/check/extras').resolve()|" \\
      > /tmp/check_before/suite_before.py

Figures, not assertions. "Python peak" is the most the Python process's resident memory grew
during the check, sampled every 20 ms (the JVM is separate and bounded by its own settings).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the tests' batch builder (conftest.py)
os.environ.setdefault("CITYLAKE_SHUFFLE_PARTITIONS", "2")

from conftest import build_rows, write_batch  # noqa: E402

from citylake.core.registry import load_registrations  # noqa: E402
from citylake.core.settings import REPO_ROOT, Settings  # noqa: E402
from citylake.core.spark import get_session  # noqa: E402
from citylake.stages.check import runner  # noqa: E402


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def growth_mib(fn, *args):
    """(fn(*args), how far RSS rose above its starting value while fn ran)."""
    start, peak, done = rss_mib(), [0.0], threading.Event()

    def sample():
        while not done.wait(0.02):
            peak[0] = max(peak[0], rss_mib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        out = fn(*args)
    finally:
        done.set()
        sampler.join()
    return out, max(peak[0], rss_mib()) - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--resource", action="append")
    parser.add_argument("--before", type=Path, help="folder with runner_before.py and suite_before.py")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="citylake-bench-check-"))
    settings = Settings.from_env(home=home, lake_uri=(home / "lake").as_uri(), spark_master="local[2]",
                                 directory_url=f"sqlite:///{home}/directory.db",
                                 resources_dir=REPO_ROOT / "registrations")
    settings.ensure_local_dirs()
    regs = {r.resource: r for r in load_registrations(settings.resources_dir)}
    chosen = args.resource or ["enterprise_registration", "air_quality_hourly"]
    spark = get_session(settings, "citylake-bench-check")
    sc = spark.sparkContext

    impls = {"spark (now)": lambda reg, b: runner.check_batch(settings, reg, b, spark=spark)}
    if args.before:
        sys.path.insert(0, str(args.before.resolve()))
        before = importlib.import_module("runner_before")
        impls["before"] = lambda reg, b: before.check_batch(settings, reg, b)

    for name in chosen:
        reg = regs[name]
        t = time.perf_counter()
        write_batch(settings, reg, "big", build_rows(reg, args.rows, "big"), quarantined=0)
        write_batch(settings, reg, "warm", build_rows(reg, 50, "warm"), quarantined=0)
        print(f"{name}: {args.rows:,} rows written in {time.perf_counter() - t:.1f} s", flush=True)
        for label, check in impls.items():
            check(reg, "warm")  # GE imported, JIT-warm Spark
            group = f"bench-{name}-{label}"
            sc.setJobGroup(group, group)
            t = time.perf_counter()
            result, grew = growth_mib(check, reg, "big")
            secs = time.perf_counter() - t
            sc.setLocalProperty("spark.jobGroup.id", None)
            jobs = len(sc.statusTracker().getJobIdsForGroup(group))
            print(f"  {label:12} {secs:7.1f} s  {jobs:3d} Spark jobs  {args.rows / secs:9.0f} rows/s  "
                  f"success={result['success']} rows={result['rows']}  Python peak +{grew:.0f} MiB",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
