"""The Spark steps as one spark-submit application.

    spark-submit citylake/drivers/sparkjob.py conform --resource R [--batch ID …]
    spark-submit citylake/drivers/sparkjob.py check --resource R [--batch ID …]
    spark-submit citylake/drivers/sparkjob.py curate --resource R
    spark-submit citylake/drivers/sparkjob.py maintain --resource R

The Airflow DAGs submit this file (connection ``spark_default``); it runs the chain's step
(:mod:`citylake.stages.chain`) for one resource and prints one line per result (for check, per batch:
its verdict and counts; a blocked batch is a data outcome, not a failure of the job). ``maintain`` is not
a step of the chain: the maintenance DAG compacts the resource's tables and expires old snapshots
(:mod:`citylake.stages.maintain`), and it prints one line per table.

Exit code: 0 done, 2 unknown resource, 75 (:data:`~citylake.core.lease.BUSY_EXIT`) another run holds
the step's lease: the message (``ResourceBusy: resource R is busy: …``) goes to stderr, where the
Airflow operator finds it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script by spark-submit from a source checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from citylake.core.lease import BUSY_EXIT, ResourceBusy
from citylake.core.registry import find_registration
from citylake.core.settings import Settings
from citylake.stages.chain import BASE_STEP, SPARK_STEPS, run_base, run_step

SCRIPT = Path(__file__).resolve()
MAINTAIN = "maintain"  # table maintenance: not a step of the chain


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run a Spark step of the chain, or table maintenance, for one resource")
    parser.add_argument("step", choices=sorted(SPARK_STEPS | {MAINTAIN, BASE_STEP}))
    parser.add_argument("--resource", required=True, help="registered resource name (for base: the library)")
    parser.add_argument("--batch", action="append",
                        help="batch id (repeatable; conform and check); default: all pending")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if args.step == BASE_STEP:
        return _base(settings, args.resource)
    try:
        reg = find_registration(settings.resources_dir, args.resource)
    except LookupError as exc:
        print(exc, file=sys.stderr)
        return 2
    from citylake.core.spark import get_session

    spark = get_session(settings, f"citylake-{args.step}-{args.resource}")
    if args.step == MAINTAIN:
        from citylake.stages.maintain import maintain_resource

        done = maintain_resource(spark, settings, reg)
        for kind in ("curated", "standardized"):
            print(" ".join(f"{k}={v}" for k, v in done[kind].items() if v not in (None, {}, [])))
        return 0
    try:
        result = run_step(args.step, settings, reg, spark=spark, batch_ids=args.batch)
    except ResourceBusy as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return BUSY_EXIT
    for r in result if isinstance(result, list) else [result]:
        print(" ".join(f"{k}={v}" for k, v in _fields(r).items() if v not in (None, {}, [])))
    return 0


def _base(settings: Settings, library: str) -> int:
    """Build one base library (registrations/base/<library>.yaml)."""
    from citylake.core.registry import load_base_libraries
    from citylake.core.spark import get_session

    libs = {lib.name: lib for lib in load_base_libraries(settings.resources_dir)}
    if library not in libs:
        print(f"unknown base library {library!r}; registered: {', '.join(sorted(libs))}", file=sys.stderr)
        return 2
    spark = get_session(settings, f"citylake-base-{library}")
    try:
        (done,) = run_base(spark, settings, [libs[library]])
    except ResourceBusy as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return BUSY_EXIT
    print(" ".join(f"{k}={v}" for k, v in _fields(done.result).items() if v not in (None, {}, [])))
    return 0


# What a check result's line shows: the verdict and counts of the quality marker; every rule's
# outcome is in the batch's result.json.
CHECK_FIELDS = ("batch_id", "success", "rows", "quarantined", "pass_rate", "summary_en")


def _fields(result) -> dict:
    if isinstance(result, dict):  # check's result.json content
        return {k: result.get(k) for k in CHECK_FIELDS}
    return result.as_dict()


if __name__ == "__main__":
    raise SystemExit(main())
