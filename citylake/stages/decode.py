"""Decode a raw departmental file into all-text Arrow record batches (docs/conform-rules.md §1).

Conform runs this inside a Spark executor task, one task per file (``decode_partition`` through
``mapInArrow``); the driver only plans. A file streams through in chunks of whole lines, so memory
stays bounded whatever its size, and files of different batches decode in parallel.

Output columns: ``_source_row`` / ``_source_row_end`` (int64: the record's first and last physical
line, or its ordinal in a JSON array), ``_raw_line`` (text of a record that cannot be split into
fields, else null), ``_pre_reasons`` (reasons found here), and one string column per registration
field holding the original field text. What was learned about the file (encoding and mixed-encoding
line ranges, header mapping, title rows skipped, duplicate columns, short rows padded) goes into a
:class:`DecodeInfo` that the task writes beside its output.

CSV: lines without a quote are split by Arrow's compute kernels; only lines with quotes, short or
long lines go through Python's ``csv`` module, and a quoted cell holding line breaks joins the lines
it spans into one record (only when the joined record has the header's width: an unclosed quote
never swallows the lines after it).
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import json
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from citylake.core.lake import Lake
from citylake.core.reasons import reason
from citylake.core.registry import Registration, normalize_header

BATCH_ROWS = 50_000
CHUNK_BYTES = 8 << 20
# The header is the first of these many rows that names a registered column.
HEADER_SCAN_ROWS = 30
# A quoted cell may hold this many line breaks; past that the opening line is malformed.
MAX_RECORD_LINES = 64
SNIFFED_DELIMITERS = (",", "\t", ";", "|")
EXAMPLES = 10
# XLSX is a zip: refuse archives that would inflate beyond this, or far beyond their size (zip bombs).
XLSX_MAX_UNCOMPRESSED = 1 << 30
XLSX_MAX_RATIO = 200
SPOOL_BYTES = 64 << 20


class DecodeError(ValueError):
    """The whole file cannot be read (not a workbook, zip bomb, no header…)."""

    def __init__(self, code: str, message_zh: str, message_en: str):
        self.code = code
        self.message_zh = message_zh
        self.message_en = message_en
        super().__init__(f"{code}: {message_en}")

    def as_dict(self) -> dict:
        return {"code": self.code, "message_zh": self.message_zh, "message_en": self.message_en}


@dataclass
class DecodeInfo:
    encoding: str | None
    rows: int = 0
    header: list[str] = field(default_factory=list)
    header_row: int | None = None
    delimiter: str | None = None
    record_path: str | None = None
    mapped: dict[str, str] = field(default_factory=dict)  # header text -> field
    unmapped: list[str] = field(default_factory=list)
    missing_fields: list[str] = field(default_factory=list)  # registered fields with no column
    missing_required: list[str] = field(default_factory=list)
    # rows above the header that were skipped: [{"row", "text"}]
    skipped_rows: list[dict] = field(default_factory=list)
    # a second column with the header of an earlier one, ignored: [{"column", "header", "field"}]
    duplicate_columns: list[dict] = field(default_factory=list)
    padded_rows: int = 0  # rows with fewer cells than the header: missing trailing cells read as empty
    padded_examples: list[int] = field(default_factory=list)
    multiline_records: int = 0  # records whose quoted cells hold line breaks
    # lines not in the file's main encoding: [{"encoding", "first", "last"}]
    encoding_ranges: list[dict] = field(default_factory=list)
    error: dict | None = None

    def as_dict(self) -> dict:
        return self.__dict__.copy()

    @classmethod
    def from_dict(cls, data: dict) -> DecodeInfo:
        return cls(**data)


def schema_for(reg: Registration) -> pa.Schema:
    return pa.schema(
        [("_source_row", pa.int64()), ("_source_row_end", pa.int64()), ("_raw_line", pa.string()),
         ("_pre_reasons", pa.list_(pa.string()))]
        + [(f.name, pa.string()) for f in reg.fields]
    )


# ---- encoding --------------------------------------------------------------------------------
# The GB family is read as GB18030, its superset, whichever member a registration declares.
GB_FAMILY = frozenset({"gbk", "gb2312", "gb18030", "cp936", "euc-cn"})


def legacy_encoding(declared: str | None) -> str:
    """The codec for text that is not UTF-8: the registration's declared encoding (GB family →
    GB18030), or GB18030 when it declares UTF-8 (the usual legacy encoding of Chinese exports)."""
    name = codecs.lookup(declared or "utf-8").name
    if name in GB_FAMILY or name.startswith("utf"):
        return "gb18030"
    return name


class TextDecoder:
    """Bytes → text, chunk by chunk, deciding the encoding line by line where it must.

    A chunk that is valid UTF-8 is UTF-8. The first chunk that is not settles the file's main
    encoding: UTF-8 when most of its non-ASCII lines are UTF-8, else the legacy one. A UTF-8 file's
    chunk that fails is then read line by line, its other lines in the legacy encoding, and their
    ranges are recorded (a file that is UTF-8 except for a few GBK lines stays readable). A line
    neither reads is kept with U+FFFD, which conform quarantines as encoding damage.
    """

    def __init__(self, declared: str | None, info: DecodeInfo):
        self.legacy = legacy_encoding(declared)
        self.info = info
        self.main: str | None = None  # "utf-8" or the legacy codec, once seen

    def _note(self, encoding: str, line: int) -> None:
        ranges = self.info.encoding_ranges
        if ranges and ranges[-1]["encoding"] == encoding and ranges[-1]["last"] == line - 1:
            ranges[-1]["last"] = line
        else:
            ranges.append({"encoding": encoding, "first": line, "last": line})

    def _by_line(self, chunk: bytes, first_line: int, main: str, other: str) -> str:
        out = []
        for n, raw in enumerate(chunk.split(b"\n")):
            try:
                out.append(raw.decode(main))
                continue
            except UnicodeDecodeError:
                pass
            try:
                out.append(raw.decode(other))
                self._note(other, first_line + n)
            except UnicodeDecodeError:
                out.append(raw.decode(main, errors="replace"))
        return "\n".join(out)

    def decode(self, chunk: bytes, first_line: int) -> str:
        if chunk.isascii():
            return chunk.decode("ascii")
        if self.main != self.legacy:
            try:
                text = chunk.decode("utf-8")
                self.main = "utf-8"
                self.info.encoding = self.info.encoding or "utf-8"
                return text
            except UnicodeDecodeError:
                pass
        if self.main is None:
            lines = [raw for raw in chunk.split(b"\n") if not raw.isascii()]
            utf8 = sum(1 for raw in lines if _is_utf8(raw))
            self.main = "utf-8" if utf8 * 2 > len(lines) else self.legacy
            self.info.encoding = self.main
        if self.main == "utf-8":
            return self._by_line(chunk, first_line, "utf-8", self.legacy)
        try:
            return chunk.decode(self.legacy)
        except UnicodeDecodeError:
            return self._by_line(chunk, first_line, self.legacy, "utf-8")


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _line_chunks(lake: Lake, raw_rel: str, declared: str | None, info: DecodeInfo) -> Iterator[tuple[int, list[str]]]:
    """(number of the first line, the chunk's lines) over the whole file; CRLF read as LF."""
    decoder = TextDecoder(declared, info)
    line = 1
    with lake.open_read(raw_rel) as f:
        carry = f.read(3)
        if carry.startswith(codecs.BOM_UTF8):
            carry = carry[3:]
            decoder.main, info.encoding = "utf-8", "utf-8-sig"
        while True:
            block = f.read(CHUNK_BYTES)
            data = carry + block
            if block:
                cut = data.rfind(b"\n") + 1
                if cut == 0:  # one line longer than a chunk: keep reading
                    carry = data
                    continue
                chunk, carry = data[:cut], data[cut:]
            else:
                chunk, carry = data, b""
            if not chunk:
                return
            lines = decoder.decode(chunk, line).replace("\r\n", "\n").split("\n")
            if chunk.endswith(b"\n"):
                lines.pop()
            yield line, lines
            line += len(lines)
            if not block:
                return


def _refuse_binary(lake: Lake, raw_rel: str) -> None:
    with lake.open_read(raw_rel) as f:
        head = f.read(8192)
    if b"\x00" in head:
        raise DecodeError("binary_file", "文件是二进制数据，不是文本表格", "the file is binary, not delimited text")


# ---- header mapping --------------------------------------------------------------------------
def _matches(reg: Registration, cells: list[str]) -> int:
    by_header = reg.header_map()
    return len({by_header[k] for k in (normalize_header(c or "") for c in cells) if k in by_header})


def map_header(reg: Registration, header: list[str], info: DecodeInfo) -> dict[str, int]:
    """field name -> column index. The first column of a field wins; a later one is reported."""
    by_header = reg.header_map()
    positions: dict[str, int] = {}
    for idx, text in enumerate(header):
        name = by_header.get(normalize_header(text or ""))
        if name is None:
            if (text or "").strip():
                info.unmapped.append(text)
            continue
        if name in positions:
            info.duplicate_columns.append({"column": idx + 1, "header": text, "field": name,
                                           "kept_column": positions[name] + 1})
            continue
        positions[name] = idx
        info.mapped[text] = name
    if not positions:
        raise DecodeError(
            "no_known_columns", "表头中没有任何已登记的字段", "no column of the header matches a registered field"
        )
    info.header = list(header)
    info.missing_fields = [f.name for f in reg.fields if f.name not in positions]
    info.missing_required = [f.name for f in reg.fields if f.required and f.name not in positions]
    return positions


def _skip_note(info: DecodeInfo, row: int, text: str) -> None:
    if len(info.skipped_rows) < EXAMPLES:
        info.skipped_rows.append({"row": row, "text": text[:200]})


def _no_header(scanned: int) -> DecodeError:
    if scanned == 0:
        return DecodeError("empty_file", "文件没有表头和数据", "the file has no header and no rows")
    return DecodeError(
        "no_known_columns",
        f"前 {scanned} 行中没有一行含有已登记的字段名，找不到表头",
        f"none of the first {scanned} rows names a registered column: no header found",
    )


# ---- output batches --------------------------------------------------------------------------
class _Rows:
    """Rows built in Python (workbooks, JSON, and the CSV lines that need the csv module)."""

    def __init__(self, reg: Registration, info: DecodeInfo):
        self.schema = schema_for(reg)
        self.fields = [f.name for f in reg.fields]
        self.info = info
        self._reset()

    def _reset(self):
        self.cols: dict[str, list] = {n: [] for n in self.schema.names}

    def __len__(self) -> int:
        return len(self.cols["_source_row"])

    def add(self, first: int, last: int, values: dict[str, str | None] | None, raw: str | None,
            reasons: list[str]) -> None:
        c = self.cols
        c["_source_row"].append(first)
        c["_source_row_end"].append(last)
        c["_raw_line"].append(raw)
        c["_pre_reasons"].append(reasons)
        for name in self.fields:
            c[name].append(values.get(name) if values else None)
        self.info.rows += 1

    def take(self) -> pa.RecordBatch | None:
        if not len(self):
            return None
        batch = pa.RecordBatch.from_pydict(self.cols, schema=self.schema)
        self._reset()
        return batch


def _pad(info: DecodeInfo, row: int) -> None:
    info.padded_rows += 1
    if len(info.padded_examples) < EXAMPLES:
        info.padded_examples.append(row)


def _blank(cells) -> bool:
    return not any(c is not None and str(c).strip() for c in cells)


# ---- CSV -------------------------------------------------------------------------------------
def _parse_csv(text: str, delimiter: str) -> list[str] | None:
    try:
        rows = list(csv.reader([text], delimiter=delimiter, strict=True))
    except csv.Error:
        return None
    return rows[0] if len(rows) == 1 else None


@dataclass
class _CsvLayout:
    delimiter: str
    width: int
    positions: dict[str, int]


def _csv_header(lines: list[str], first: int, reg: Registration, info: DecodeInfo) -> tuple[_CsvLayout, int]:
    """(layout, index of the first data line in ``lines``)."""
    src = reg.source
    candidates = (src.delimiter,) if src.delimiter else SNIFFED_DELIMITERS
    if src.skip_rows is not None:
        scan = range(src.skip_rows, min(src.skip_rows + 1, len(lines)))
    else:
        scan = range(min(len(lines), HEADER_SCAN_ROWS))
    scanned = 0
    for i in scan:
        if not lines[i].strip():
            continue
        scanned += 1
        best = max(
            candidates,
            key=lambda d: (_matches(reg, next(csv.reader([lines[i]], delimiter=d))), d == ","),
        )
        header = next(csv.reader([lines[i]], delimiter=best))
        if _matches(reg, header) == 0 and src.skip_rows is None:
            continue
        for j in range(i):
            if lines[j].strip():
                _skip_note(info, first + j, lines[j])
        info.header_row = first + i
        info.delimiter = best
        positions = map_header(reg, header, info)
        return _CsvLayout(best, len(header), positions), i + 1
    raise _no_header(scanned)


def _join_multiline(lines: list[str], odd: list[int], final: bool, layout: _CsvLayout
                    ) -> tuple[dict[int, int], int | None]:
    """{first line: last line} of records whose quoted cells span lines, and the index from which
    lines must wait for the next chunk (a record may still close there)."""
    joins: dict[int, int] = {}
    k = 0
    while k < len(odd):
        i = odd[k]
        if k + 1 < len(odd) and odd[k + 1] - i < MAX_RECORD_LINES:
            j = odd[k + 1]
            cells = _parse_csv("\n".join(lines[i:j + 1]), layout.delimiter)
            if cells is not None and len(cells) <= layout.width:
                joins[i] = j
                k += 2
                continue
        elif k + 1 == len(odd) and not final and len(lines) - i < MAX_RECORD_LINES:
            return joins, i
        k += 1
    return joins, None


def _csv_batches(lake: Lake, raw_rel: str, reg: Registration, info: DecodeInfo) -> Iterator[pa.RecordBatch]:
    _refuse_binary(lake, raw_rel)
    chunks = _line_chunks(lake, raw_rel, reg.source.encoding, info)
    layout: _CsvLayout | None = None
    carry: list[str] = []
    carry_first = 1
    pending = next(chunks, None)
    while pending is not None:
        first, lines = pending
        pending = next(chunks, None)
        final = pending is None
        if carry:
            lines, first = carry + lines, carry_first
            carry = []
        start = 0
        if layout is None:
            layout, start = _csv_header(lines, first, reg, info)
            if info.encoding is None:
                info.encoding = "utf-8"
        batch_iter, rest = _csv_chunk(lines, first, start, final, layout, reg, info)
        yield from batch_iter
        if rest is not None:
            carry, carry_first = lines[rest:], first + rest
    if layout is None:
        raise _no_header(0)


def _csv_chunk(lines: list[str], first: int, start: int, final: bool, layout: _CsvLayout,
               reg: Registration, info: DecodeInfo) -> tuple[list[pa.RecordBatch], int | None]:
    """The record batches of lines[start:], and where the lines held for the next chunk begin."""
    body = lines[start:]
    if not body:
        return [], None
    no_reasons = pa.ListArray.from_arrays(pa.array(np.zeros(BATCH_ROWS + 1, dtype=np.int32)),
                                          pa.array([], pa.string()))
    arr = pa.array(body, pa.string())
    quotes = pc.count_substring(arr, '"').to_numpy(zero_copy_only=False)
    cells = pc.count_substring(arr, layout.delimiter).to_numpy(zero_copy_only=False) + 1
    blank = pc.equal(pc.utf8_trim_whitespace(arr), "").to_numpy(zero_copy_only=False)
    odd = np.flatnonzero(quotes & 1).tolist()
    joins, rest = _join_multiline(body, odd, final, layout)
    held = None if rest is None else start + rest
    n = len(body) if rest is None else rest
    # Lines without a quote and with the header's width: split by Arrow.
    fast = (quotes == 0) & (cells == layout.width) & ~blank
    fast[n:] = False
    for i, j in joins.items():
        fast[i:j + 1] = False
    slow = ~fast & ~blank
    slow[n:] = False
    for i, j in joins.items():
        slow[i + 1:j + 1] = False

    batches: list[pa.RecordBatch] = []
    schema = schema_for(reg)
    fast_idx = np.flatnonzero(fast)
    for lo in range(0, len(fast_idx), BATCH_ROWS):
        idx = fast_idx[lo:lo + BATCH_ROWS]
        parts = pc.split_pattern(arr.take(pa.array(idx)), layout.delimiter)
        rows = pa.array(idx + (first + start), pa.int64())
        columns = {"_source_row": rows, "_source_row_end": rows,
                   "_raw_line": pa.nulls(len(idx), pa.string()),
                   "_pre_reasons": no_reasons.slice(0, len(idx))}
        for f in reg.fields:
            pos = layout.positions.get(f.name)
            columns[f.name] = (pc.list_element(parts, pos) if pos is not None
                               else pa.nulls(len(idx), pa.string()))
        batches.append(pa.RecordBatch.from_arrays([columns[nm] for nm in schema.names], schema=schema))
        info.rows += len(idx)

    out = _Rows(reg, info)
    for i in np.flatnonzero(slow).tolist():
        j = joins.get(i, i)
        row, last = first + start + i, first + start + j
        text = "\n".join(body[i:j + 1]) if j > i else body[i]
        if j > i:
            info.multiline_records += 1
        parsed = _parse_csv(text, layout.delimiter)
        if parsed is None:
            out.add(row, last, None, text, [reason("malformed_line")])
            continue
        extra = parsed[layout.width:]
        if extra and not _blank(extra):
            out.add(row, last, None, text, [reason("column_count")])
            continue
        parsed = parsed[:layout.width]
        if len(parsed) < layout.width:
            _pad(info, row)
            parsed = parsed + [None] * (layout.width - len(parsed))
        out.add(row, last, {name: parsed[p] for name, p in layout.positions.items()}, None, [])
        if len(out) >= BATCH_ROWS:
            batches.append(out.take())
    tail = out.take()
    if tail is not None:
        batches.append(tail)
    return batches, held


# ---- workbooks -------------------------------------------------------------------------------
def _cell_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return format(Decimal(repr(value)), "f")
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(sep=" ")
    if isinstance(value, (date, time)):
        return value.isoformat()
    return str(value)


def _spooled(lake: Lake, raw_rel: str):
    """A seekable local copy of a workbook (readers need to seek): in memory when small, else a temp file."""
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
    with lake.open_read(raw_rel) as f:
        while block := f.read(1 << 20):
            out.write(block)
    out.seek(0)
    return out


def _guard_zip(data) -> None:
    try:
        with zipfile.ZipFile(data) as zf:
            infos = zf.infolist()
    except zipfile.BadZipFile:
        raise DecodeError("not_a_workbook", "文件不是有效的 XLSX 工作簿", "the file is not an XLSX workbook") from None
    finally:
        data.seek(0)
    packed = sum(i.compress_size for i in infos) or 1
    unpacked = sum(i.file_size for i in infos)
    if unpacked > XLSX_MAX_UNCOMPRESSED or unpacked / packed > XLSX_MAX_RATIO:
        raise DecodeError(
            "zip_bomb",
            f"XLSX 解压后过大（{unpacked} 字节，压缩比 {unpacked // packed}），疑似压缩炸弹，已拒收",
            f"XLSX would inflate to {unpacked} bytes (ratio {unpacked // packed}): refused as a zip bomb",
        )


def _sheet_rows(reg: Registration, info: DecodeInfo, rows: Iterator[tuple[int, list]]) -> Iterator[pa.RecordBatch]:
    """Workbook rows (number, cell values) → batches: header found as for CSV, short rows padded."""
    skip = reg.source.skip_rows
    header = None
    scanned = 0
    held: list[tuple[int, str]] = []
    for rowno, values in rows:
        if _blank(values):
            continue
        scanned += 1
        texts = [_cell_text(v) or "" for v in values]
        if (skip is None and _matches(reg, texts)) or (skip is not None and rowno > skip):
            header = texts
            break
        held.append((rowno, ",".join(texts).rstrip(",")))
        if scanned >= HEADER_SCAN_ROWS:
            break
    if header is None:
        raise _no_header(scanned)
    for rowno_held, text in held:
        _skip_note(info, rowno_held, text)
    while header and not header[-1].strip():
        header.pop()
    info.header_row = rowno
    positions = map_header(reg, header, info)
    width = len(header)
    out = _Rows(reg, info)
    for rowno, values in rows:
        texts = [_cell_text(v) for v in values]
        if _blank(texts):
            continue
        if not _blank(texts[width:]):
            out.add(rowno, rowno, None, ",".join("" if t is None else t for t in texts), [reason("column_count")])
        else:
            texts = texts[:width]
            if len(texts) < width:
                # Only cells a sheet holds are stored: a row whose trailing cells are empty is short.
                _pad(info, rowno)
                texts += [None] * (width - len(texts))
            out.add(rowno, rowno, {name: texts[idx] for name, idx in positions.items()}, None, [])
        if len(out) >= BATCH_ROWS:
            yield out.take()
    tail = out.take()
    if tail is not None:
        yield tail


def _xlsx_batches(lake: Lake, raw_rel: str, reg: Registration, info: DecodeInfo) -> Iterator[pa.RecordBatch]:
    import openpyxl

    info.encoding = None
    data = _spooled(lake, raw_rel)
    try:
        _guard_zip(data)
        wb = openpyxl.load_workbook(data, read_only=True, data_only=True)
    except DecodeError:
        data.close()
        raise
    except Exception as exc:  # openpyxl raises many types for broken workbooks
        data.close()
        raise DecodeError("not_a_workbook", "文件不是有效的 XLSX 工作簿", f"not a readable workbook: {exc}") from None
    try:
        ws = wb[_sheet_name(reg, wb.sheetnames)]
        # The <dimension> a writer records may be stale; read every row the sheet holds.
        ws.reset_dimensions()
        rows = ((n, list(values)) for n, values in enumerate(ws.iter_rows(values_only=True), start=1))
        yield from _sheet_rows(reg, info, rows)
    finally:
        wb.close()
        data.close()


def _sheet_name(reg: Registration, names: list[str]) -> str:
    wanted = reg.source.sheet
    if wanted and wanted not in names:
        raise DecodeError("no_sheet", f"工作簿中没有工作表“{wanted}”", f"the workbook has no sheet {wanted!r}")
    return wanted or names[0]


def _xls_batches(lake: Lake, raw_rel: str, reg: Registration, info: DecodeInfo) -> Iterator[pa.RecordBatch]:
    """Legacy BIFF workbooks (Excel 97–2003): at most 65,536 rows, read whole by xlrd."""
    import xlrd

    info.encoding = None
    with lake.open_read(raw_rel) as f:
        data = f.read()
    try:
        book = xlrd.open_workbook(file_contents=data, on_demand=True)
    except Exception as exc:  # xlrd raises several types for broken files
        raise DecodeError("not_a_workbook", "文件不是有效的 XLS 工作簿", f"not a readable XLS workbook: {exc}") from None
    try:
        sheet = book.sheet_by_name(_sheet_name(reg, book.sheet_names()))

        def value(cell):
            if cell.ctype == xlrd.XL_CELL_DATE:
                return xlrd.xldate_as_datetime(cell.value, book.datemode)
            if cell.ctype == xlrd.XL_CELL_BOOLEAN:
                return bool(cell.value)
            if cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
                return None
            return cell.value

        rows = ((r + 1, [value(c) for c in sheet.row(r)]) for r in range(sheet.nrows))
        yield from _sheet_rows(reg, info, rows)
    finally:
        book.release_resources()


# ---- JSON ------------------------------------------------------------------------------------
def _json_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        return _cell_text(value)
    return json.dumps(value, ensure_ascii=False, default=str)


class _Utf8Reader(io.RawIOBase):
    """The decoded lines as a UTF-8 byte stream, for the streaming JSON parser."""

    def __init__(self, chunks: Iterator[tuple[int, list[str]]]):
        self._chunks = chunks
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self._buf:
            nxt = next(self._chunks, None)
            if nxt is None:
                return 0
            self._buf = ("\n".join(nxt[1]) + "\n").encode("utf-8")
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def _json_batches(lake: Lake, raw_rel: str, reg: Registration, info: DecodeInfo) -> Iterator[pa.RecordBatch]:
    import ijson

    _refuse_binary(lake, raw_rel)
    by_header = reg.header_map()
    present: set[str] = set()
    unmapped: dict[str, None] = {}
    out = _Rows(reg, info)

    def record_of(obj: dict) -> dict[str, str | None]:
        rec: dict[str, str | None] = {}
        for key, value in obj.items():
            name = by_header.get(normalize_header(str(key)))
            if name is None:
                unmapped.setdefault(str(key))
            elif name not in rec:
                rec[name] = _json_text(value)
        present.update(rec)
        return rec

    def add(first: int, obj, raw: str | None) -> Iterator[pa.RecordBatch]:
        if isinstance(obj, dict):
            out.add(first, first, record_of(obj), None, [])
        else:
            text = raw if raw is not None else json.dumps(obj, ensure_ascii=False, default=str)
            out.add(first, first, None, text, [reason("malformed_line")])
        if len(out) >= BATCH_ROWS:
            yield out.take()

    chunks = _line_chunks(lake, raw_rel, reg.source.encoding, info)
    head = next(chunks, None)
    lead = ""
    if head is not None:
        lead = next((ln.lstrip() for ln in head[1] if ln.strip()), "")
    if not lead:
        raise DecodeError("empty_file", "文件没有数据", "the file has no records")
    info.encoding = info.encoding or "utf-8"
    stream = itertools.chain([head], chunks)
    path = reg.source.record_path
    first_line = next(ln for ln in head[1] if ln.strip())
    lines_form = lead.startswith("{") and not path and _json_record(first_line, by_header)
    if lead.startswith("[") or (lead.startswith("{") and not lines_form):
        if lead.startswith("{") and not path:
            raise _wrapped_without_path(lake, raw_rel, reg, info)
        prefix = "item" if lead.startswith("[") else f"{path}.item"
        info.record_path = None if lead.startswith("[") else path
        try:
            for n, obj in enumerate(ijson.items(io.BufferedReader(_Utf8Reader(stream)), prefix), start=1):
                yield from add(n, obj, None)
        except ijson.JSONError as exc:
            raise DecodeError("bad_json", f"JSON 无法解析：{exc}", f"JSON cannot be parsed: {exc}") from None
        if info.rows == 0 and prefix != "item":
            raise DecodeError("no_records", f"JSON 中路径 {path} 下没有记录",
                              f"the JSON has no records at path {path!r}")
    else:
        for first, lines in stream:
            for k, line in enumerate(lines):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    obj = None
                yield from add(first + k, obj, line if not isinstance(obj, dict) else None)
    if info.rows == 0:
        raise DecodeError("empty_file", "文件没有数据", "the file has no records")
    info.header = sorted(present)
    info.mapped = {n: n for n in sorted(present)}
    info.unmapped = list(unmapped)
    info.missing_fields = [f.name for f in reg.fields if f.name not in present]
    info.missing_required = [f.name for f in reg.fields if f.required and f.name not in present]
    tail = out.take()
    if tail is not None:
        yield tail


def _json_record(line: str, by_header: dict[str, str]) -> bool:
    """A line that is one object with a registered key: the file is JSON Lines."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError:
        return False
    return isinstance(obj, dict) and any(normalize_header(str(k)) in by_header for k in obj)


def _wrapped_without_path(lake: Lake, raw_rel: str, reg: Registration, info: DecodeInfo) -> DecodeError:
    """A wrapped response and no record_path: name the arrays of objects it holds."""
    import ijson

    found: list[str] = []
    stream = _line_chunks(lake, raw_rel, reg.source.encoding, DecodeInfo(encoding=None))
    try:
        events = ijson.parse(io.BufferedReader(_Utf8Reader(stream)))
        last = None
        for prefix, event, _value in itertools.islice(events, 10_000):
            if last is not None and event == "start_map" and prefix == f"{last}.item" and last not in found:
                found.append(last)
            last = prefix if event == "start_array" else last
    except ijson.JSONError:
        pass
    if not found:
        return DecodeError("no_known_columns", "JSON 记录中没有任何已登记的字段",
                           "no key of the JSON records matches a registered field")
    where = "、".join(found)
    return DecodeError(
        "json_wrapped",
        f"JSON 是包装后的接口响应，记录位于 {where}：请在资源登记的 source.record_path 中写明记录路径",
        f"the JSON is a wrapped response with records under {', '.join(found)}: "
        "name the path in the registration's source.record_path",
    )


DECODERS = {"csv": _csv_batches, "xlsx": _xlsx_batches, "xls": _xls_batches, "json": _json_batches}


def decode_batches(lake: Lake, reg: Registration, raw_rel: str, info: DecodeInfo) -> Iterator[pa.RecordBatch]:
    """Record batches of ``raw_rel``, filling ``info`` as it goes (complete once exhausted)."""
    yield from DECODERS[reg.source.format](lake, raw_rel, reg, info)


def decode_file(lake: Lake, reg: Registration, raw_rel: str) -> tuple[pa.Table, DecodeInfo]:
    """The whole file at once, for small files and tests (conform streams through ``decode_batches``)."""
    info = DecodeInfo(encoding=None)
    batches = list(decode_batches(lake, reg, raw_rel, info))
    return pa.Table.from_batches(batches, schema=schema_for(reg)), info
