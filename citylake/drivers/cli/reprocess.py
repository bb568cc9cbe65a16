"""`citylake reprocess`: run refused, failed or blocked batches again from raw, once their cause is fixed.

After a registration was corrected (a sheet name, a file pattern, a code list) or a quality gate
relaxed, ``citylake reprocess --resource R --blocked`` (or ``--refused``, ``--failed``, ``--batch
ID``) reopens those batches from their raw bytes and runs them through conform, check, curate and
receipt again; each batch's manifest records the event (when, by whom, what it was and why) and the
liaison gets a new receipt that says it was reprocessed (the earlier one stays under
``receipts/earlier/``). ``citylake status --resource R --history`` shows every batch's history.

Exit code: 0 done (also when nothing matched), 2 usage error (unknown resource or batch, a batch that
is not refused, failed or blocked), 75 the resource is busy (another run holds its lease).
"""

from __future__ import annotations

import argparse
import json
import sys

from citylake.core.lease import BUSY_EXIT, ResourceBusy
from citylake.core.settings import Settings
from citylake.drivers.cli.common import UsageError, fail, registrations, unknown_names
from citylake.drivers.cli.progress import ChainProgress
from citylake.drivers.cli.run import jsonable, step_line

STATES = {"refused": "rejected", "failed": "failed", "blocked": "blocked"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--resource", metavar="RESOURCE", required=True,
                        help="one registered resource (`citylake registrations` lists them)")
    which = parser.add_argument_group("which batches (at least one)")
    which.add_argument("--batch", metavar="ID", action="append", default=[],
                       help="this batch (repeatable; `citylake status --resource R` lists them)")
    which.add_argument("--refused", action="store_true", help="every batch refused at ingest (name, type, size)")
    which.add_argument("--failed", action="store_true", help="every batch whose file could not be decoded")
    which.add_argument("--blocked", action="store_true", help="every batch blocked by the quality gate")
    parser.add_argument("--json", action="store_true", help="one JSON object: the reopened batches and each step")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument("--wait", type=float, default=0, metavar="SECONDS",
                        help=f"wait up to SECONDS for a busy resource instead of exiting {BUSY_EXIT}")


def _reopened_line(r) -> str:
    after = {"ingested": "conform again", "conformed": "check again", "rejected": "still refused"}[r.now]
    why = f": {r.reason_zh or r.reason}" if r.now == "rejected" else ""
    return f"{r.batch_id}  was {r.was} → {after}{why}"


def run(args) -> int:
    states = tuple(state for flag, state in STATES.items() if getattr(args, flag))
    if not args.batch and not states:
        return fail("reprocess", "say which batches: --batch ID, --refused, --failed or --blocked")
    try:
        settings = Settings.from_env()
        regs = registrations(settings.resources_dir)
    except (ValueError, UsageError) as exc:
        return fail("reprocess", exc)
    reg = next((r for r in regs if r.resource == args.resource), None)
    if reg is None:
        return fail("reprocess", unknown_names("resource", [args.resource], (r.resource for r in regs)))

    from citylake.core.spark import get_session
    from citylake.stages.chain import reprocess_resource

    spark = get_session(settings, "citylake-reprocess")
    try:
        with ChainProgress(spark, quiet=args.quiet) as progress:
            reopened, run_ = reprocess_resource(spark, settings, reg, batch_ids=args.batch or None, states=states,
                                                wait=args.wait, on_step=progress.started, on_done=progress.finished)
    except (LookupError, ValueError) as exc:  # an unknown batch, or one that is not stuck
        return fail("reprocess", exc.args[0] if exc.args else exc)
    except ResourceBusy as exc:
        print(f"citylake reprocess: {exc}", file=sys.stderr, flush=True)
        return BUSY_EXIT
    if args.json:
        print(json.dumps({"resource": reg.resource, "reopened": [r.as_dict() for r in reopened],
                          **{s.step: jsonable(s.result) for s in run_.steps}}, ensure_ascii=False, default=str))
        return 0
    if not reopened:
        print(f"{reg.resource}: no {' or '.join(states)} batch to reprocess")
        return 0
    for r in reopened:
        print(f"{reg.resource}  {_reopened_line(r)}")
    for s in run_.steps:
        print(step_line(reg.resource, s))
    return 0
