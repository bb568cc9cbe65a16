"""A per-resource summary of what the lake holds, read from the zone markers."""

from __future__ import annotations

from collections import Counter

from .lake import Lake, curated_dir, quarantine_dir, receipts_dir, standardized_dir
from .pipeline import COMMITTED, manifests, quality_result
from .registry import Registration
from .settings import Settings


def resource_summary(settings: Settings, reg: Registration) -> dict:
    lake = Lake.from_settings(settings)
    ms = manifests(settings, reg, lake)
    received = standardized = quarantined = 0
    reasons: Counter = Counter()
    passed = checked = 0
    for m in ms:
        b = m["batch_id"]
        std = lake.read_json_or(f"{standardized_dir(reg.resource, b)}/{COMMITTED}")
        qua = lake.read_json_or(f"{quarantine_dir(reg.resource, b)}/{COMMITTED}")
        if std and qua:
            standardized += std["rows"]
            quarantined += qua["rows"]
            received += std["rows"] + qua["rows"]
            reasons.update(qua.get("reasons", {}))
        q = quality_result(lake, reg, b)
        if q:
            checked += 1
            passed += bool(q.get("success"))
    cur = lake.read_json_or(f"{curated_dir(reg.resource)}/_CURRENT.json") or {}
    duplicate_drops = sum(1 for f in lake.list_files(receipts_dir(reg.department, reg.resource))
                          if f.name.endswith(".duplicate.json"))
    return {
        "department": reg.department,
        "resource": reg.resource,
        "name": reg.name,
        "batches": len(ms),
        "rejected_files": sum(1 for m in ms if m["status"] != "ingested"),
        "received": received,
        "standardized": standardized,
        "quarantined": quarantined,
        "reasons": dict(reasons.most_common()),
        "quality_passed": passed,
        "quality_checked": checked,
        "curated": cur.get("rows", 0),
        "curated_version": cur.get("version"),
        "duplicate_drops": duplicate_drops,
    }


def format_summary(rows: list[dict], settings: Settings) -> str:
    lake = Lake.from_settings(settings)
    out = []
    for s in rows:
        out.append(
            f"{s['department']}/{s['resource']} {s['name']}\n"
            f"  batches {s['batches']} (rejected files {s['rejected_files']}), rows received {s['received']}, "
            f"standardized {s['standardized']}, quarantined {s['quarantined']}, curated {s['curated']}, "
            f"quality passed {s['quality_passed']}/{s['quality_checked']} batches"
        )
        if s["reasons"]:
            out.append("  quarantined by reason: " + ", ".join(f"{k}={v}" for k, v in s["reasons"].items()))
    out.append("")
    out.append(f"lake:      {lake.uri}")
    for zone in ("raw", "standardized", "quarantine", "curated", "quality", "receipts"):
        out.append(f"  {zone:12} {lake.uri}/{zone}/")
    return "\n".join(out)
