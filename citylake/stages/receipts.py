"""The liaison's receipt for a batch: JSON plus a short text in Chinese and English.

Receipts are written from the batch ledger (:mod:`citylake.core.ledger`): what was received,
accepted and quarantined by reason, the quality result, and why a file was refused.
"""

from __future__ import annotations

import posixpath

from citylake.core import zones
from citylake.core.lake import Lake, now_utc
from citylake.core.ledger import BatchState, Ledger
from citylake.core.reasons import REASONS, describe, split_reason
from citylake.core.registry import Registration
from citylake.core.settings import Settings

STATUS_ZH = {
    "accepted": "全部接收",
    "partially_accepted": "部分接收（部分行已隔离）",
    "rejected": "拒收",
    "blocked": "质量检查未通过，暂不发布",
    "failed": "处理失败",
    "processing": "处理中",
}


def build_receipt(reg: Registration, batch: BatchState, failure: str | None = None) -> dict:
    m = batch.manifest
    failed = batch.failure
    quality = batch.quality if batch.checked else None  # a result of earlier rows does not count
    std, qua = batch.standardized, batch.quarantine

    accepted = std["rows"] if std and qua else 0
    quarantined = qua["rows"] if std and qua else 0
    reasons = []
    titles = {f.name: f.title for f in reg.fields}
    for text, count in sorted(batch.quarantine_reasons.items(), key=lambda kv: -kv[1]):
        code, fld = split_reason(text)
        # Liaisons know their columns by the Chinese title they export, not our field name.
        zh = f"{REASONS[code][0]}（{titles.get(fld, fld)}）" if fld and code in REASONS else describe(text, "zh")
        reasons.append({"reason": text, "count": count, "zh": zh, "en": describe(text, "en"),
                        "field": fld, "known": code in REASONS})

    error = None
    if m["status"] == "rejected":
        status = "rejected"
        error = {"code": m.get("reason"), "zh": m.get("reason_zh"), "en": m.get("reason_en")}
    elif failed:
        status = "rejected"
        error = {"code": failed["code"], "zh": failed["message_zh"], "en": failed["message_en"]}
    elif not (std and qua):
        status = "failed" if failure else "processing"
        if failure:
            error = {"code": "stage_failed", "zh": f"处理失败：{failure}", "en": f"processing failed: {failure}"}
    elif quality and not quality.get("success"):
        status = "blocked"
    elif quality is None and failure:
        status = "failed"
        error = {"code": "stage_failed", "zh": f"处理失败：{failure}", "en": f"processing failed: {failure}"}
    elif quarantined:
        status = "partially_accepted"
    else:
        status = "accepted"

    return {
        "kind": "batch",
        "department": reg.department,
        "department_name": reg.department_name,
        "resource": reg.resource,
        "resource_name": reg.name,
        "batch_id": batch.batch_id,
        "file": m["source_name"],
        "sha256": m["sha256"],
        "size": m["size"],
        "received_at": m["received_at"],
        "status": status,
        "status_zh": STATUS_ZH[status],
        "error": error,
        "rows": {"received": accepted + quarantined, "accepted": accepted, "quarantined": quarantined},
        "quarantined_by_reason": reasons,
        "quality": None if quality is None else {
            "success": quality.get("success"),
            "pass_rate": quality.get("pass_rate"),
            "blocking_failures": quality.get("blocking_failures", []),
        },
        "outputs": {
            "raw": m["raw_path"],
            "standardized": zones.standardized_dir(reg.resource, batch.batch_id) if std else None,
            "quarantine": zones.quarantine_dir(reg.resource, batch.batch_id) if qua else None,
            "quality": zones.quality_dir(reg.resource, batch.batch_id) if quality else None,
        },
        "written_at": now_utc().isoformat(),
    }


def render_text(r: dict) -> str:
    rows = r["rows"]
    zh = [
        f"【数据接收回执】{r['department_name']} · {r['resource_name']}",
        f"文件：{r['file']}（{r['size']} 字节，SHA-256 {r['sha256'][:16]}…）",
        f"接收时间：{r['received_at']}    批次：{r['batch_id']}",
        f"结果：{r['status_zh']}",
    ]
    en = [
        f"[Receipt] {r['resource']} ({r['department']})",
        f"File: {r['file']} ({r['size']} bytes), batch {r['batch_id']}",
        f"Result: {r['status'].replace('_', ' ')}",
    ]
    if r["error"]:
        zh.append(f"原因：{r['error']['zh']}")
        en.append(f"Reason: {r['error']['en']}")
    if r["status"] not in ("rejected", "processing") and rows["received"]:
        zh.append(f"共 {rows['received']} 行：接收 {rows['accepted']} 行，隔离 {rows['quarantined']} 行。")
        en.append(f"{rows['received']} rows: {rows['accepted']} accepted, {rows['quarantined']} quarantined.")
        for item in r["quarantined_by_reason"]:
            zh.append(f"  - {item['zh']}：{item['count']} 行")
            en.append(f"  - {item['en']}: {item['count']}")
    q = r.get("quality")
    if q:
        rate = f"{q['pass_rate'] * 100:.1f}%" if q.get("pass_rate") is not None else "—"
        zh.append(f"质量检查：{'通过' if q['success'] else '未通过'}（规则通过率 {rate}）")
        en.append(f"Quality check: {'passed' if q['success'] else 'failed'} ({rate} of expectations met)")
        for b in q.get("blocking_failures", []):
            desc = b.get("description_zh") or b.get("expectation")
            zh.append(f"  - 阻断项：{desc}（{b.get('column') or '整表'}）")
            en.append(f"  - blocking: {b.get('expectation')} ({b.get('column') or 'table'})")
    if r["status"] in ("partially_accepted", "blocked"):
        zh.append("请按隔离原因修正后重新报送相应记录。")
        en.append("Please correct the quarantined rows and send them again.")
    return "\n".join(zh) + "\n\n" + "\n".join(en) + "\n"


def write_receipts(
    settings: Settings, reg: Registration, batch_ids: list[str] | None = None, failure: str | None = None
) -> list[dict]:
    """Write (or rewrite) the receipt of each batch; the ones never receipted by default.

    ``failure`` is a note from the orchestrator when a stage failed; it is added to the receipts
    of batches that did not finish."""
    lake = Lake.from_settings(settings)
    ledger = Ledger.read(lake, reg)
    batch_ids = ledger.pending("receipt") if batch_ids is None else batch_ids
    out = []
    for b in batch_ids:
        receipt = build_receipt(reg, ledger.batch(b), failure=failure)
        base = zones.receipt_base(reg.department, reg.resource, b)
        lake.write_json(base + ".json", receipt)
        lake.write_text(base + ".txt", render_text(receipt))
        out.append(receipt)
    return out


def write_drop_receipt(lake: Lake, reg: Registration, outcome: dict, previous: dict) -> None:
    """The receipt of a drop whose bytes were ingested before (nothing is ingested twice)."""
    stamp = now_utc().strftime("%Y%m%dT%H%M%SZ")
    receipt = {
        "kind": "duplicate_drop",
        "department": reg.department,
        "resource": reg.resource,
        "file": posixpath.basename(outcome["landing_path"]),
        "sha256": outcome["sha256"],
        "size": outcome["size"],
        "received_at": now_utc().isoformat(),
        "status": "duplicate",
        "status_zh": "重复提交",
        "duplicate_of_batch": previous["batch_id"],
        "duplicate_of_file": previous.get("source_name"),
    }
    text = (
        f"【数据接收回执】{reg.name}\n文件：{receipt['file']}\n结果：重复提交 — 相同内容已于批次 {previous['batch_id']}"
        f"（文件 {previous.get('source_name')}）接收，本次未重复入湖。\n\n"
        f"[Receipt] {reg.resource}\nFile: {receipt['file']}\nResult: duplicate drop — the same bytes were already "
        f"ingested as batch {previous['batch_id']} ({previous.get('source_name')}); nothing was ingested twice.\n"
    )
    base = zones.duplicate_receipt_base(reg.department, reg.resource, stamp, outcome["sha256"])
    lake.write_json(base + ".json", receipt)
    lake.write_text(base + ".txt", text)
