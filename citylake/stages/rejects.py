"""The liaison's rejected rows: a department's quarantined rows as an XLSX to correct and resend.

The receipt (:mod:`citylake.stages.receipts`) shows a few example rows per reason, masked; this is
the whole list, for the department that sent them (its own data, so nothing is masked). Served by
``GET /api/v1/quarantine/{resource}.xlsx`` (:mod:`citylake.drivers.service.quarantine`), which lets
only the resource's own department (or an administrator) have it.

The workbook (openpyxl write-only: rows go to disk as they are written):

* sheet 1 “待更正数据”: one row per quarantined row — 批次, 源文件行号 (``first–last`` for a record
  spanning several lines), every registered field by its title with the value as sent, 问题说明
  (every reason of the row in Chinese, naming the field), 可选值 (the allowed codes of a code-list
  field the row broke), and the raw line of a record that could not be split into fields. Exact
  duplicate rows (``duplicate_row``) need nothing from the liaison and are left out;
* sheet 2 “说明”: how to correct and resend (format, file name pattern, encoding, landing folder),
  the batches, and the rows per reason (duplicates counted there).

The quarantine Parquet files are read through :class:`~citylake.core.lake.Lake` (local folder or
S3) one record batch at a time: a quarantine of any size is never in memory whole. Rows come in the
order the files hold them, which is not the source order (Spark does not keep it); each record
batch is sorted by source row.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import IO

import pyarrow.parquet as pq

from citylake.core import cycles, zones
from citylake.core.identifiers import has_encoding_damage
from citylake.core.lake import Lake
from citylake.core.ledger import BatchState, Ledger
from citylake.core.reasons import REASONS, describe, split_reason
from citylake.core.registry import FieldSpec, Registration
from citylake.core.settings import Settings
from citylake.stages.drop_template import allowed_values
from citylake.stages.receipts import INFORMATION_ONLY, KEY_REASONS, READ_ROWS, ZONE_NAMES, local_iso

ROWS_SHEET = "待更正数据"
HELP_SHEET = "说明"
BATCH_COLUMN, ROW_COLUMN, REASON_COLUMN, CODES_COLUMN = "批次", "源文件行号", "问题说明", "可选值"
RAW_COLUMN = "原始行内容（无法拆分为字段的行）"
ROW_COLUMNS = ("_source_row", "_source_row_end", "_raw_line", "_reasons")
MAX_SHEET_ROWS = 1_048_576 - 1  # an XLSX sheet's rows, less the header
MAX_CELL_CHARS = 32_767  # what Excel keeps in a cell
# Characters an XLSX cell cannot hold (XML 1.0 forbids them): written as \xNN so the file opens.
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


class NoQuarantine(LookupError):
    """No quarantined rows to give: an unknown batch, or a batch (or resource) with none."""


# ---- which batches -------------------------------------------------------------------------------
@dataclass(frozen=True)
class QuarantinedBatch:
    """A batch with quarantined rows, as the liaison knows it."""

    resource: str
    batch_id: str
    file: str
    received_at: str | None  # ISO 8601 in the centre's time zone, with its offset
    quarantined: int
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def information_only(self) -> int:
        """Rows needing nothing (exact duplicates), by the conform marker's counts."""
        return sum(n for text, n in self.reasons.items() if split_reason(text)[0] in INFORMATION_ONLY)

    @property
    def to_correct(self) -> int:
        return self.quarantined - self.information_only

    def as_dict(self) -> dict:
        return {"resource": self.resource, "batch_id": self.batch_id, "file": self.file,
                "received_at": self.received_at, "quarantined": self.quarantined,
                "to_correct": self.to_correct, "duplicates_ignored": self.information_only,
                "reasons": dict(self.reasons)}


def _quarantined(reg: Registration, b: BatchState, tz: str | tzinfo) -> QuarantinedBatch:
    m = b.manifest
    return QuarantinedBatch(reg.resource, b.batch_id, m.get("source_name") or "", local_iso(m.get("received_at"), tz),
                            b.rows_quarantined, b.quarantine_reasons)


def quarantined_batches(source: Settings | Lake, reg: Registration, *,
                        tz: str | tzinfo | None = None) -> list[QuarantinedBatch]:
    """The batches of ``reg`` holding quarantined rows, oldest first (times in ``tz``; the settings'
    zone by default, Beijing time with a bare lake)."""
    if reg.is_base:
        return []
    zone = tz or (source.timezone if isinstance(source, Settings) else cycles.TIMEZONE)
    ledger = Ledger.read(source, reg)
    return [_quarantined(reg, b, zone) for b in ledger.batches if b.conformed and b.rows_quarantined > 0]


def department_batches(settings: Settings, regs: Iterable[Registration], department: str | None) -> list[dict]:
    """Per resource of ``department`` (every department's with None): its batches with quarantined
    rows. ``[{resource, name, department, batches: [QuarantinedBatch.as_dict()…]}]``."""
    lake = Lake.from_settings(settings)
    out = []
    for reg in regs:
        if reg.is_base or (department is not None and reg.department != department):
            continue
        batches = quarantined_batches(lake, reg, tz=settings.timezone)
        out.append({"resource": reg.resource, "name": reg.name, "department": reg.department,
                    "batches": [b.as_dict() for b in batches]})
    return out


def select_batches(source: Settings | Lake, reg: Registration, batch_id: str | None = None, *,
                   tz: str | tzinfo | None = None) -> list[QuarantinedBatch]:
    """``batch_id`` (it must be a batch of ``reg`` with quarantined rows), or every batch with
    quarantined rows; :class:`NoQuarantine` when there is none. Only ledger batches are read, so a
    batch id from a request never names a path by itself."""
    batches = quarantined_batches(source, reg, tz=tz)
    if batch_id is None:
        if not batches:
            raise NoQuarantine(f"{reg.resource} has no quarantined rows")
        return batches
    chosen = [b for b in batches if b.batch_id == batch_id]
    if not chosen:
        raise NoQuarantine(f"{reg.resource} has no batch {batch_id!r} with quarantined rows")
    return chosen


# ---- the rows ------------------------------------------------------------------------------------
@dataclass
class RejectedRow:
    """A quarantined row as sent: field values as text (None: empty or absent), its reasons."""

    batch_id: str
    source_row: int | None
    source_row_end: int | None
    values: dict[str, str | None]
    raw_line: str | None
    reasons: list[str]

    @property
    def information_only(self) -> bool:
        return bool(self.reasons) and all(split_reason(t)[0] in INFORMATION_ONLY for t in self.reasons)

    @property
    def rows_text(self) -> int | str | None:
        """The source row, or ``first–last`` for a record over several lines."""
        first, last = self.source_row, self.source_row_end
        if first is None:
            return None
        return first if last is None or last == first else f"{first}–{last}"


def iter_rows(lake: Lake, reg: Registration, batch_id: str, *, batch_size: int = READ_ROWS) -> Iterator[RejectedRow]:
    """Every quarantined row of ``batch_id`` (exact duplicates too), one record batch of at most
    ``batch_size`` rows in memory at a time; each record batch in source-row order."""
    wanted = {f.name for f in reg.fields} | set(ROW_COLUMNS)
    for f in lake.list_files(zones.quarantine_dir(reg.resource, batch_id)):
        if not f.name.endswith(".parquet") or f.name.startswith((".", "_")):
            continue
        with lake.open_read(f.path) as fh:
            pf = pq.ParquetFile(fh)
            names = [c for c in pf.schema_arrow.names if c in wanted]
            fields = [s.name for s in reg.fields if s.name in names]
            for rb in pf.iter_batches(batch_size=batch_size, columns=names):
                cols = {name: rb.column(name).to_pylist() for name in names}
                n = rb.num_rows
                starts = cols.get("_source_row") or [None] * n
                ends = cols.get("_source_row_end") or [None] * n
                raws = cols.get("_raw_line") or [None] * n
                reasons = cols.get("_reasons") or [None] * n
                rows = [
                    RejectedRow(batch_id, starts[i], ends[i], {name: _text(cols[name][i]) for name in fields},
                                raws[i], list(dict.fromkeys(reasons[i] or ())))
                    for i in range(n)
                ]
                rows.sort(key=lambda r: (r.source_row is None, r.source_row or 0))
                yield from rows


def _text(value) -> str | None:
    return None if value is None else str(value)


def _title(reg: Registration, name: str | None) -> str:
    spec = reg.field_map.get(name) if name else None
    return spec.title if spec else (name or "")


def explain(reg: Registration, row: RejectedRow) -> tuple[str, str]:
    """(问题说明, 可选值) of a row: every reason in Chinese naming the field's title; the allowed
    codes of each code-list field the row broke."""
    problems, codes = [], []
    for text in row.reasons:
        code, fld = split_reason(text)
        zh = REASONS[code][0] if code in REASONS else None
        if zh is None:
            problems.append(describe(text, "zh"))
            continue
        if fld:
            problems.append(f"{zh}（{_title(reg, fld)}）")
            spec = reg.field_map.get(fld)
            if code == "not_in_codelist" and spec is not None and spec.codes:
                codes.append(f"{spec.title}：{allowed_values(spec)}")
            continue
        names: list[FieldSpec] = []
        if code in KEY_REASONS:
            names = reg.key_fields
        elif code == "encoding_damage":
            names = [s for s in reg.fields if has_encoding_damage(row.values.get(s.name))]
        problems.append(f"{zh}（{'、'.join(s.title for s in names)}）" if names else zh)
    return "；".join(problems), "\n".join(codes)


# ---- the workbook ----------------------------------------------------------------------------------
def _safe(value):
    """``value`` as an XLSX cell can hold it: characters XML forbids written as ``\\xNN``, clipped
    to what Excel keeps."""
    if not isinstance(value, str):
        return value
    value = _ILLEGAL.sub(lambda m: f"\\x{ord(m.group()):02x}", value)
    return value if len(value) <= MAX_CELL_CHARS else value[: MAX_CELL_CHARS - 1] + "…"


def _cell(ws, value, **style):
    """A write-only cell holding ``value`` as sent: text stays text (never a formula)."""
    from openpyxl.cell import WriteOnlyCell

    value = _safe(value)
    if not style and not (isinstance(value, str) and value.startswith("=")):
        return value
    cell = WriteOnlyCell(ws, value)
    if isinstance(value, str):
        cell.data_type = "s"  # text that starts with "=" stays text
    for name, v in style.items():
        setattr(cell, name, v)
    return cell


@dataclass
class Written:
    """What a workbook holds: its batches, rows on sheet 1, duplicates left out, reasons counted."""

    resource: str
    batches: list[QuarantinedBatch]
    rows: int = 0
    duplicates: int = 0
    truncated: bool = False
    reasons: Counter = field(default_factory=Counter)


def write_workbook(settings: Settings, reg: Registration, target: str | Path | IO[bytes],
                   batch_id: str | None = None, *, batch_size: int = READ_ROWS) -> Written:
    """Write the rejected rows of ``batch_id`` (every batch with quarantined rows by default) to
    ``target`` (a path or a binary file) as XLSX; :class:`NoQuarantine` when there are none."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    lake = Lake.from_settings(settings)
    batches = select_batches(lake, reg, batch_id, tz=settings.timezone)
    out = Written(reg.resource, batches)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(ROWS_SHEET)
    header = [BATCH_COLUMN, ROW_COLUMN, *(f.title for f in reg.fields), REASON_COLUMN, CODES_COLUMN, RAW_COLUMN]
    widths = [22, 12, *(max(12, len(f.title) * 2 + 4) for f in reg.fields), 48, 36, 40]
    for i, width in enumerate(widths):
        ws.column_dimensions[_letter(i + 1)].width = width
    ws.freeze_panes = "C2"
    bold = Font(bold=True)
    ws.append([_cell(ws, title, font=bold) for title in header])
    for b in batches:
        for row in iter_rows(lake, reg, b.batch_id, batch_size=batch_size):
            out.reasons.update(row.reasons)
            if row.information_only:
                out.duplicates += 1
                continue
            if out.rows >= MAX_SHEET_ROWS:
                out.truncated = True
                continue
            problems, codes = explain(reg, row)
            ws.append([_cell(ws, v) for v in (b.batch_id, row.rows_text, *(row.values.get(f.name) for f in reg.fields),
                                               problems, codes or None, row.raw_line)])
            out.rows += 1

    help_ws = wb.create_sheet(HELP_SHEET)
    help_ws.column_dimensions["A"].width = 28
    for col in "BCDEF":
        help_ws.column_dimensions[col].width = 24
    wrap = Alignment(wrap_text=True, vertical="top")
    for line in help_rows(settings, reg, out):
        help_ws.append([_cell(help_ws, value, alignment=wrap) for value in line])
    wb.properties.title = f"{reg.name} 待更正数据"
    wb.properties.creator = "citylake"
    wb.save(target)
    return out


def _letter(n: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(n)


def help_rows(settings: Settings, reg: Registration, written: Written) -> list[list]:
    """Sheet 2: how to correct and resend, the batches, the rows per reason."""
    zone = ZONE_NAMES.get(settings.timezone, (settings.timezone,))[0]
    src = reg.source
    landing = zones.landing_dir(reg.department, reg.resource) + "/"
    lines: list[list] = [
        [f"【待更正数据说明】{reg.department_name} · {reg.name}（{reg.resource}）"],
        [],
        ["如何更正"],
        [f"1. “{ROWS_SHEET}”工作表每行是一条未被接收的记录：“{ROW_COLUMN}”是它在原文件中的行号"
         f"（跨多行的记录写作“起–止”），各字段列是报送时的原始内容，“{REASON_COLUMN}”列出该行的全部问题，"
         f"代码类字段的允许值见“{CODES_COLUMN}”。"],
        [f"2. 按问题说明在源系统或导出文件中修正这些记录；“{RAW_COLUMN}”一列是无法拆分为字段的行的原文，"
         "请核对该行的分隔符、引号和列数。"],
    ]
    if src.kind == "file":
        if src.format == "csv":
            how = f"CSV 文件，编码 {src.encoding}，分隔符为{'逗号' if (src.delimiter or ',') == ',' else f'“{src.delimiter}”'}"
        elif src.format in ("xlsx", "xls"):
            how = f"{src.format.upper()} 文件（读取{f'工作表“{src.sheet}”' if src.sheet else '第一个工作表'}）"
        else:
            how = f"JSON 文件（每行一个 JSON 对象，或一个对象数组），编码 {src.encoding}"
        lines.append([f"3. 重新报送：{how}，文件名须匹配 {src.pattern}，放入 {landing}。表头用各字段的列名"
                      f"（即本表的字段列标题）；“{BATCH_COLUMN}”“{ROW_COLUMN}”“{REASON_COLUMN}”“{CODES_COLUMN}”"
                      f"“{RAW_COLUMN}”等列无需报送。"])
    else:
        lines.append(["3. 本资源由数据中心从源系统数据库抽取：请在源系统中修正这些记录，下次抽取时会重新接收。"])
    if reg.snapshot == "full":
        lines.append(["4. 本资源按全量快照接收：请把修正后的记录并入完整导出后整体报送，只报送修正的记录会使其余记录被移出共享表。"])
    else:
        lines.append(["4. 只需报送修正后的记录；已接收的记录不必重报。"])
    lines.append(["5. 与本批次前一行完全重复的行已忽略，无需重报，不在上表中列出。"])
    if written.truncated:
        lines.append([f"注意：待更正记录超过一个工作表可容纳的 {MAX_SHEET_ROWS:,} 行，上表只列出前 {MAX_SHEET_ROWS:,} 行；"
                      "请按批次分别下载。"])
    lines.append(["原始内容中 XLSX 无法保存的控制字符写作 \\xNN；超过 32767 个字符的内容已截断。"])
    lines += [[], ["批次", "文件名", f"接收时间（{zone}）", "隔离行数", "需更正行数", "重复行（已忽略）"]]
    for b in written.batches:
        lines.append([b.batch_id, b.file, _wall(b.received_at), b.quarantined, b.to_correct, b.information_only])
    lines += [[], ["问题", "字段", "行数", "说明"]]
    counts: Counter = Counter()
    for b in written.batches:
        counts.update(b.reasons)
    for text, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        code, fld = split_reason(text)
        zh = REASONS[code][0] if code in REASONS else describe(text, "zh")
        note = "无需处理" if code in INFORMATION_ONLY else ""
        lines.append([zh, _title(reg, fld) if fld else "—", n, note])
    lines += [[], [f"本表列出 {written.rows} 行待更正记录；另有 {written.duplicates} 行完全重复的记录已忽略。"]]
    return lines


def _wall(iso: str | None) -> str:
    return (iso or "")[:19].replace("T", " ")
