"""Run the whole chain for a resource in one process (tests, `citylake run`, `citylake demo --direct`).

Airflow runs the same stage functions as separate tasks; this is the same
order without the scheduler: ingest → conform → check → curate → receipt.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .pipeline import check_batches, ingest_resource, write_receipts
from .registry import Registration
from .settings import Settings


@dataclass
class ResourceRun:
    resource: str
    ingested: list = field(default_factory=list)
    conformed: list = field(default_factory=list)
    checked: list = field(default_factory=list)
    curated: object = None
    receipts: list = field(default_factory=list)


def run_resource(spark, settings: Settings, reg: Registration) -> ResourceRun:
    from jobs.conform import conform_batches
    from jobs.curate import curate_resource

    run = ResourceRun(reg.resource)
    run.ingested = ingest_resource(settings, reg)
    run.conformed = conform_batches(spark, settings, reg)
    run.checked = check_batches(settings, reg)
    run.curated = curate_resource(spark, settings, reg)
    run.receipts = write_receipts(settings, reg)
    return run
