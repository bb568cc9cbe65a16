"""Quality pages: each resource's check results across its batches, read from the quality zone.

:func:`quality_history` reads the newest ``QUALITY_BATCHES`` checked batches of a resource (each
batch's ``result.json``, :mod:`citylake.stages.check.runner`) and turns them into what
``site/q/<resource>.html`` shows:

* one line per batch: its file, when it was received and checked, rows accepted and quarantined,
  the pass rate, and its verdict; a blocked batch says why (each blocking failure with what was
  observed, the quarantine by reason, and the first examples its receipt lists);
* one line per expectation: its history across those batches (passed, failed, not evaluated) and
  the values that failed it most recently.

Every value a page shows goes through :func:`citylake.core.masking.masked_observation` (samples of a
personal column masked by its rule, values withheld where no one rule applies) or comes from the
receipt, which masks its examples the same way. The pages belong to the internal directory only.
"""

from __future__ import annotations

import json

from citylake.core import zones
from citylake.core.lake import Lake
from citylake.core.ledger import Ledger
from citylake.core.masking import masked_observation
from citylake.core.registry import Registration

QUALITY_BATCHES = 20  # newest checked batches a page covers
REASON_EXAMPLES = 3  # receipt examples per quarantine reason on a blocked batch


def _key(entry: dict) -> str:
    """One expectation across batches: its type, column and wording. Not its configuration, which
    may name the batch itself (``_batch_id`` in the batch's own id)."""
    return json.dumps([entry.get("expectation_type"), entry.get("column"),
                       entry.get("description_zh") or entry.get("kwargs")], ensure_ascii=False, default=str)


def _reasons(lake: Lake, reg: Registration, batch_id: str, counts: dict[str, int]) -> list[dict]:
    """The batch's quarantine by reason, largest first, with the receipt's (masked) examples."""
    receipt = lake.read_json_or(zones.receipt_base(reg.department, reg.resource, batch_id) + ".json") or {}
    examples = {r.get("reason"): r.get("examples") or [] for r in receipt.get("quarantined_by_reason") or []}
    return [{"reason": text, "count": n, "examples": examples.get(text, [])[:REASON_EXAMPLES]}
            for text, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def quality_history(lake: Lake, reg: Registration, limit: int = QUALITY_BATCHES) -> dict:
    """``{"resource", "batches": [...], "expectations": [...]}`` for the newest ``limit`` checked
    batches, oldest first (see the module docstring). A batch whose result file is missing (the
    marker outlived it) is listed with the marker's verdict and no expectations."""
    ledger = Ledger.read(lake, reg)
    checked = [b for b in ledger.batches if b.checked][-limit:]
    batches: list[dict] = []
    expectations: dict[str, dict] = {}
    for b in checked:
        result = lake.read_json_or(zones.quality_result_path(reg.resource, b.batch_id)) or {}
        marker = b.quality or {}
        summary = result or marker
        blocked = not summary.get("success")
        batches.append({
            "batch_id": b.batch_id,
            "file": b.manifest.get("source_name"),
            "received_at": b.received_at,
            "checked_at": summary.get("checked_at"),
            "status": b.status,
            "success": not blocked,
            "rows": b.rows_accepted,
            "quarantined": b.rows_quarantined,
            "quarantine_rate": summary.get("quarantine_rate"),
            "max_quarantine_rate": summary.get("max_quarantine_rate"),
            "pass_rate": summary.get("pass_rate"),
            "evaluated": summary.get("evaluated"),
            "successful": summary.get("successful"),
            "summary_zh": summary.get("summary_zh"),
            "summary_en": summary.get("summary_en"),
            "blocking": [masked_observation(reg, f) for f in summary.get("blocking_failures") or []],
            "reasons": _reasons(lake, reg, b.batch_id, b.quarantine_reasons) if blocked else [],
        })
        for entry in result.get("results") or []:
            key = _key(entry)
            e = expectations.get(key)
            if e is None:
                e = expectations[key] = {
                    "expectation_type": entry.get("expectation_type"),
                    "column": entry.get("column"),
                    "blocking": bool(entry.get("blocking")),
                    "source": entry.get("source"),
                    "history": {},
                    "failed": 0,
                    "last_failure": None,
                }
            # the newest wording and title win (a registration's title may have changed)
            shown = masked_observation(reg, entry)
            e.update(description_zh=entry.get("description_zh"), description_en=entry.get("description_en"),
                     column_title=shown.get("column_title"))
            e["history"][b.batch_id] = {"success": bool(entry.get("success")),
                                        "unexpected_count": entry.get("unexpected_count"),
                                        "unexpected_percent": entry.get("unexpected_percent")}
            if not entry.get("success"):
                e["failed"] += 1
                e["last_failure"] = {"batch_id": b.batch_id, "observed": shown.get("observed") or {}}
    # blocking first, then the ones that failed most, then by column: what needs a look on top
    ordered = sorted(expectations.values(),
                     key=lambda e: (not e["blocking"], -e["failed"], e["column"] or "", e["expectation_type"] or ""))
    return {"resource": reg.resource, "batches": batches, "expectations": ordered}
