"""The Spark steps as one spark-submit application per DAG-run stage.

    spark-submit citylake/drivers/sparkjob.py conform --resource R [--resource S …] [--batch ID …]
    spark-submit citylake/drivers/sparkjob.py check --resource R [--resource S …] [--batch ID …]
    spark-submit citylake/drivers/sparkjob.py curate --resource R [--resource S …]
    spark-submit citylake/drivers/sparkjob.py maintain --resource R [--resource S …]
    spark-submit citylake/drivers/sparkjob.py base --resource LIBRARY [--resource LIBRARY …]

The Airflow DAGs submit this file (connection ``spark_default``) once per stage of a DAG run: a
department's conform (check, curate) covers every resource of the department with work waiting, the
maintenance run every resource with a table, the base-library run every library. One application
pays the JVM, session and catalog start once instead of once per resource; the resources then run
one after another in it (:mod:`citylake.stages.chain`), each with its own lease.

It prints one line per result (for check, per batch: its verdict and counts; a blocked batch is a data
outcome, not a failure of the job). ``maintain`` is not a step of the chain: it compacts the resource's
tables and expires old snapshots (:mod:`citylake.stages.maintain`), one line per table.

A resource that fails does not stop the others. After all of them, the job prints one
:data:`FAILED_PREFIX` line per failed resource (``citylake-failed resource=R: <reason>``), last, where
the Airflow operator finds them in the submit's output and tells each resource's receipt its own
reason. Exit code: 0 done, 2 unknown resource (nothing runs), 75
(:data:`~citylake.core.lease.BUSY_EXIT`) every failure was another run holding the step's lease
(``ResourceBusy: resource R is busy: …`` on stderr), 1 any other failure.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

if __package__ in (None, ""):  # run as a script by spark-submit from a source checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from citylake.core.lease import BUSY_EXIT, ResourceBusy
from citylake.core.registry import find_registration, load_base_libraries
from citylake.core.settings import Settings
from citylake.stages.chain import BASE_STEP, SPARK_STEPS, run_base, run_step

SCRIPT = Path(__file__).resolve()
MAINTAIN = "maintain"  # table maintenance: not a step of the chain
FAILED_PREFIX = "citylake-failed"
FAILED_EXIT = 1


def failure_line(resource: str, reason: str) -> str:
    """The line naming one resource's failure (read back by :func:`parse_failures`)."""
    return f"{FAILED_PREFIX} resource={resource}: {' '.join(reason.split())}"


def parse_failures(text: str) -> dict[str, str]:
    """resource → reason, from the :func:`failure_line` lines in a submit's output."""
    out = {}
    for line in str(text).splitlines():
        _, sep, rest = line.partition(f"{FAILED_PREFIX} resource=")
        if sep:
            resource, _, reason = rest.partition(": ")
            out[resource.strip()] = reason.strip()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run a Spark step of the chain (or table maintenance, or base libraries) for resources, in one application")
    parser.add_argument("step", choices=sorted(SPARK_STEPS | {MAINTAIN, BASE_STEP}))
    parser.add_argument("--resource", required=True, action="append",
                        help="registered resource name, repeatable (for base: the library)")
    parser.add_argument("--batch", action="append",
                        help="batch id (repeatable; conform and check, with one resource); default: all pending")
    args = parser.parse_args(argv)
    resources = list(dict.fromkeys(args.resource))
    if args.batch and len(resources) > 1:
        parser.error("--batch names batches of one resource: give one --resource with it")
    settings = Settings.from_env()
    try:
        targets = _targets(settings, args.step, resources)
    except LookupError as exc:
        print(exc, file=sys.stderr)
        return 2
    from citylake.core.spark import get_session

    name = resources[0] if len(resources) == 1 else f"{len(resources)}-resources"
    spark = get_session(settings, f"citylake-{args.step}-{name}")
    failures: dict[str, BaseException] = {}
    for resource, target in targets.items():
        try:
            for line in _run(spark, settings, args.step, target, args.batch):
                print(line if len(targets) == 1 else f"{resource}: {line}", flush=True)
        except Exception as exc:  # one resource's failure must not stop the others
            failures[resource] = exc
            if isinstance(exc, ResourceBusy):
                print(f"{type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            else:
                traceback.print_exc()
    if not failures:
        return 0
    for resource, exc in failures.items():  # last: the operator reads them from the output's tail
        print(failure_line(resource, f"{type(exc).__name__}: {exc}"), file=sys.stderr, flush=True)
    return BUSY_EXIT if all(isinstance(e, ResourceBusy) for e in failures.values()) else FAILED_EXIT


def _targets(settings: Settings, step: str, resources: list[str]) -> dict:
    """name → registration (or base library), every name checked before any work starts."""
    if step == BASE_STEP:
        libs = {lib.name: lib for lib in load_base_libraries(settings.resources_dir)}
        unknown = [r for r in resources if r not in libs]
        if unknown:
            raise LookupError(f"unknown base library {', '.join(map(repr, unknown))}; registered: {', '.join(sorted(libs))}")
        return {r: libs[r] for r in resources}
    return {r: find_registration(settings.resources_dir, r) for r in resources}


def _run(spark, settings: Settings, step: str, target, batch_ids: list[str] | None) -> list[str]:
    """Run ``step`` for one resource (or library); its result lines."""
    if step == BASE_STEP:
        (done,) = run_base(spark, settings, [target])
        return [_line(done.result)]
    if step == MAINTAIN:
        from citylake.stages.maintain import maintain_resource

        done = maintain_resource(spark, settings, target)
        return [_kv(done[kind]) for kind in ("curated", "standardized")]
    result = run_step(step, settings, target, spark=spark, batch_ids=batch_ids)
    return [_line(r) for r in (result if isinstance(result, list) else [result])]


# What a check result's line shows: the verdict and counts of the quality marker; every rule's
# outcome is in the batch's result.json.
CHECK_FIELDS = ("batch_id", "success", "rows", "quarantined", "pass_rate", "summary_en")


def _line(result) -> str:
    """A stage result's line: check's result.json content (its :data:`CHECK_FIELDS`) or a result object."""
    return _kv({k: result.get(k) for k in CHECK_FIELDS} if isinstance(result, dict) else result.as_dict())


def _kv(fields: dict) -> str:
    """``key=value`` pairs of the fields that say something."""
    return " ".join(f"{k}={v}" for k, v in fields.items() if v not in (None, {}, []))


if __name__ == "__main__":
    raise SystemExit(main())
