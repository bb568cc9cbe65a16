"""Decode a raw departmental file into an all-text Arrow dataset (docs/conform-rules.md §1).

Decoding runs once, before Spark: transcoding GBK in Python is far faster than
Spark's legacy Java charsets, and splitting rows here lets us keep the original
text of rows that cannot be split into fields (they are quarantined, not lost).

Output columns: ``_source_row`` (int64), ``_raw_line`` (text of an unsplittable
row, else null), ``_pre_reasons`` (list of reason strings found here), and one
string column per registration field holding the original field text.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq

from citylake.core.lake import Lake
from citylake.core.reasons import reason
from citylake.core.registry import Registration, normalize_header

BATCH_ROWS = 50_000
# XLSX is a zip: refuse archives that would inflate beyond this, or far beyond their size (zip bombs).
XLSX_MAX_UNCOMPRESSED = 1 << 30
XLSX_MAX_RATIO = 200


class DecodeError(ValueError):
    """The whole file cannot be read (wrong encoding, not a workbook, zip bomb, no header…)."""

    def __init__(self, code: str, message_zh: str, message_en: str):
        self.code = code
        self.message_zh = message_zh
        self.message_en = message_en
        super().__init__(f"{code}: {message_en}")


@dataclass
class DecodeInfo:
    encoding: str | None
    rows: int = 0
    header: list[str] = field(default_factory=list)
    mapped: dict[str, str] = field(default_factory=dict)  # header text -> field
    unmapped: list[str] = field(default_factory=list)
    missing_fields: list[str] = field(default_factory=list)  # registered fields with no column
    missing_required: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def schema_for(reg: Registration) -> pa.Schema:
    return pa.schema(
        [("_source_row", pa.int64()), ("_raw_line", pa.string()), ("_pre_reasons", pa.list_(pa.string()))]
        + [(f.name, pa.string()) for f in reg.fields]
    )


# ---- encoding --------------------------------------------------------------------------------
# The GB family is read as GB18030, its superset, whichever member a registration declares.
GB_FAMILY = frozenset({"gbk", "gb2312", "gb18030", "cp936", "euc-cn"})


def legacy_encoding(declared: str | None) -> str:
    """The codec for a file that is not UTF-8: the registration's declared encoding (GB family →
    GB18030), or GB18030 when it declares UTF-8 (the usual legacy encoding of Chinese exports)."""
    name = codecs.lookup(declared or "utf-8").name
    if name in GB_FAMILY or name.startswith("utf"):
        return "gb18030"
    return name


def detect_encoding(stream: io.BufferedIOBase, declared: str | None = None) -> str:
    """UTF-8 BOM → utf-8-sig; whole file valid UTF-8 → utf-8 (an export that is pure ASCII reads the
    same either way); else the declared legacy encoding (:func:`legacy_encoding`)."""
    head = stream.read(3)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    try:
        decoder.decode(head)
        while chunk := stream.read(1 << 20):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
        return "utf-8"
    except UnicodeDecodeError:
        return legacy_encoding(declared)


# ---- header mapping --------------------------------------------------------------------------
def map_header(reg: Registration, header: list[str], info: DecodeInfo) -> dict[str, int]:
    """field name -> column index (first matching column wins)."""
    by_header = reg.header_map()
    positions: dict[str, int] = {}
    for idx, text in enumerate(header):
        name = by_header.get(normalize_header(text or ""))
        if name is None:
            if (text or "").strip():
                info.unmapped.append(text)
            continue
        if name not in positions:
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


# ---- writers ---------------------------------------------------------------------------------
class _Sink:
    """Accumulates rows and streams them to one Parquet file in the lake."""

    def __init__(self, lake: Lake, rel: str, reg: Registration, info: DecodeInfo):
        self.schema = schema_for(reg)
        self.fields = [f.name for f in reg.fields]
        self.info = info
        self.rel = rel
        lake.delete_dir(rel.rsplit("/", 1)[0])
        lake._ensure_parent(lake.fs_path(rel))
        self.writer = pq.ParquetWriter(lake.fs_path(rel), self.schema, filesystem=lake.fs, compression="zstd")
        self._reset()

    def _reset(self):
        self.cols: dict[str, list] = {n: [] for n in self.schema.names}

    def add(self, source_row: int, values: dict[str, str | None] | None, raw_line: str | None, reasons: list[str]):
        self.cols["_source_row"].append(source_row)
        self.cols["_raw_line"].append(raw_line)
        if raw_line is None:  # a row that could not be split keeps its one decode reason
            reasons = reasons + [reason("missing_column", f) for f in self.info.missing_required]
        self.cols["_pre_reasons"].append(reasons)
        for name in self.fields:
            self.cols[name].append(values.get(name) if values else None)
        self.info.rows += 1
        if len(self.cols["_source_row"]) >= BATCH_ROWS:
            self.flush()

    def flush(self):
        if self.cols["_source_row"]:
            self.writer.write_table(pa.table(self.cols, schema=self.schema))
            self._reset()

    def close(self):
        self.flush()
        self.writer.close()


# ---- CSV -------------------------------------------------------------------------------------
def _refuse_binary(lake: Lake, raw_rel: str) -> None:
    with lake.open_read(raw_rel) as f:
        head = f.read(8192)
    if b"\x00" in head:
        raise DecodeError("binary_file", "文件是二进制数据，不是文本表格", "the file is binary, not delimited text")


def _decode_csv(lake: Lake, raw_rel: str, reg: Registration, sink_factory) -> DecodeInfo:
    _refuse_binary(lake, raw_rel)
    with lake.open_read(raw_rel) as f:
        encoding = detect_encoding(f, reg.source.encoding)
    info = DecodeInfo(encoding=encoding)
    delimiter = getattr(reg.source, "delimiter", ",") or ","
    with lake.open_read(raw_rel) as f:
        text = io.TextIOWrapper(f, encoding=encoding, newline="")
        lines = _numbered_lines(text)
        header = None
        for _lineno, line in lines:
            if line.strip():
                try:
                    header = next(csv.reader([line], delimiter=delimiter, strict=True))
                except csv.Error as exc:
                    raise DecodeError("bad_header", "表头无法解析", f"header line cannot be parsed: {exc}") from None
                break
        if header is None:
            raise DecodeError("empty_file", "文件没有表头和数据", "the file has no header and no rows")
        positions = map_header(reg, header, info)
        sink = sink_factory(info)
        width = len(header)
        for lineno, line in lines:
            if not line.strip():
                continue
            try:
                cells = next(csv.reader([line], delimiter=delimiter, strict=True))
            except csv.Error:
                sink.add(lineno, None, line, [reason("malformed_line")])
                continue
            if len(cells) != width:
                sink.add(lineno, None, line, [reason("column_count")])
                continue
            sink.add(lineno, {name: cells[idx] for name, idx in positions.items()}, None, [])
        sink.close()
    return info


def _numbered_lines(text: io.TextIOBase) -> Iterator[tuple[int, str]]:
    for lineno, line in enumerate(text, start=1):
        yield lineno, line.rstrip("\r\n")


# ---- XLSX ------------------------------------------------------------------------------------
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
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(sep=" ")
    if isinstance(value, (date, time)):
        return value.isoformat()
    return str(value)


def _guard_zip(data: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
    except zipfile.BadZipFile:
        raise DecodeError("not_a_workbook", "文件不是有效的 XLSX 工作簿", "the file is not an XLSX workbook") from None
    packed = sum(i.compress_size for i in infos) or 1
    unpacked = sum(i.file_size for i in infos)
    if unpacked > XLSX_MAX_UNCOMPRESSED or unpacked / packed > XLSX_MAX_RATIO:
        raise DecodeError(
            "zip_bomb",
            f"XLSX 解压后过大（{unpacked} 字节，压缩比 {unpacked // packed}），疑似压缩炸弹，已拒收",
            f"XLSX would inflate to {unpacked} bytes (ratio {unpacked // packed}): refused as a zip bomb",
        )


def _decode_xlsx(lake: Lake, raw_rel: str, reg: Registration, sink_factory) -> DecodeInfo:
    import openpyxl

    data = lake.read_bytes(raw_rel)
    _guard_zip(data)
    info = DecodeInfo(encoding=None)
    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for broken workbooks
        raise DecodeError("not_a_workbook", "文件不是有效的 XLSX 工作簿", f"not a readable workbook: {exc}") from None
    try:
        sheet_name = reg.source.sheet
        if sheet_name and sheet_name not in wb.sheetnames:
            raise DecodeError("no_sheet", f"工作簿中没有工作表“{sheet_name}”", f"the workbook has no sheet {sheet_name!r}")
        ws = wb[sheet_name] if sheet_name else wb.worksheets[0]
        rows = enumerate(ws.iter_rows(values_only=True), start=1)
        header = None
        for _, values in rows:
            if any(v is not None and str(v).strip() for v in values):
                header = [_cell_text(v) or "" for v in values]
                break
        if header is None:
            raise DecodeError("empty_file", "工作表没有表头和数据", "the sheet has no header and no rows")
        while header and not header[-1].strip():
            header.pop()
        positions = map_header(reg, header, info)
        sink = sink_factory(info)
        width = len(header)
        for rowno, values in rows:
            texts = [_cell_text(v) for v in values]
            if not any(t is not None and t.strip() for t in texts):
                continue
            if any(t is not None and t.strip() for t in texts[width:]):
                raw_line = ",".join("" if t is None else t for t in texts)
                sink.add(rowno, None, raw_line, [reason("column_count")])
                continue
            texts += [None] * (width - len(texts))
            sink.add(rowno, {name: texts[idx] for name, idx in positions.items()}, None, [])
        sink.close()
    finally:
        wb.close()
    return info


# ---- JSON ------------------------------------------------------------------------------------
def _json_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _cell_text(value)
    return json.dumps(value, ensure_ascii=False)


def _decode_json(lake: Lake, raw_rel: str, reg: Registration, sink_factory) -> DecodeInfo:
    _refuse_binary(lake, raw_rel)
    with lake.open_read(raw_rel) as f:
        encoding = detect_encoding(f, reg.source.encoding)
    info = DecodeInfo(encoding=encoding)
    by_header = reg.header_map()
    seen_unmapped: dict[str, None] = {}

    def record_of(obj: dict) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for key, value in obj.items():
            name = by_header.get(normalize_header(str(key)))
            if name is None:
                seen_unmapped.setdefault(str(key))
            elif name not in out:
                out[name] = _json_text(value)
        return out

    with lake.open_read(raw_rel) as f:
        text = io.TextIOWrapper(f, encoding=encoding).read()
    stripped = text.lstrip()
    items: Iterator[tuple[int, str | None, object]]
    if stripped.startswith("["):
        try:
            array = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise DecodeError("bad_json", f"JSON 数组无法解析：{exc}", f"JSON array cannot be parsed: {exc}") from None
        items = ((i, None, obj) for i, obj in enumerate(array, start=1))
    else:

        def lines():
            for lineno, line in enumerate(text.splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    yield lineno, line, json.loads(line)
                except json.JSONDecodeError:
                    yield lineno, line, None

        items = lines()
    # Fields are known from the registration; a field never seen in any object is "missing".
    present: set[str] = set()
    buffered = []
    for rowno, line, obj in items:
        if isinstance(obj, dict):
            rec = record_of(obj)
            present.update(rec)
            buffered.append((rowno, rec, None, []))
        else:
            raw = line if line is not None else json.dumps(obj, ensure_ascii=False)
            buffered.append((rowno, None, raw, [reason("malformed_line")]))
    info.header = sorted(present)
    info.mapped = {n: n for n in sorted(present)}
    info.unmapped = list(seen_unmapped)
    info.missing_fields = [f.name for f in reg.fields if f.name not in present]
    info.missing_required = [f.name for f in reg.fields if f.required and f.name not in present]
    if not buffered:
        raise DecodeError("empty_file", "文件没有数据", "the file has no records")
    sink = sink_factory(info)
    for rowno, rec, raw, reasons in buffered:
        sink.add(rowno, rec, raw, reasons)
    sink.close()
    return info


DECODERS = {"csv": _decode_csv, "xlsx": _decode_xlsx, "json": _decode_json}


def decode_to_parquet(lake: Lake, reg: Registration, raw_rel: str, out_rel: str) -> DecodeInfo:
    """Decode ``raw_rel`` and write the all-text rows to ``out_rel`` (a Parquet file path)."""
    decoder = DECODERS[reg.source.format]
    try:
        return decoder(lake, raw_rel, reg, lambda info: _Sink(lake, out_rel, reg, info))
    except UnicodeDecodeError as exc:
        raise DecodeError(
            "bad_encoding",
            "文件编码无法识别（既不是 UTF-8 也不是 GB18030/GBK）",
            f"the file is neither UTF-8 nor GB18030/GBK: {exc}",
        ) from None
