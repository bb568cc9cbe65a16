"""The liaison's receipt for a batch: JSON plus a short text in Chinese and English.

Receipts are written from the batch ledger (:mod:`citylake.core.ledger`): what was received,
accepted and quarantined by reason, the quality result, and why a file was refused. So that the
liaison can act on it, a receipt also gives, per quarantine reason, a few example rows as sent
(personal and restricted values masked, :mod:`citylake.core.masking`), the allowed codes of a code
list, the header columns that matched no registered field and the registered fields the file
lacks, and when the next pick-up is due (:mod:`citylake.core.cycles`). Exact duplicate rows need
nothing from the liaison: they are reported as information, not as rows to correct.

Times are in the centre's time zone (``Settings.timezone``): ISO 8601 with the offset in the JSON,
``2026-11-30 11:48:56（北京时间）`` in the text.
"""

from __future__ import annotations

import posixpath
import re
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq

from citylake.core import cycles, tables, zones
from citylake.core.identifiers import has_encoding_damage, normalize_text
from citylake.core.lake import Lake, now_utc
from citylake.core.ledger import BatchState, Ledger
from citylake.core.masking import mask_kind, mask_value, masked_observation
from citylake.core.reasons import REASONS, describe, observed_text, split_reason
from citylake.core.registry import FieldSpec, Registration
from citylake.core.settings import Settings

STATUS_ZH = {
    "accepted": "全部接收",
    "partially_accepted": "部分接收（部分行已隔离）",
    "rejected": "拒收",
    "blocked": "质量检查未通过，暂不发布",
    "failed": "处理失败",
    "processing": "处理中",
}

# A reopened batch's earlier state, in the liaison's words (the ledger's states, not the receipt's).
WAS_ZH = {"rejected": "拒收", "failed": "处理失败", "blocked": "质量检查未通过"}
TRIGGER_ZH = {"reprocess": "数据中心重新处理", "resent": "重新报送相同文件"}
TRIGGER_EN = {"reprocess": "reprocessed by the centre", "resent": "the same file was sent again"}

EXAMPLES_PER_REASON = 5
CLIP_CHARS = 120  # of a value or an unsplittable line shown as an example
CODES_IN_TEXT = 30  # allowed codes listed in the text; the JSON lists them all
READ_ROWS = 8192  # quarantine rows per record batch read
# An exact repeat of an earlier row was ignored: nothing to resend (same key with other content,
# duplicate_key, is a conflict the liaison must settle).
INFORMATION_ONLY = frozenset({"duplicate_row"})
DUPLICATE_NOTE = ("重复行已忽略，无需重报", "exact duplicates were ignored, nothing to resend")
KEY_REASONS = frozenset({"duplicate_row", "duplicate_key"})  # shown by the row's key
ZONE_NAMES = {"Asia/Shanghai": ("北京时间", "Beijing time")}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# ---- times --------------------------------------------------------------------------------------
def _zone(tz: str | tzinfo) -> tzinfo:
    return ZoneInfo(tz) if isinstance(tz, str) else tz


def local_iso(value: str | datetime | None, tz: str | tzinfo) -> str | None:
    """``value`` (a datetime or ISO text; naive means UTC) as ISO 8601 in ``tz``, with its offset.
    Text that is no date is returned as it is."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(_zone(tz)).isoformat(timespec="seconds")


def _zone_label(r: dict) -> tuple[str, str]:
    name = r.get("timezone") or cycles.TIMEZONE
    return ZONE_NAMES.get(name, (name, name))


def _clock(iso: str | None, seconds: bool = True) -> str:
    """The wall time of an ISO text already in the receipt's zone."""
    if not iso:
        return "—"
    try:
        return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    except ValueError:
        return iso


# ---- examples from the quarantine -----------------------------------------------------------------
def _clip(text: str) -> str:
    text = _CONTROL.sub(" ", text)
    return text if len(text) <= CLIP_CHARS else text[:CLIP_CHARS] + "…"


def _field_example(source_row, specs: list[FieldSpec], row: dict) -> dict:
    values = []
    for spec in specs:
        sent = row.get(spec.name)
        # A null token ("无", "NULL", …) is no personal value: shown as sent, so the liaison sees why.
        value = sent if isinstance(sent, str) and normalize_text(sent) is None else mask_value(spec, sent)
        values.append(None if value is None else _clip(str(value)))
    if len(specs) > 1:  # a compound key: one text, parts in key order
        joined = " / ".join(v or "" for v in values)
        values = [joined]
    return {
        "source_row": source_row,
        "field": ",".join(s.name for s in specs) or None,
        "title": "、".join(s.title for s in specs) or None,
        "value": values[0] if values else None,
    }


def _example(reg: Registration, text: str, row: dict, withhold_lines: bool) -> dict:
    code, fld = split_reason(text)
    source_row, raw = row.get("_source_row"), row.get("_raw_line")
    if fld is not None:
        spec = reg.field_map.get(fld)
        if spec is None:  # a field no longer registered: its sensitivity is unknown, so no value
            return {"source_row": source_row, "field": fld, "title": fld, "value": None}
        return _field_example(source_row, [spec], row)
    if raw is not None:  # the line could not be split into fields
        return {"source_row": source_row, "field": None, "title": None,
                "value": None if withhold_lines else _clip(raw), "raw_line": True, "withheld": withhold_lines}
    if code == "encoding_damage":
        specs = [s for s in reg.fields if has_encoding_damage(row.get(s.name))][:1]
    elif code in KEY_REASONS:
        specs = reg.key_fields
    else:
        specs = []
    return _field_example(source_row, specs, row)


def quarantine_examples(
    lake: Lake, reg: Registration, batch_id: str, reasons: dict[str, int], limit: int = EXAMPLES_PER_REASON
) -> dict[str, list[dict]]:
    """Up to ``limit`` example rows per quarantine reason, by row number.

    Reads only the columns the reasons need, one record batch at a time, and stops once every
    reason has its examples: on a large quarantine they are the first found, not necessarily the
    lowest row numbers (Spark does not keep the file's order). A raw line is never shown for a
    resource with personal or restricted fields: it cannot be masked field by field."""
    fields = reg.field_map
    wanted: dict[str, int] = {}
    columns = {"_source_row", "_reasons", "_raw_line"}
    for text, count in reasons.items():
        code, fld = split_reason(text)
        if count <= 0 or code == "missing_column":  # the column is absent: a value says nothing
            continue
        wanted[text] = min(limit, count)
        if fld in fields:
            columns.add(fld)
        elif code in KEY_REASONS:
            columns.update(reg.key)
        elif code == "encoding_damage":
            columns.update(fields)
    out: dict[str, list[dict]] = {text: [] for text in wanted}
    withhold = any(mask_kind(f) for f in reg.fields)
    for f in lake.list_files(zones.quarantine_dir(reg.resource, batch_id)):
        if not wanted:
            break
        if not f.name.endswith(".parquet") or f.name.startswith((".", "_")):
            continue
        with lake.open_read(f.path) as fh:
            pf = pq.ParquetFile(fh)
            names = [c for c in pf.schema_arrow.names if c in columns]
            if "_reasons" not in names:
                continue
            for rb in pf.iter_batches(batch_size=READ_ROWS, columns=names):
                for i, row_reasons in enumerate(rb.column("_reasons").to_pylist()):
                    hits = [t for t in dict.fromkeys(row_reasons or ()) if wanted.get(t)]
                    if not hits:
                        continue
                    row = {name: rb.column(name)[i].as_py() for name in names}
                    for text in hits:
                        out[text].append(_example(reg, text, row, withhold))
                        wanted[text] -= 1
                        if not wanted[text]:
                            del wanted[text]
                if not wanted:
                    break
    for examples in out.values():
        examples.sort(key=lambda e: (e["source_row"] is None, e["source_row"] or 0))
    return out


# ---- the receipt --------------------------------------------------------------------------------
def build_receipt(
    reg: Registration,
    batch: BatchState,
    failure: str | None = None,
    *,
    lake: Lake | None = None,
    tz: str | tzinfo = cycles.TIMEZONE,
    now: datetime | None = None,
    quality_page: str | None = None,
) -> dict:
    """The receipt of ``batch``. ``lake`` is read for example rows of the quarantine (none
    without it); times are shown in ``tz`` (write_receipts passes ``Settings.timezone``);
    ``quality_page`` is the URL of the batch on its resource's quality page, given once checked."""
    now = now or now_utc()
    zone_name = tz if isinstance(tz, str) else str(tz)
    m = batch.manifest
    failed = batch.failure
    quality = batch.quality if batch.checked else None  # a result of earlier rows does not count
    std, qua = batch.standardized, batch.quarantine

    accepted = std["rows"] if std and qua else 0
    quarantined = qua["rows"] if std and qua else 0
    counts = batch.quarantine_reasons
    examples = quarantine_examples(lake, reg, batch.batch_id, counts) if lake is not None and quarantined else {}
    fields = reg.field_map
    reasons, information = [], []
    for text, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        code, fld = split_reason(text)
        spec = fields.get(fld) if fld else None
        # Liaisons know their columns by the Chinese title they export, not our field name.
        zh = f"{REASONS[code][0]}（{spec.title if spec else fld}）" if fld and code in REASONS else describe(text, "zh")
        item = {"reason": text, "count": count, "zh": zh, "en": describe(text, "en"),
                "field": fld, "known": code in REASONS, "needs_action": code not in INFORMATION_ONLY,
                "examples": examples.get(text, [])}
        if code == "not_in_codelist" and spec is not None and spec.codes:
            item["allowed_values"] = [{"code": c, "meaning": meaning} for c, meaning in spec.codes.items()]
        reasons.append(item)
        if not item["needs_action"]:
            information.append({"reason": text, "count": count, "zh": DUPLICATE_NOTE[0], "en": DUPLICATE_NOTE[1],
                                "examples": item["examples"]})

    decode = (std or {}).get("decode") or {}
    unrecognised = list(decode.get("unmapped") or [])
    missing_fields = [
        {"field": name, "title": fields[name].title if name in fields else name,
         "required": bool(fields[name].required) if name in fields else False}
        for name in decode.get("missing_fields") or []
    ]

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

    counted = status not in ("rejected", "processing")
    to_correct = counted and any(item["needs_action"] for item in reasons)
    pickup = cycles.next_pickup(reg.update_cycle, now)  # the DAGs read the schedule in their own zone
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
        "timezone": zone_name,
        "received_at": local_iso(m["received_at"], tz),
        "status": status,
        "status_zh": STATUS_ZH[status],
        "error": error,
        "action_required": to_correct or status in ("rejected", "blocked"),
        "rows": {"received": accepted + quarantined, "accepted": accepted, "quarantined": quarantined},
        "quarantined_by_reason": reasons,
        "information": information if counted else [],
        "unrecognised_columns": unrecognised,
        "missing_fields": missing_fields,
        "file_notes": file_notes(decode),
        "quality": None if quality is None else {
            "success": quality.get("success"),
            "pass_rate": quality.get("pass_rate"),
            "blocking_failures": [masked_observation(reg, b) for b in quality.get("blocking_failures", [])],
            "page": quality_page,
        },
        "outputs": {
            "raw": m["raw_path"],
            # rows in the standardized table: its partition for this batch, at the snapshot conform committed
            "standardized": {"table": tables.standardized_table(reg).ident, "batch_id": batch.batch_id,
                             "snapshot_id": std.get("snapshot_id")} if std else None,
            "quarantine": zones.quarantine_dir(reg.resource, batch.batch_id) if qua else None,
            "quality": zones.quality_dir(reg.resource, batch.batch_id) if quality else None,
        },
        # each time the batch was reopened (a re-send after it was refused, or `citylake reprocess`)
        "reprocessed": [
            {"at": local_iso(e.get("at"), tz), "trigger": e.get("event"), "was": e.get("was"), "why": e.get("why"),
             "file": e.get("file")}
            for e in m.get("history", [])
        ],
        "update_cycle": reg.update_cycle,
        "next_pickup": local_iso(pickup, tz),
        "written_at": local_iso(now, tz),
    }


def _example_text(e: dict) -> tuple[str, str]:
    row = e.get("source_row")
    where_zh, where_en = f"第 {row} 行" if row is not None else "某行", f"row {row}" if row is not None else "a row"
    if e.get("raw_line"):
        if e.get("withheld"):
            return (f"{where_zh}：该行无法拆分为字段（本资源含个人信息，原文不在回执中显示）",
                    f"{where_en}: the line could not be split into fields (not shown: the resource holds personal data)")
        return f"{where_zh}：「{e['value']}」", f"{where_en}: \"{e['value']}\""
    if not e.get("title"):
        return where_zh, where_en
    value_zh = "（空）" if e.get("value") in (None, "") else f"「{e['value']}」"
    value_en = "(empty)" if e.get("value") in (None, "") else f"\"{e['value']}\""
    return f"{where_zh}，{e['title']}：{value_zh}", f"{where_en}, {e.get('field')}: {value_en}"


def _allowed_text(values: list[dict]) -> tuple[str, str]:
    shown = [v["code"] if v["meaning"] == v["code"] else f"{v['code']}＝{v['meaning']}" for v in values[:CODES_IN_TEXT]]
    more = len(values) - len(shown)
    zh = "；".join(shown) + (f"……等共 {len(values)} 个（完整列表见 JSON 回执）" if more else "")
    en = "; ".join(shown) + (f" … {len(values)} in all (the JSON receipt lists them)" if more else "")
    return f"允许的值：{zh}", f"allowed values: {en}"


def file_notes(decode: dict) -> list[dict]:
    """What decoding noticed about the file's shape, for the liaison: {kind, zh, en, ...}."""
    notes = []
    if decode.get("skipped_rows"):
        rows = [s["row"] for s in decode["skipped_rows"]]
        notes.append({"kind": "skipped_rows", "rows": rows,
                      "zh": f"表头在第 {decode.get('header_row')} 行，其上的标题行已跳过（第 {'、'.join(map(str, rows))} 行）",
                      "en": f"The header is on row {decode.get('header_row')}; title rows above it were skipped "
                            f"(rows {', '.join(map(str, rows))})"})
    for dup in decode.get("duplicate_columns") or []:
        notes.append({"kind": "duplicate_column", **dup,
                      "zh": f"第 {dup['column']} 列“{dup['header']}”与第 {dup['kept_column']} 列重复，未接收其内容",
                      "en": f"Column {dup['column']} ({dup['header']}) repeats column {dup['kept_column']}; "
                            "its cells were not taken in"})
    if decode.get("padded_rows"):
        rows = decode.get("padded_examples") or []
        notes.append({"kind": "padded_rows", "count": decode["padded_rows"], "rows": rows,
                      "zh": f"{decode['padded_rows']} 行的单元格少于表头，末尾缺少的单元格按空值接收"
                            f"（例如第 {'、'.join(map(str, rows))} 行）",
                      "en": f"{decode['padded_rows']} rows had fewer cells than the header; the missing trailing "
                            f"cells were read as empty (e.g. rows {', '.join(map(str, rows))})"})
    if decode.get("multiline_records"):
        notes.append({"kind": "multiline_records", "count": decode["multiline_records"],
                      "zh": f"{decode['multiline_records']} 条记录的单元格内含换行，已按一条记录接收",
                      "en": f"{decode['multiline_records']} records hold line breaks inside quoted cells; "
                            "each was read as one record"})
    ranges = decode.get("encoding_ranges") or []
    if ranges:
        spans = [f"{r['first']}" if r["first"] == r["last"] else f"{r['first']}-{r['last']}" for r in ranges[:20]]
        notes.append({"kind": "mixed_encoding", "main": decode.get("encoding"), "ranges": ranges,
                      "zh": f"文件主要为 {decode.get('encoding')} 编码，以下行是其他编码（{ranges[0]['encoding']}），"
                            f"已按该编码读取：第 {'、'.join(spans)} 行",
                      "en": f"The file is mostly {decode.get('encoding')}; these lines are in "
                            f"{ranges[0]['encoding']} and were read as such: {', '.join(spans)}"})
    return notes


def render_text(r: dict) -> str:
    rows = r["rows"]
    zone_zh, zone_en = _zone_label(r)
    zh = [
        f"【数据接收回执】{r['department_name']} · {r['resource_name']}",
        f"文件：{r['file']}（{r['size']} 字节，SHA-256 {r['sha256'][:16]}…）",
        f"接收时间：{_clock(r['received_at'])}（{zone_zh}）    批次：{r['batch_id']}",
        f"结果：{r['status_zh']}",
    ]
    en = [
        f"[Receipt] {r['resource']} ({r['department']})",
        f"File: {r['file']} ({r['size']} bytes), batch {r['batch_id']}",
        f"Received: {_clock(r['received_at'])} ({zone_en})",
        f"Result: {r['status'].replace('_', ' ')}",
    ]
    for e in r.get("reprocessed") or []:
        was = e.get("was") or ""
        zh.append(f"重新处理：{_clock(e['at'])}（{zone_zh}），{TRIGGER_ZH.get(e['trigger'], e['trigger'])}；"
                  f"此前状态：{WAS_ZH.get(was, was)}" + (f"（{e['why']}）" if e.get("why") else ""))
        en.append(f"Reprocessed: {_clock(e['at'])} ({zone_en}), {TRIGGER_EN.get(e['trigger'], e['trigger'])}; "
                  f"it was {was}" + (f" ({e['why']})" if e.get("why") else ""))
    if r["error"]:
        zh.append(f"原因：{r['error']['zh']}")
        en.append(f"Reason: {r['error']['en']}")
    work = [i for i in r["quarantined_by_reason"] if i.get("needs_action", True)]
    counted = r["status"] not in ("rejected", "processing") and rows["received"]
    if counted:
        zh.append(f"共 {rows['received']} 行：接收 {rows['accepted']} 行，隔离 {rows['quarantined']} 行。")
        en.append(f"{rows['received']} rows: {rows['accepted']} accepted, {rows['quarantined']} quarantined.")
        if work:
            zh.append(f"需要修正的记录（每类最多列出 {EXAMPLES_PER_REASON} 行示例，个人信息已遮盖）：")
            en.append(f"Rows to correct (up to {EXAMPLES_PER_REASON} examples each, personal data masked):")
        for item in work:
            zh.append(f"  - {item['zh']}：{item['count']} 行")
            en.append(f"  - {item['en']}: {item['count']}")
            for e in item.get("examples", []):
                ezh, een = _example_text(e)
                zh.append(f"      {ezh}")
                en.append(f"      {een}")
            if item.get("allowed_values"):
                azh, aen = _allowed_text(item["allowed_values"])
                zh.append(f"      {azh}")
                en.append(f"      {aen}")
        if r.get("information"):
            zh.append("无需处理：")
            en.append("No action needed:")
        for item in r.get("information", []):
            rows_zh = "、".join(str(e["source_row"]) for e in item.get("examples", []) if e.get("source_row") is not None)
            rows_en = ", ".join(str(e["source_row"]) for e in item.get("examples", []) if e.get("source_row") is not None)
            zh.append(f"  - {describe(item['reason'], 'zh')}：{item['count']} 行，{item['zh']}"
                      + (f"（例如第 {rows_zh} 行）" if rows_zh else ""))
            plural = "s" if "," in rows_en else ""
            en.append(f"  - {describe(item['reason'], 'en')}: {item['count']}; {item['en']}"
                      + (f" (e.g. row{plural} {rows_en})" if rows_en else ""))
    if r.get("unrecognised_columns"):
        zh.append(f"表头中未识别的列（内容未接收）：{'、'.join(r['unrecognised_columns'])}")
        en.append(f"Header columns matching no registered field (not taken in): {', '.join(r['unrecognised_columns'])}")
    for note in r.get("file_notes") or []:
        zh.append(note["zh"])
        en.append(note["en"])
    if r.get("missing_fields"):
        zh.append("文件中没有以下登记字段的列：" + "、".join(
            f["title"] + ("（必填）" if f["required"] else "") for f in r["missing_fields"]))
        en.append("Registered fields with no column in the file: " + ", ".join(
            f"{f['title']} ({f['field']}{', required' if f['required'] else ''})" for f in r["missing_fields"]))
    q = r.get("quality")
    if q:
        rate = f"{q['pass_rate'] * 100:.1f}%" if q.get("pass_rate") is not None else "—"
        zh.append(f"质量检查：{'通过' if q['success'] else '未通过'}（规则通过率 {rate}）")
        en.append(f"Quality check: {'passed' if q['success'] else 'failed'} ({rate} of expectations met)")
        for b in q.get("blocking_failures", []):
            desc = b.get("description_zh") or b.get("expectation")
            found_zh, found_en = observed_text(b.get("observed"))
            zh.append(f"  - 阻断项：{desc}（{b.get('column_title') or b.get('column') or '整表'}）"
                      + (f"：{found_zh}" if found_zh else ""))
            en.append(f"  - blocking: {b.get('description_en') or b.get('expectation')} "
                      f"({b.get('column') or 'table'})" + (f": {found_en}" if found_en else ""))
        if q.get("page"):
            zh.append(f"质量报告：{q['page']}")
            en.append(f"Quality report: {q['page']}")
    if counted and work:
        zh.append("请按隔离原因修正后重新报送相应记录。")
        en.append("Please correct the quarantined rows and send them again.")
    elif r["status"] == "blocked":
        zh.append("请根据上述阻断项核对数据后重新报送。")
        en.append("Please check the blocking items above and send the data again.")
    if r.get("next_pickup"):
        zh.append(f"下次接收：{_clock(r['next_pickup'], seconds=False)}（{zone_zh}）")
        en.append(f"Next pick-up: {_clock(r['next_pickup'], seconds=False)} ({zone_en})")
    return "\n".join(zh) + "\n\n" + "\n".join(en) + "\n"


def write_receipts(
    settings: Settings,
    reg: Registration,
    batch_ids: list[str] | None = None,
    failure: str | None = None,
    *,
    now: datetime | None = None,
) -> list[dict]:
    """Write (or rewrite) the receipt of each batch; the ones never receipted by default.

    ``failure`` is a note from the orchestrator when a stage failed; it is added to the receipts
    of batches that did not finish."""
    lake = Lake.from_settings(settings)
    ledger = Ledger.read(lake, reg)
    batch_ids = ledger.pending("receipt") if batch_ids is None else batch_ids
    now = now or now_utc()
    out = []
    for b in batch_ids:
        receipt = build_receipt(reg, ledger.batch(b), failure=failure, lake=lake, tz=settings.timezone, now=now,
                                quality_page=settings.directory_link(f"site/q/{reg.resource}.html#b-{b}"))
        base = zones.receipt_base(reg.department, reg.resource, b)
        lake.write_json(base + ".json", receipt)
        lake.write_text(base + ".txt", render_text(receipt))
        out.append(receipt)
    return out


def write_drop_receipt(
    lake: Lake, reg: Registration, outcome: dict, previous: dict, tz: str | tzinfo = cycles.TIMEZONE
) -> None:
    """The receipt of a drop whose bytes were ingested before (nothing is ingested twice)."""
    now = now_utc()
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    receipt = {
        "kind": "duplicate_drop",
        "department": reg.department,
        "resource": reg.resource,
        "file": posixpath.basename(outcome["landing_path"]),
        "sha256": outcome["sha256"],
        "size": outcome["size"],
        "timezone": tz if isinstance(tz, str) else str(tz),
        "received_at": local_iso(now, tz),
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
