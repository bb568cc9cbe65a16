"""Shapes real exports come in, beyond the plain file of each registration.

``generate(..., shape=NAME)`` / ``citylake generate --shape NAME`` makes every file in one shape.
A shape may change the file format (a CSV registration's records sent as wrapped JSON); the truth
entry then says what the registration must say to read it (``registration_overrides``, e.g.
``{"source": {"format": "json", "pattern": "*.json", "record_path": "result.records"}}``) and what it
may declare instead of leaving it to be found (``registration_declared``: the overrides plus
``skip_rows`` or ``delimiter``). ``shape`` in the entry holds what a reader of the file should find.

Records and defects are those of the plain file: the truth still counts records, one reason per
bad record, whatever the number of lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatch
from typing import TYPE_CHECKING

from citylake.core.identifiers import divisions
from citylake.core.registry import FileSource, Registration
from citylake_dev.generate.entities import OLD_DIVISION_BEFORE
from citylake_dev.generate.naming import file_name
from citylake_dev.generate.values import TEXT_KINDS, Layout, field_kind

if TYPE_CHECKING:
    from citylake_dev.generate.values import FileGen

SHAPES: dict[str, str] = {
    "csv_multiline": "CSV whose quoted cells hold line breaks (\\n and \\r\\n): an address typed with Enter in Excel",
    "csv_crlf": "CSV with CRLF line ends throughout",
    "csv_delimiter": "CSV delimited by tab, ';' or '|' (file index 0, 1, 2, …); the registration leaves it to be sniffed",
    "csv_short_rows": "CSV rows whose trailing empty cells were left out",
    "xlsx_short_rows": "XLSX rows whose trailing empty cells are absent from the sheet XML",
    "title_rows": "title and blank lines above the header (CSV, or XLSX/XLS as registered)",
    "duplicate_headers": "two columns with the same header text (CSV, or XLSX/XLS as registered)",
    "json_array": "one pretty-printed JSON array of records",
    "json_lines": "JSON Lines: one record per line",
    "json_wrapped": '{"code": 0, "data": [...]} pretty-printed (record_path "data")',
    "json_wrapped_line": '{"code":0,"data":[...]} on one line (record_path "data")',
    "json_wrapped_result": '{"result": {"records": [...], "total": N}} pretty-printed (record_path "result.records")',
    "json_wrapped_result_line": '{"result":{"records":[...],"total":N}} on one line (record_path "result.records")',
    "xls": "a legacy BIFF8 .xls workbook (a sheet holds 65,536 rows, header included)",
    "xlsx_stale_dimension": "XLSX whose <dimension ref> claims fewer rows and columns than the sheet holds",
    "mixed_encoding": "UTF-8 except a few line ranges written in GBK (CSV, or JSON Lines as registered)",
    "old_division_ids": "citizen IDs whose address code is a county abolished before 2002",
    "bad_export": "a second export of the period, from a broken export job: 60–70 % of its rows bad (one defect "
                  "each), so the quarantine gate blocks the batch",
}

XLS_MAX_ROWS = 65_536
XLSX_MAX_ROWS = 1_048_576
DELIMITERS = ("\t", ";", "|")
# (record_path, pretty) of the wrapped JSON shapes
_JSON_WRAPPED = {
    "json_wrapped": ("data", True),
    "json_wrapped_line": ("data", False),
    "json_wrapped_result": ("result.records", True),
    "json_wrapped_result_line": ("result.records", False),
}
BAD_EXPORT_FRACTION = (0.6, 0.7)  # above every registration's max_quarantine_rate (0.5 by default)
_MULTILINE_SHARE = 0.06  # of good rows: enough to matter, few enough to look like typing slips
_SHORT_SHARE = 0.2


@dataclass(frozen=True)
class Variant:
    """A registration's variant for a shape: the file's own format, and what its registration must say."""

    registration: Registration  # the file as made (format, encoding, pattern)
    overrides: dict  # {"source": {...}} to read it, {} when the registration reads it as is
    ext: str | None


def file_format(shape: str | None, reg: Registration) -> str:
    fmt = reg.source.format
    if shape in (None, "old_division_ids", "bad_export"):
        return fmt
    if shape.startswith("csv_"):
        return "csv"
    if shape.startswith("xlsx_"):
        return "xlsx"
    if shape.startswith("json_"):
        return "json"
    if shape == "xls":
        return "xls"
    if shape in ("title_rows", "duplicate_headers"):
        return fmt if fmt in ("csv", "xlsx", "xls") else "csv"
    if shape == "mixed_encoding":
        return fmt if fmt in ("csv", "json") else "csv"
    raise ValueError(f"unknown shape {shape!r}")


def _optional_fields(reg: Registration) -> list[str]:
    return [f.name for f in reg.fields if not f.required and not f.unique and f.name not in reg.key]


def _text_fields(reg: Registration) -> list[str]:
    """Free text without a check, outside the key: where a line break or a second column can go."""
    return [
        f.name
        for f in reg.fields
        if field_kind(f) in TEXT_KINDS and f.check is None and not f.unique and f.name not in reg.key
    ]


def old_division_codes() -> list[str]:
    return sorted(c for c, d in divisions().items() if not c.endswith("00") and d.last_year < OLD_DIVISION_BEFORE)


def problem(shape: str | None, reg: Registration, rows: int) -> str | None:
    """Why ``shape`` cannot be made for ``reg`` with ``rows`` rows, or None."""
    if shape is None:
        fmt = reg.source.format
    elif shape not in SHAPES:
        return f"unknown shape {shape!r} (one of {', '.join(SHAPES)})"
    elif reg.source.kind != "file":
        return "a database source: shapes are for files"
    else:
        fmt = file_format(shape, reg)
    if fmt == "xls" and rows + 1 > XLS_MAX_ROWS - 4:
        return f"an .xls sheet holds at most {XLS_MAX_ROWS - 5} data rows here"
    if fmt == "xlsx" and rows + 1 > XLSX_MAX_ROWS - 4:
        return f"an .xlsx sheet holds at most {XLSX_MAX_ROWS - 5} data rows here"
    if shape == "csv_multiline" and not _text_fields(reg):
        return "no free-text field to hold a line break"
    if shape in ("csv_short_rows", "xlsx_short_rows") and not _optional_fields(reg):
        return "no optional field that could be left out at the end of a row"
    if shape == "duplicate_headers" and len(reg.fields) == len(reg.key):
        return "every field is in the key"
    if shape == "old_division_ids":
        if not any(f.check == "cn_id" for f in reg.fields):
            return "no citizen-ID field"
        if not old_division_codes():
            return f"the shipped GB/T 2260 list has no county code whose last edition is before {OLD_DIVISION_BEFORE}"
    return None


def variant(reg: Registration, shape: str | None) -> Variant:
    """The registration the file is made from, and the overrides its registration needs to read it."""
    if shape is None:
        return Variant(reg, {}, None)
    src = reg.source
    fmt = file_format(shape, reg)
    changes: dict = {}
    made: dict = {}  # what the file is, where it differs from what the registration would say
    if fmt != src.format:
        changes["format"] = fmt
    ext = None  # the plain file's name
    if shape == "json_lines":
        ext = "jsonl"
    elif shape == "json_array" or shape in _JSON_WRAPPED:
        ext = "json"
    if fmt == "json" and src.encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
        changes["encoding"] = "utf-8"  # JSON is UTF-8 (RFC 8259)
    if shape in _JSON_WRAPPED:
        changes["record_path"] = _JSON_WRAPPED[shape][0]
    elif fmt == "json" and src.record_path:
        changes["record_path"] = None
    if shape == "mixed_encoding":
        made["encoding"] = "utf-8"  # the body; the registration names the encoding of the rest
        if not _is_gb(src.encoding):
            changes["encoding"] = "gbk"
    name_ext = ext or {"json": "jsonl"}.get(fmt, fmt)
    if (fmt != src.format or ext) and not fnmatch(f"x.{name_ext}", src.pattern):
        changes["pattern"] = f"*.{name_ext}"
    # the overrides must make a valid source
    FileSource(**{**src.model_dump(), **changes})
    file_source = src.model_copy(update={**changes, **made})
    return Variant(reg.model_copy(update={"source": file_source}), {"source": changes} if changes else {}, ext)


def _is_gb(encoding: str) -> bool:
    return encoding.lower().replace("-", "").replace("_", "").startswith("gb")


def lay_out(g: FileGen, shape: str | None) -> Layout:
    """Lay out ``g``'s file for ``shape`` (choices from the file's random stream); may reorder fields."""
    rng = g.rng
    lay = g.layout
    lay.shape = shape
    if shape is None:
        return lay
    if shape == "csv_multiline":
        names = _text_fields(g.reg)
        # addresses and remarks are what gets typed with Enter; a long name only where there are none
        typed = [n for n in names if g.kind_of[n] in ("address", "text")]
        lay.multiline_fields = [g.index_of[n] for n in typed or names]
        lay.multiline_share = _MULTILINE_SHARE
        # an unclosed quote would swallow the lines after it in a file whose records span lines
        lay.malformed_ok = False
    elif shape == "csv_crlf":
        lay.eol = "\r\n"
    elif shape == "csv_delimiter":
        lay.delimiter = DELIMITERS[g.index % len(DELIMITERS)]
    elif shape in ("csv_short_rows", "xlsx_short_rows"):
        optional = set(_optional_fields(g.reg))
        # the export's column order puts the optional fields last, so a row can end early
        order = [k for k, f in enumerate(g.fields) if f.name not in optional]
        order += [k for k, f in enumerate(g.fields) if f.name in optional]
        g.set_field_order(order)
        lay.short_fields = len(optional)
        lay.short_share = _SHORT_SHARE
    elif shape == "title_rows":
        lay.title_rows = _title_rows(g)
        lay.title_padded = rng.random() < 0.5
    elif shape == "duplicate_headers":
        lay.extra_column = _extra_column(g)
    elif shape == "json_array":
        lay.json_style, lay.json_pretty = "array", True
    elif shape in _JSON_WRAPPED:
        path, pretty = _JSON_WRAPPED[shape]
        lay.json_style, lay.json_pretty = ("data" if path == "data" else "result"), pretty
    elif shape == "xlsx_stale_dimension":
        lay.stale_dimension = True
    elif shape == "mixed_encoding":
        lay.gbk_rows = _gbk_ranges(g)
    elif shape == "old_division_ids":
        g.old_division_share = 0.15
    elif shape == "bad_export":
        g.bad_fraction = BAD_EXPORT_FRACTION
        # named apart from the plain file of the same period, which it follows
        g.path, _ = file_name(g.reg, g.file_format, f"{g.stamp}_2", g.ext)
    return lay


def _title_rows(g: FileGen) -> list[list[str]]:
    """One to three rows above the header: the department's title line, a note, a blank row."""
    rng = g.rng
    reg = g.reg
    when = g.export_at
    title = rng.choice(
        (
            f"{reg.department_name} {reg.name} 导出时间：{when:%Y-%m-%d}",
            f"{reg.name}（{reg.department_name}）",
            f"{reg.department_name}{reg.name}导出 {when:%Y-%m-%d %H:%M:%S}",
        )
    )
    rows = [[title]]
    money = next((f for f in g.fields if f.type == "money" and f.unit), None)
    if rng.random() < 0.5:
        note = f"数据截止：{g.data_end:%Y年%m月%d日}" + (f"　金额单位：{money.unit}" if money else "")
        rows.append([note])
    if rng.random() < 0.6 or len(rows) == 1:
        rows.append([])
    return rows


def _extra_column(g: FileGen) -> tuple[int, int]:
    """A second column headed like a registered one: (position among the written cells, that field)."""
    rng = g.rng
    text = [g.index_of[n] for n in _text_fields(g.reg)]
    others = [k for k, f in enumerate(g.fields) if f.name not in g.key_set]
    source = rng.choice(text or others)
    position = rng.randint(source + 1, len(g.fields))  # after the first one, which is the one kept
    return position, source


def _gbk_ranges(g: FileGen) -> list[tuple[int, int]]:
    """One to three runs of rows pasted in from a GBK system (row indexes, inclusive)."""
    rng = g.rng
    rows = g.rows
    if rows < 2:
        return [(0, 0)]
    runs = []
    slots = sorted(rng.sample(range(rows), min(rows, rng.randint(1, 3))))
    limit = rows
    for start in reversed(slots):
        length = rng.randint(1, max(1, min(40, rows // 20)))
        end = min(start + length - 1, limit - 1)
        runs.append((start, end))
        limit = start
    return sorted(runs)


def truth(g: FileGen, lay: Layout, stats: dict, overrides: dict) -> dict:
    """The shape part of a truth entry: the shape's facts and the registration variants."""
    detail: dict = {"name": lay.shape}
    declared = {"source": dict(overrides.get("source", {}))}
    shape = lay.shape
    if shape == "csv_multiline":
        detail["multiline_records"] = stats["multiline_records"]
    elif shape == "csv_crlf":
        detail["line_end"] = "\r\n"
    elif shape == "csv_delimiter":
        detail["delimiter"] = lay.delimiter
        declared["source"]["delimiter"] = lay.delimiter
    elif shape in ("csv_short_rows", "xlsx_short_rows"):
        detail["short_rows"] = stats["short_rows"]
        detail["optional_fields_last"] = [f.name for f in g.fields[len(g.fields) - lay.short_fields :]]
    elif shape == "title_rows":
        detail["skip_rows"] = len(lay.title_rows)
        detail["header_row"] = len(lay.title_rows) + 1
        detail["title_rows"] = [cells[0] if cells else "" for cells in lay.title_rows]
        declared["source"]["skip_rows"] = len(lay.title_rows)
    elif shape == "duplicate_headers":
        position, source = lay.extra_column  # the repeat goes after its field: the field keeps its column
        detail["duplicate_headers"] = [
            {"header": g.headers[source], "field": g.fields[source].name, "columns": [source, position], "kept": source}
        ]
    elif shape.startswith("json_"):
        detail["container"] = {"data": "object", "result": "object"}.get(lay.json_style, lay.json_style)
        detail["record_path"] = {"data": "data", "result": "result.records"}.get(lay.json_style)
        detail["pretty"] = lay.json_pretty
    elif shape == "xls":
        detail["sheet"] = lay.sheet
    elif shape == "xlsx_stale_dimension":
        detail["dimension"] = stats["dimension"]
        detail["used_range"] = stats["used_range"]
    elif shape == "mixed_encoding":
        detail["gbk_lines"] = stats["gbk_lines"]
        detail["gbk_line_count"] = sum(b - a + 1 for a, b in stats["gbk_lines"])
    elif shape == "bad_export":
        detail["bad_fraction"] = list(BAD_EXPORT_FRACTION)
    elif shape == "old_division_ids":
        detail["rows"] = stats["old_division_rows"]
        detail["codes"] = sorted(stats["old_division_codes"])
    return {
        "shape": detail,
        "registration_overrides": overrides,
        "registration_declared": declared if declared["source"] else {},
    }
