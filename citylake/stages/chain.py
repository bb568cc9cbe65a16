"""The chain: the one definition of the order a resource's data goes through the stages.

    detect | extract → ingest → conform → check → curate → receipt
    then, after the resources' steps: base (the base libraries they feed)

``citylake run``, the demo, the tests and the Airflow DAG factory all take the order from here;
the DAG factory builds one task per step, in this order (a Spark step's task is shared by the
department's resources: one Spark application per stage of a DAG run). A file-drop resource starts with
``detect`` (what waits in landing and at each stage); a SQL source starts with ``extract`` (rows
past the watermark into a raw batch). The Spark steps (:data:`SPARK_STEPS`: conform, check and
curate) need a Spark session; the rest are plain Python.

Every step but ``detect`` (which only reads) runs holding the resource's lease for that step
(:mod:`citylake.core.lease`), whichever driver calls :func:`run_step`: a second run of the same
step waits up to ``wait`` seconds, then raises :class:`~citylake.core.lease.ResourceBusy`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from citylake.core.lease import hold
from citylake.core.ledger import Ledger
from citylake.core.registry import BaseLibrary, Registration
from citylake.core.settings import Settings

FIRST_STEP = {"file": "detect", "sql": "extract"}
AFTER_FIRST = ("ingest", "conform", "check", "curate", "receipt")
SPARK_STEPS = frozenset({"conform", "check", "curate"})
ALL_STEPS = (*FIRST_STEP.values(), *AFTER_FIRST)

# What each step runs (module, function): the DAG docs and the README point here.
CODE = {
    "detect": ("citylake.stages.ingest", "detect_new_files"),
    "extract": ("citylake.stages.extract", "extract"),
    "ingest": ("citylake.stages.ingest", "ingest_resource"),
    "conform": ("citylake.stages.conform", "conform_batches"),
    "check": ("citylake.stages.check", "check_batches"),
    "curate": ("citylake.stages.curate", "curate_resource"),
    "receipt": ("citylake.stages.receipts", "write_receipts"),
}


# After every resource's steps: the base libraries (基础库) the resources feed, rebuilt from their
# curated tables (citylake.stages.base), each holding the lease of (library, "base").
BASE_STEP = "base"
BASE_CODE = ("citylake.stages.base", "build_library")


def steps(reg: Registration) -> tuple[str, ...]:
    """The steps of ``reg``, in order."""
    return (FIRST_STEP[reg.source.kind], *AFTER_FIRST)


def code_path(step: str) -> str:
    """The source file of a step, relative to the repository (for docs)."""
    module, _ = CODE[step]
    return module.replace(".", "/") + ("/__init__.py" if module.endswith(".check") else ".py")


def run_step(step: str, settings: Settings, reg: Registration, *, spark=None, conn_uri: str | None = None,
             batch_ids: list[str] | None = None, failure: str | None = None, wait: float = 0):
    """Run one step for one resource and return what the stage function returned.

    ``failure``: the orchestrator's note of a failed step, for the receipts. ``wait``: seconds to wait
    for the step's lease when another run holds it (then :class:`ResourceBusy`)."""
    if step not in CODE:
        raise ValueError(f"unknown step {step!r} (one of {', '.join(ALL_STEPS)})")
    if step in SPARK_STEPS and spark is None:
        raise ValueError(f"step {step!r} needs a Spark session")
    if step == "detect":
        from citylake.stages.ingest import detect_new_files

        return detect_new_files(settings, reg)
    with hold(settings, reg.resource, step, wait=wait):
        return _run_held(step, settings, reg, spark, conn_uri, batch_ids, failure)


def _run_held(step: str, settings: Settings, reg: Registration, spark, conn_uri: str | None,
              batch_ids: list[str] | None, failure: str | None):
    if step == "extract":
        from citylake.stages.extract import extract

        uri = conn_uri or settings.connection_uri(reg.source.conn_id)
        if not uri:
            raise LookupError(f"{reg.resource}: no connection {reg.source.conn_id!r} "
                              f"(set AIRFLOW_CONN_{reg.source.conn_id.upper()})")
        return extract(settings, reg, uri)
    if step == "ingest":
        from citylake.stages.ingest import ingest_resource

        return ingest_resource(settings, reg)
    if step == "conform":
        from citylake.stages.conform import conform_batches

        return conform_batches(spark, settings, reg, batch_ids)
    if step == "check":
        from citylake.stages.check import check_batches

        return check_batches(settings, reg, batch_ids, spark=spark)
    if step == "curate":
        from citylake.stages.curate import curate_resource

        return curate_resource(spark, settings, reg)
    from citylake.stages.receipts import write_receipts  # the last step, receipt

    return write_receipts(settings, reg, batch_ids, failure=failure)


def pending(settings: Settings, reg: Registration, step: str) -> list[str]:
    """Batches waiting for ``step`` (conform | check | curate | receipt)."""
    return Ledger.read(settings, reg).pending(step)


@dataclass
class StepRun:
    step: str
    seconds: float
    result: object


@dataclass
class ResourceRun:
    resource: str
    steps: list[StepRun] = field(default_factory=list)

    def result(self, step: str):
        for s in self.steps:
            if s.step == step:
                return s.result
        return None


def run_resource(spark, settings: Settings, reg: Registration, *, only: tuple[str, ...] | None = None,
                 conn_uri: str | None = None, on_step: Callable[[str, str], None] | None = None,
                 on_done: Callable[[str, StepRun], None] | None = None, wait: float = 0) -> ResourceRun:
    """Run the chain (or the steps in ``only``) for one resource, in order, in this process.

    ``on_step(resource, step)`` is called before each step, ``on_done(resource, StepRun)`` after it.
    A step whose lease another run holds for more than ``wait`` seconds raises
    :class:`~citylake.core.lease.ResourceBusy` (the steps before it are done).
    """
    run = ResourceRun(reg.resource)
    for step in steps(reg):
        if only is not None and step not in only:
            continue
        if on_step:
            on_step(reg.resource, step)
        started = time.monotonic()
        result = run_step(step, settings, reg, spark=spark, conn_uri=conn_uri, wait=wait)
        run.steps.append(StepRun(step, time.monotonic() - started, result))
        if on_done:
            on_done(reg.resource, run.steps[-1])
    return run


def libraries_fed_by(libs: list[BaseLibrary], regs: list[Registration]) -> list[BaseLibrary]:
    """The base libraries with a source among ``regs``."""
    names = {r.resource for r in regs}
    return [lib for lib in libs if any(s.reg.resource in names for s in lib.sources)]


def run_base(spark, settings: Settings, libs: list[BaseLibrary], *, wait: float = 0,
             on_step: Callable[[str, str], None] | None = None,
             on_done: Callable[[str, StepRun], None] | None = None) -> list[StepRun]:
    """Build each base library in ``libs`` (the step after the resources'), holding its lease."""
    from citylake.stages.base import build_library

    if libs and spark is None:
        raise ValueError(f"step {BASE_STEP!r} needs a Spark session")
    out = []
    for lib in libs:
        if on_step:
            on_step(lib.name, BASE_STEP)
        started = time.monotonic()
        with hold(settings, lib.name, BASE_STEP, wait=wait):
            result = build_library(spark, settings, lib)
        out.append(StepRun(BASE_STEP, time.monotonic() - started, result))
        if on_done:
            on_done(lib.name, out[-1])
    return out


# The steps a reopened batch goes through again: conform takes a rejected or failed one, check a
# blocked one, and receipt tells the liaison.
AFTER_REOPEN = ("conform", "check", "curate", "receipt")


def reprocess_resource(spark, settings: Settings, reg: Registration, *, batch_ids: list[str] | None = None,
                       states: tuple[str, ...] = (), wait: float = 0,
                       on_step: Callable[[str, str], None] | None = None,
                       on_done: Callable[[str, StepRun], None] | None = None):
    """Reopen refused, failed or blocked batches (:func:`citylake.stages.ingest.reprocess_batches`)
    and run them through the chain again. Reopening holds the resource's ``ingest`` lease (it
    changes what waits for conform, as ingest does). Returns (the reopened batches, the run)."""
    from citylake.stages.ingest import reprocess_batches

    with hold(settings, reg.resource, "ingest", wait=wait):
        reopened = reprocess_batches(settings, reg, batch_ids=batch_ids, states=states)
    if not reopened:
        return reopened, ResourceRun(reg.resource)
    return reopened, run_resource(spark, settings, reg, only=AFTER_REOPEN, on_step=on_step, on_done=on_done,
                                  wait=wait)
