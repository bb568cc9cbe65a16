"""The quality gate between the standardized and curated zones (Great Expectations).

* :mod:`.suite` — ``build_suite(reg)`` (baseline suite derived from the registration),
  ``load_extras(reg, suite=None)`` (hand-written ``extras/<resource>.json``), ``suite_for(reg)``.
* :mod:`.runner` — ``check_batch(settings, reg, batch_id, quarantined=None, *, spark=None)``:
  validates one standardized batch on Spark and writes its quality results.
* :func:`check_batches` — the stage: every conformed, unchecked batch (or the ones named).

Importing this package imports neither Great Expectations nor pyspark.
"""

from __future__ import annotations

from citylake.core.ledger import Ledger
from citylake.core.registry import Registration
from citylake.core.settings import Settings


def check_batches(settings: Settings, reg: Registration, batch_ids: list[str] | None = None, *,
                  spark=None) -> list[dict]:
    """Run the gate on conformed batches (the pending ones by default) with ``spark`` (default: the
    running session, else a new one)."""
    from citylake.stages.check.runner import check_batch, session

    batch_ids = Ledger.read(settings, reg).pending("check") if batch_ids is None else batch_ids
    if not batch_ids:
        return []
    spark = spark or session(settings)
    return [check_batch(settings, reg, b, spark=spark) for b in batch_ids]
