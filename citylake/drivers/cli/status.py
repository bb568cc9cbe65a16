"""`citylake status`: where each resource's batches stand, from the batch ledger.

For each resource: freshness against its 更新周期, what waits at each step, and every batch with
its state (rejected, failed, ingested, conformed, blocked and why, passed, curated), rows, quality
and whether the liaison has a receipt. Times are Beijing time. ``--json`` gives the same facts.
Exit code: 0, or 2 for an unknown resource or department.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from citylake.core.lake import Lake
from citylake.core.ledger import BatchState, Ledger
from citylake.core.reasons import observed_text
from citylake.core.registry import Registration
from citylake.core.settings import Settings
from citylake.drivers.cli.common import UsageError, fail, registrations, unknown_names
from citylake.stages.freshness import assess

BEIJING = ZoneInfo("Asia/Shanghai")
WAITING = ("conform", "check", "curate", "receipt")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--resource", metavar="RESOURCE", help="only this resource (default: every resource)")
    target.add_argument("--department", metavar="DEPARTMENT", help="only this department's resources")
    parser.add_argument("--json", action="store_true", help="print the facts as JSON, one object per resource")
    parser.add_argument("--history", action="store_true",
                        help="under each batch, what happened to it: received, refused, reprocessed, conformed, "
                             "checked, curated")


def _local(text: str | None) -> str | None:
    if not text:
        return None
    value = datetime.fromisoformat(text)
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    return value.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def why(b: BatchState) -> str | None:
    """Why a batch stopped, in the liaison's words where we have them."""
    if b.status == "rejected":
        return b.manifest.get("reason_zh") or b.manifest.get("reason")
    if b.status == "failed":
        return b.failure.get("message_zh") or b.failure.get("code")
    if b.status == "blocked":
        failures = b.quality.get("blocking_failures") or []
        return "；".join(_failure(f) if isinstance(f, dict) else str(f) for f in failures) or b.quality.get("summary_zh")
    return None


def _failure(f: dict) -> str:
    """A blocking rule and what it found: '隔离率不超过50%（实际 63.6%，隔离 1,272 / 2,000 行）'."""
    found = observed_text(f.get("observed"))[0]
    text = f.get("description_zh") or f.get("expectation") or ""
    return f"{text}（{found}）" if found else text


def batch_facts(b: BatchState) -> dict:
    quality = b.quality if b.checked else None
    return {
        "batch_id": b.batch_id,
        "file": b.manifest.get("source_name"),
        "received_at": _local(b.received_at),
        "status": b.status,
        "accepted": b.rows_accepted if b.conformed else None,
        "quarantined": b.rows_quarantined if b.conformed else None,
        "quality_pass_rate": quality.get("pass_rate") if quality else None,
        "receipted": b.receipted,
        "why": why(b),
        "history": [{**e, "at": _local(e.get("at"))} for e in b.history],
    }


def resource_facts(reg: Registration, ledger: Ledger, now: datetime) -> dict:
    updated = (ledger.curated or {}).get("updated_at")
    fresh = assess(reg.update_cycle, datetime.fromisoformat(updated) if updated else None, now)
    return {
        "department": reg.department,
        "resource": reg.resource,
        "name": reg.name,
        "update_cycle": reg.update_cycle,
        "freshness": fresh["status"],
        "freshness_zh": fresh["status_zh"],
        "last_updated": _local(updated),
        "curated_rows": (ledger.curated or {}).get("rows", 0),
        "pending": {stage: ledger.pending(stage) for stage in WAITING},
        "batches": [batch_facts(b) for b in ledger.batches],
    }


def _event(e: dict) -> str:
    details = ", ".join(f"{k} {v}" for k, v in e.items() if k not in ("at", "event") and v not in (None, ""))
    return f"      {e['at'] or '':19}  {e['event']}" + (f"  ({details})" if details else "")


def render(facts: dict, history: bool = False) -> str:
    lines = [
        f"{facts['department']}/{facts['resource']} {facts['name']}  ·  {facts['update_cycle']}  ·  "
        f"{facts['freshness_zh']} ({facts['freshness']})"
        + (f", last update {facts['last_updated']}, {facts['curated_rows']:,} curated rows"
           if facts["last_updated"] else ""),
    ]
    waiting = ", ".join(f"{stage} {len(ids)}" for stage, ids in facts["pending"].items() if ids)
    lines.append(f"  waiting: {waiting or 'nothing'}")
    for b in facts["batches"]:
        rows = f"{b['accepted']:,} accepted / {b['quarantined']:,} quarantined" if b["accepted"] is not None else "—"
        rate = f"{b['quality_pass_rate'] * 100:.0f}% rules" if b["quality_pass_rate"] is not None else ""
        receipt = "receipted" if b["receipted"] else "no receipt yet"
        lines.append(f"  {b['batch_id']}  {b['received_at'] or '':19}  {b['status']:9}  {rows}  {rate}  "
                     f"{receipt}  {b['file'] or ''}".rstrip())
        if b["why"]:
            lines.append(f"      why: {b['why']}")
        if history:
            lines.extend(_event(e) for e in b["history"])
    if not facts["batches"]:
        lines.append("  no batch received yet")
    return "\n".join(lines)


def run(args) -> int:
    try:
        settings = Settings.from_env()
        regs = registrations(settings.resources_dir)
    except (ValueError, UsageError) as exc:
        return fail("status", exc)
    if args.resource:
        regs_ = [r for r in regs if r.resource == args.resource]
        if not regs_:
            return fail("status", unknown_names("resource", [args.resource], (r.resource for r in regs)))
        regs = regs_
    elif args.department:
        regs_ = [r for r in regs if r.department == args.department]
        if not regs_:
            return fail("status", unknown_names("department", [args.department], (r.department for r in regs)))
        regs = regs_
    lake = Lake.from_settings(settings)
    now = datetime.now(UTC)
    facts = [resource_facts(reg, Ledger.read(lake, reg), now) for reg in regs]
    if args.json:
        print(json.dumps(facts, ensure_ascii=False, indent=2))
    else:
        print("\n\n".join(render(f, history=args.history) for f in facts))
    return 0
