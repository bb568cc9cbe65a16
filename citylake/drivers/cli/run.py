"""`citylake run`: run the chain (or some of its steps) for one resource or a department, here.

Prints one line per step (resource, step, seconds, what it did) and ends with a summary of seconds,
rows and rows/s per step; ``--json`` prints one JSON object per resource instead, each step's full
result under its name. Progress (the step in work, its time so far, Spark's tasks) goes to stderr:
a live line on a terminal, plain lines otherwise (:mod:`citylake.drivers.cli.progress`).
Every step but ``detect`` holds the resource's lease for that step (:mod:`citylake.core.lease`):
when another run (another ``citylake run``, an Airflow task) holds it, the resource is reported busy
on stderr, by whom and since when, and the other resources still run; ``--wait`` waits for it instead.
After the resources' steps, the base libraries they feed are built (``base``: the step after the
chain, :func:`citylake.stages.chain.run_base`), with every step or ``--stage base`` alone.
Exit code: 0 done, 2 usage error (unknown resource or department, no registrations), 75 a resource
was busy (:data:`~citylake.core.lease.BUSY_EXIT`: try again later).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

from citylake.core.lease import BUSY_EXIT, ResourceBusy
from citylake.core.registry import load_base_libraries
from citylake.core.settings import Settings
from citylake.drivers.cli.common import UsageError, fail, registrations, unknown_names
from citylake.drivers.cli.progress import ChainProgress
from citylake.stages.chain import (
    ALL_STEPS,
    BASE_STEP,
    SPARK_STEPS,
    StepRun,
    libraries_fed_by,
    run_base,
    run_resource,
    steps,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--resource", metavar="RESOURCE",
                        help="one registered resource (`citylake registrations` lists them)")
    target.add_argument("--department", metavar="DEPARTMENT",
                        help="every resource of one department, e.g. scjg")
    parser.add_argument("--stage", choices=[*ALL_STEPS, BASE_STEP, "all"], default="all",
                        help="run only this step of the chain (default: all, in order, then the base "
                             "libraries the resources feed)")
    parser.add_argument("--json", action="store_true",
                        help="one JSON object per resource, with each step's full result")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress on stderr (the results and the summary still print)")
    parser.add_argument("--wait", type=float, default=0, metavar="SECONDS",
                        help=f"wait up to SECONDS for a busy resource instead of exiting {BUSY_EXIT}")


def jsonable(result):
    if isinstance(result, list):
        return [jsonable(r) for r in result]
    return result.as_dict() if hasattr(result, "as_dict") else result


def _get(item, name: str, default=None):
    # Step results are dataclasses (ingest, conform, curate, extract) or dicts (check, receipt).
    return item.get(name, default) if isinstance(item, dict) else getattr(item, name, default)


def _counts(items, name: str) -> str:
    return ", ".join(f"{n} {status}" for status, n in Counter(str(_get(i, name)) for i in items).items())


def describe(step: str, result) -> str:
    """What one step did, in a few words."""
    if step == "extract":
        rows = _get(result, "rows", 0)
        return f"{rows:,} new row(s) into raw batch {_get(result, 'batch_id')}" if rows else "no new rows"
    if step == "curate":
        status, rows = _get(result, "status"), _get(result, "rows", 0)
        if status == "empty":
            return "nothing curated yet"
        if status in ("merged", "rebuilt"):
            batches = _get(result, "batches", [])
            ended = _get(result, "ended", 0)
            return (f"{status} {len(batches)} batch(es), {_get(result, 'added_records', 0):,} row(s) written"
                    + (f", {ended:,} key(s) ended by a full snapshot" if ended else "")
                    + f": {rows:,} curated rows, snapshot {_get(result, 'version')}")
        return f"{status}: {rows:,} curated rows"
    if step == BASE_STEP:
        status = _get(result, "status")
        if status == "empty":
            return "no source curated yet"
        return (f"{status}: {_get(result, 'rows', 0):,} rows, {_get(result, 'conflicts', 0):,} conflict(s), "
                f"from {', '.join(_get(result, 'sources', {}) or {})}")
    if not isinstance(result, list):  # not a stage result this knows
        return str(result)
    n = len(result)
    if step == "detect":
        return f"{n} file(s) waiting in landing" if n else "no new files in landing"
    if step == "ingest":
        return f"{n} file(s): {_counts(result, 'status')}" if n else "nothing to ingest"
    if step == "conform":
        if not n:
            return "no batches to conform"
        rows = {k: sum(_get(r, k, 0) for r in result) for k in ("received", "standardized", "quarantined")}
        return (f"{n} batch(es) ({_counts(result, 'status')}): {rows['received']:,} rows received, "
                f"{rows['standardized']:,} standardized, {rows['quarantined']:,} quarantined")
    if step == "check":
        if not n:
            return "no batches to check"
        passed = sum(1 for r in result if _get(r, "success"))
        return f"{n} batch(es) checked: {passed} passed, {n - passed} blocked"
    if step == "receipt":
        return f"{n} receipt(s) written: {_counts(result, 'status')}" if n else "no receipts to write"
    return f"{n} item(s)"


def step_line(resource: str, s: StepRun) -> str:
    return f"{resource}  {s.step:8} {s.seconds:7.1f} s  {describe(s.step, s.result)}"


def run(args) -> int:
    try:
        settings = Settings.from_env()
        regs = registrations(settings.resources_dir)
        libs = load_base_libraries(settings.resources_dir, regs)
    except (ValueError, UsageError) as exc:  # ValueError: a RegistrationError or a bad CITYLAKE_* value
        return fail("run", exc)
    if args.resource is not None:
        chosen = [r for r in regs if r.resource == args.resource]
        if not chosen:
            return fail("run", unknown_names("resource", [args.resource], (r.resource for r in regs)))
    else:
        chosen = [r for r in regs if r.department == args.department]
        if not chosen:
            return fail("run", unknown_names("department", [args.department], (r.department for r in regs)))
    only = None if args.stage == "all" else (args.stage,)
    bases = libraries_fed_by(libs, chosen) if only is None or BASE_STEP in only else []
    for reg in chosen:  # say so before any work starts, not as a traceback halfway
        if reg.source.kind == "sql" and (only is None or "extract" in only) \
                and not settings.connection_uri(reg.source.conn_id):
            return fail("run", f"{reg.resource} is extracted from connection {reg.source.conn_id!r}: "
                               f"set AIRFLOW_CONN_{reg.source.conn_id.upper()} to its URI")
    spark = None
    if bases or any(step in SPARK_STEPS and (only is None or step in only) for reg in chosen for step in steps(reg)):
        from citylake.core.spark import get_session

        spark = get_session(settings, "citylake-run")
    busy = False
    # Progress goes to stderr (a live line on a terminal, plain lines otherwise); results to stdout.
    with ChainProgress(spark, quiet=args.quiet) as progress:
        for reg in chosen:
            try:
                run_ = run_resource(spark, settings, reg, only=only, on_step=progress.started,
                                    on_done=progress.finished, wait=args.wait)
            except ResourceBusy as exc:  # another run has it: not a failure of this one, try later
                busy = True
                print(f"citylake run: {exc}", file=sys.stderr, flush=True)
                continue
            if args.json:
                out = {"resource": reg.resource, **{s.step: jsonable(s.result) for s in run_.steps}}
                print(json.dumps(out, ensure_ascii=False, default=str))
            else:
                for s in run_.steps:
                    print(step_line(reg.resource, s), flush=True)
                if not run_.steps and args.stage != BASE_STEP:  # --stage extract on a file resource, …
                    print(f"{reg.resource}  step {args.stage!r} does not apply to a {reg.source.kind} source")
        try:
            built = run_base(spark, settings, bases, on_step=progress.started, on_done=progress.finished,
                             wait=args.wait)
        except ResourceBusy as exc:
            busy, built = True, []
            print(f"citylake run: {exc}", file=sys.stderr, flush=True)
        for lib, s in zip(bases, built):
            if args.json:
                print(json.dumps({"library": lib.name, BASE_STEP: jsonable(s.result)}, ensure_ascii=False,
                                 default=str))
            else:
                print(step_line(lib.name, s), flush=True)
    if not args.json and progress.done:
        print()
        print(progress.summary())
    return BUSY_EXIT if busy else 0
