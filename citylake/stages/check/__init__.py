"""The quality gate between the standardized and curated zones (Great Expectations).

* :mod:`.suite` — ``build_suite(reg)`` (baseline suite derived from the registration),
  ``load_extras(reg, suite=None)`` (hand-written ``extras/<resource>.json``), ``suite_for(reg)``.
* :mod:`.runner` — ``check_batch(settings, reg, batch_id, quarantined=None)``: validates one
  standardized batch and writes its quality results.
* :func:`check_batches` — the stage: every conformed, unchecked batch (or the ones named).

Importing this package does not import Great Expectations.
"""

from __future__ import annotations

from citylake.core.ledger import Ledger
from citylake.core.registry import Registration
from citylake.core.settings import Settings


def check_batches(settings: Settings, reg: Registration, batch_ids: list[str] | None = None) -> list[dict]:
    """Run the gate on conformed batches (the pending ones by default)."""
    from citylake.stages.check.runner import check_batch

    batch_ids = Ledger.read(settings, reg).pending("check") if batch_ids is None else batch_ids
    return [check_batch(settings, reg, b) for b in batch_ids]
