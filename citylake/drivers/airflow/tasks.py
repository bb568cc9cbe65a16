"""What each DAG task does, as plain functions of (settings, registration) — no Airflow here.

Each task runs one step of the chain (:mod:`citylake.stages.chain`) and reads what waits from the
batch ledger (:mod:`citylake.core.ledger`).

The DAG factory wraps these in tasks. Every function is idempotent and works on
"what is ready": a stage with nothing to do says so (the task is then skipped),
so a department DAG can run as often as its most frequent resource needs.

A stage that fails raises :class:`StageError`, whose message names the stage,
the resource, the batch(es) and the reason; the same facts travel to the receipt
task as a :class:`StageFailure` so the liaison's receipt says what failed and why. A step whose
lease another run holds (:class:`~citylake.core.lease.ResourceBusy`) fails the same way, saying who
holds it since when; the task's retries (with their delay) are then the wait.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass, field

from citylake.core.ledger import Ledger
from citylake.core.registry import Registration, load_registration
from citylake.core.settings import Settings
from citylake.stages.chain import ALL_STEPS, BASE_STEP, run_step

log = logging.getLogger(__name__)

# Stage names as used in task ids and failure notes: the chain's steps.
STAGES = ALL_STEPS
# Table maintenance (the maintenance DAG): not a step of the chain, works on tables, not batches.
MAINTAIN = "maintain"


@dataclass
class StageFailure:
    stage: str
    resource: str
    batches: list[str] = field(default_factory=list)
    reason: str = ""

    @property
    def message(self) -> str:
        if self.batches:
            where = f" (batch {', '.join(self.batches)})"
        else:  # maintenance and the base libraries work on tables, whatever batches there are
            where = "" if self.stage in (MAINTAIN, BASE_STEP) else " (no batch yet)"
        return f"{self.stage} failed for resource {self.resource}{where}: {self.reason}"

    def as_dict(self) -> dict:
        return {**asdict(self), "message": self.message}

    @classmethod
    def from_dict(cls, data: dict) -> StageFailure:
        return cls(data["stage"], data["resource"], list(data.get("batches") or []), data.get("reason", ""))


class StageError(RuntimeError):
    """A stage failed; ``str(exc)`` names stage, resource, batch(es) and reason."""

    def __init__(self, failure: StageFailure):
        self.failure = failure
        super().__init__(failure.message)


def describe_exception(exc: BaseException) -> str:
    text = str(exc).strip() or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text}" if not isinstance(exc, StageError) else text


# ---- registrations --------------------------------------------------------------------------------
def load_reg(settings: Settings, department: str, resource: str) -> Registration:
    """The registration as it is *now* (tasks re-read it at run time)."""
    return load_registration(settings.resources_dir / department / f"{resource}.yaml")


# ---- what is ready ----------------------------------------------------------------------------------
def pending_for(settings: Settings, reg: Registration, stage: str) -> list[str]:
    return Ledger.read(settings, reg).pending(stage)


def maintenance_tables(settings: Settings, reg: Registration) -> list[str]:
    """The resource's tables that exist: what maintenance works on. There is always work once a
    table exists (compaction and expiry decide for themselves); none yet, the task is skipped."""
    from citylake.core import tables

    return [t.ident for t in (tables.curated_table(reg), tables.standardized_table(reg))
            if tables.load_table(settings, t) is not None]


def work_summary(settings: Settings, reg: Registration) -> dict:
    """New landing files and the batches waiting at each stage."""
    ledger = Ledger.read(settings, reg)
    return {
        "landing": run_step("detect", settings, reg),
        "pending": {stage: ledger.pending(stage) for stage in ("conform", "check", "curate", "receipt")},
    }


def has_work(summary: dict) -> bool:
    return bool(summary["landing"]) or any(summary["pending"].values())


# ---- stages ---------------------------------------------------------------------------------------
def run_extract(settings: Settings, reg: Registration, conn_uri) -> dict:
    try:
        result = run_step("extract", settings, reg, conn_uri=conn_uri)
    except Exception as exc:
        raise StageError(StageFailure("extract", reg.resource, [], describe_exception(exc))) from exc
    return result.as_dict()


def run_ingest(settings: Settings, reg: Registration) -> dict:
    """Ingest every landing file; report what became a batch, what was already ingested, what was refused."""
    try:
        outcomes = run_step("ingest", settings, reg)
    except Exception as exc:
        files = [p.rsplit("/", 1)[-1] for p in _safe(lambda: run_step("detect", settings, reg), [])]
        reason = describe_exception(exc) + (f" (landing files: {', '.join(files)})" if files else "")
        raise StageError(StageFailure("ingest", reg.resource, [], reason)) from exc
    summary: dict = {"ingested": [], "reprocessed": [], "duplicate": [], "rejected": [], "skipped": []}
    for o in outcomes:
        name = o.landing_path.rsplit("/", 1)[-1]
        entry = {"file": name, "batch_id": o.batch_id, "reason": o.reason, "reason_zh": o.reason_zh}
        if o.status == "duplicate":
            log.warning("%s: %s was already ingested as batch %s (%s); not ingested again",
                        reg.resource, name, o.batch_id, o.duplicate_of)
            entry["duplicate_of"] = o.duplicate_of
        elif o.status == "rejected":
            log.warning("%s: %s refused at ingest (batch %s): %s", reg.resource, name, o.batch_id, o.reason_zh)
        elif o.status == "ingested":
            log.info("%s: %s ingested as batch %s", reg.resource, name, o.batch_id)
        else:
            log.info("%s: %s %s: %s", reg.resource, name, o.status, o.reason_zh)
        summary.setdefault(o.status, []).append(entry)
    summary["batches"] = sorted({o.batch_id for o in outcomes
                                 if o.batch_id and o.status in ("ingested", "reprocessed", "rejected")})
    return summary


def receipt_batches(settings: Settings, reg: Registration, *touched: list[str] | None) -> list[str]:
    """Batches whose receipt is due: never receipted, or touched in this run."""
    out = set(pending_for(settings, reg, "receipt"))
    for ids in touched:
        out.update(i for i in ids or [] if i)
    return sorted(out)


def run_receipts(settings: Settings, reg: Registration, batch_ids: list[str],
                 failures: list[StageFailure]) -> dict:
    note = "；".join(f.message for f in failures) or None
    failed_batches = sorted({b for f in failures for b in f.batches})
    batch_ids = sorted(set(batch_ids) | set(failed_batches))
    try:
        receipts = run_step("receipt", settings, reg, batch_ids=batch_ids, failure=note)
    except Exception as exc:
        raise StageError(StageFailure("receipt", reg.resource, batch_ids, describe_exception(exc))) from exc
    return {
        "written": [r.get("batch_id") for r in receipts],
        "status": {r.get("batch_id"): r.get("status") for r in receipts},
        "failure": note,
    }


# ---- Spark failures -------------------------------------------------------------------------------
# ``…Busy``: sparkjob.py's line when another run holds the step's lease (ResourceBusy).
_EXC_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?([A-Za-z_]\w*(?:Error|Exception|Busy)):\s*(.+)$")


def spark_failure_reason(text: str) -> str:
    """The useful line of a failed spark-submit: the last Python/Java exception line (or the job's
    busy line), else the last line."""
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    for line in reversed(lines):
        line = re.sub(r"^\[.*?\]\s*", "", line)  # a log prefix, if any
        m = _EXC_LINE.match(line)
        if m:
            return f"{m.group(1)}: {m.group(2)}"
    for line in reversed(lines):
        if not line.startswith(("Cannot execute:", "Last spark-submit output")):
            return line
    return lines[-1] if lines else "spark-submit failed"


def _safe(fn, default):
    try:
        return fn()
    except Exception:
        return default
