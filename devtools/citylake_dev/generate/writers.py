"""Bytes of an export file, written as the rows are made: CSV, JSON (lines, arrays, wrapped
responses), a hand-written XLSX workbook and a legacy .xls (xlwt).

Rows are made in chunks (:mod:`.build`); a *chunk writer* turns one chunk's rows into bytes (or, for
.xls, cells) and counts what the truth reports; a *file writer* puts the file's opening, every
chunk in order and its closing into one output file. Nothing holds more than a chunk, except the
.xls writer, whose format caps a sheet at 65,536 rows.

Hand-written (and xlwt, which stamps no time) so the bytes depend only on the rows and the seed:
the ingest stage recognises a file dropped twice by its checksum.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import shutil
import sys
import tempfile
import zipfile
from abc import ABC, abstractmethod
from datetime import datetime
from typing import IO, TYPE_CHECKING
from xml.sax.saxutils import escape as _xml_escape

import xlwt

from citylake_dev.generate.cells import MISSING, GenerationError, RawLine, XDate

if TYPE_CHECKING:
    from citylake_dev.generate.shapes import Layout
    from citylake_dev.generate.values import FileGen


# ---- CSV lines ------------------------------------------------------------------------------------
class _Lines(list):
    """A file-like sink for csv.writer that keeps each row's text apart (one write per row)."""

    write = list.append


def csv_line(cells: list[str], delimiter: str = ",") -> str:
    out = _Lines()
    csv.writer(out, delimiter=delimiter, lineterminator="").writerow(cells)
    return out[0]


def parse_csv_line(line: str, delimiter: str = ",") -> list[str] | None:
    """The fields of one CSV line, or None when it does not parse (strict quoting)."""
    try:
        rows = list(csv.reader([line], delimiter=delimiter, strict=True))
    except csv.Error:
        return None
    return rows[0] if rows else []


def body_encoding(encoding: str) -> str:
    """The codec for text after the start of a file: the same, without a second byte-order mark."""
    name = codecs.lookup(encoding).name
    if name == "utf-8-sig":
        return "utf-8"
    if name in ("utf-16", "utf-32"):
        return f"{name}-{'le' if sys.byteorder == 'little' else 'be'}"
    return encoding


def _encode(text: str, encoding: str, where: str) -> bytes:
    try:
        return text.encode(encoding)
    except UnicodeEncodeError as exc:
        raise GenerationError(f"{where}: text not encodable in {encoding}: {exc}") from None


def _is_gb(encoding: str) -> bool:
    return encoding.lower().replace("-", "").replace("_", "").startswith("gb")


# ---- JSON records -----------------------------------------------------------------------------------
def json_obj(g: FileGen, cells: list, full: bool = False) -> dict:
    """One row as an object keyed by header; ``full`` keeps MISSING keys (as null)."""
    obj = {}
    for h, cell in zip(g.headers, cells):
        if cell is MISSING:
            if full:
                obj[h] = None
            continue
        obj[h] = cell
    return obj


_JSON_OPEN = {
    ("array", True): "[\n",
    ("data", True): '{\n  "code": 0,\n  "msg": "success",\n  "data": [\n',
    ("result", True): '{\n  "code": 200,\n  "message": "操作成功",\n  "result": {\n    "records": [\n',
    ("array", False): "[",
    ("data", False): '{"code":0,"msg":"success","data":[',
    ("result", False): '{"code":200,"message":"操作成功","result":{"records":[',
}
_JSON_INDENT = {"array": "  ", "data": "    ", "result": "      "}


def _json_close(style: str, pretty: bool, total: int) -> str:
    if style == "array":
        return "\n]\n" if pretty else "]"
    if style == "data":
        return "\n  ]\n}\n" if pretty else "]}"
    if pretty:
        return f'\n    ],\n    "total": {total},\n    "size": {total},\n    "current": 1,\n    "pages": 1\n  }}\n}}\n'
    return f'],"total":{total},"size":{total},"current":1,"pages":1}}}}'


# ---- XLSX cells ---------------------------------------------------------------------------------------
def _col(n: int) -> str:
    out = ""
    n += 1
    while n:
        n, r = divmod(n - 1, 26)
        out = chr(65 + r) + out
    return out


_COLS = [_col(k) for k in range(64)]


def _colname(k: int) -> str:
    return _COLS[k] if k < len(_COLS) else _col(k)


def xlsx_row(r: int, row: list) -> tuple[str, int]:
    """(``<row>`` XML of sheet row ``r``, number of columns up to its last cell); empty cells are left out."""
    cells = []
    last = -1
    for k, cell in enumerate(row):
        if cell is None or cell is MISSING or cell == "":
            continue
        last = k
        ref = f"{_colname(k)}{r}"
        if isinstance(cell, XDate):
            cells.append(f'<c r="{ref}" s="1"><v>{cell.serial}</v></c>')
        elif isinstance(cell, bool):
            cells.append(f'<c r="{ref}" t="b"><v>{int(cell)}</v></c>')
        elif isinstance(cell, int):
            cells.append(f'<c r="{ref}"><v>{cell}</v></c>')
        elif isinstance(cell, float):
            cells.append(f'<c r="{ref}"><v>{cell!r}</v></c>')
        else:
            cells.append(
                f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{_xml_escape(str(cell))}</t></is></c>'
            )
    return f'<row r="{r}">{"".join(cells)}</row>', last + 1


# ---- chunk writers ------------------------------------------------------------------------------------
class ChunkWriter(ABC):
    """One chunk's rows, written; :meth:`result` gives the bytes and what the truth counts."""

    def __init__(self, g: FileGen):
        self.g = g
        self.lay: Layout = g.layout
        self.width = len(written_headers(g))
        self.stats: dict = {"short_rows": 0, "multiline_records": 0}

    @abstractmethod
    def add(self, i: int, row) -> None: ...

    @abstractmethod
    def result(self) -> dict: ...


class CsvChunk(ChunkWriter):
    def __init__(self, g: FileGen):
        super().__init__(g)
        self.lines = _Lines()
        self.writer = csv.writer(self.lines, delimiter=self.lay.delimiter, lineterminator=self.lay.eol)
        self.index: list[int] = []  # row index of each line written (mixed encodings only)

    def add(self, i: int, row) -> None:
        if isinstance(row, RawLine):
            self.lines.append(row.text + self.lay.eol)
        else:
            if len(row) < self.width:
                self.stats["short_rows"] += 1
            # only the layout puts line breaks in cells (values and noise never do)
            if self.lay.multiline_fields and any(isinstance(c, str) and ("\n" in c or "\r" in c) for c in row):
                self.stats["multiline_records"] += 1
            self.writer.writerow(row)
        if self.lay.gbk_rows:
            self.index.append(i)

    def result(self) -> dict:
        return text_result(self.g, self.lines, self.index, self.stats)


class JsonChunk(ChunkWriter):
    def __init__(self, g: FileGen):
        super().__init__(g)
        self.lines = _Lines()
        self.index: list[int] = []
        style, pretty = self.lay.json_style, self.lay.json_pretty
        self.container = style != "lines"
        self.pretty = pretty
        self.indent = _JSON_INDENT.get(style, "")
        self.sep = ",\n" if pretty else ","

    def add(self, i: int, row) -> None:
        if isinstance(row, RawLine):
            text = row.text
        elif self.pretty:
            text = json.dumps(json_obj(self.g, row), ensure_ascii=False, indent=2)
        elif self.container:  # an API body on one line has no spaces to spare
            text = json.dumps(json_obj(self.g, row), ensure_ascii=False, separators=(",", ":"))
        else:
            text = json.dumps(json_obj(self.g, row), ensure_ascii=False)
        if not self.container:
            self.lines.append(text + "\n")
        else:
            if self.pretty:
                text = self.indent + text.replace("\n", "\n" + self.indent)
            self.lines.append(text if i == 0 else self.sep + text)
        if self.lay.gbk_rows:
            self.index.append(i)

    def result(self) -> dict:
        return text_result(self.g, self.lines, self.index, self.stats)


def text_result(g: FileGen, pieces: list[str], index: list[int], stats: dict) -> dict:
    """Encode one chunk of text; with GBK row ranges, row by row, recording the GBK lines written."""
    out = dict(stats)
    where = g.path
    if not g.layout.gbk_rows:
        data = _encode("".join(pieces), body_encoding(g.encoding), where)
        out["gbk_runs"] = []
    else:
        ranges = g.layout.gbk_rows
        parts, runs, line = [], [], 0  # runs: (first, last) line offsets within the chunk
        for i, text in zip(index, pieces):
            piece = _encode(text, "utf-8", where)
            if any(a <= i <= b for a, b in ranges):
                try:
                    gbk = text.encode("gbk")
                except UnicodeEncodeError:
                    gbk = None  # e.g. U+FFFD in a damaged row: stays UTF-8
                if gbk is not None and gbk != piece and not _valid_utf8(gbk):
                    piece = gbk
                    n = text.count("\n") or 1
                    if runs and runs[-1][1] == line - 1:
                        runs[-1] = (runs[-1][0], line + n - 1)
                    else:
                        runs.append((line, line + n - 1))
            parts.append(piece)
            line += text.count("\n")
        data = b"".join(parts)
        out["gbk_runs"] = runs
    out["data"] = data
    out["newlines"] = data.count(b"\n")
    out["ascii"] = data.isascii()
    out["utf8"] = out["ascii"] or _valid_utf8(data)
    return out


def _valid_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class XlsxChunk(ChunkWriter):
    def __init__(self, g: FileGen):
        super().__init__(g)
        self.parts: list[str] = []
        self.first_row = len(self.lay.title_rows) + 2  # sheet row of data row 0
        self.max_width = 0

    def add(self, i: int, row) -> None:
        xml, width = xlsx_row(self.first_row + i, row)
        self.parts.append(xml)
        if width < self.width:
            self.stats["short_rows"] += 1
        self.max_width = max(self.max_width, width)

    def result(self) -> dict:
        return {**self.stats, "data": "".join(self.parts).encode("utf-8"), "width": self.max_width}


class XlsChunk(ChunkWriter):
    def __init__(self, g: FileGen):
        super().__init__(g)
        self.rows: list[list] = []

    def add(self, i: int, row) -> None:
        self.rows.append(row)

    def result(self) -> dict:
        return {**self.stats, "data": self.rows}


def chunk_writer(g: FileGen) -> ChunkWriter:
    cls = {"csv": CsvChunk, "json": JsonChunk, "xlsx": XlsxChunk, "xls": XlsChunk}[g.file_format]
    return cls(g)


def written_headers(g: FileGen) -> list[str]:
    """The header row as written: the fields' headers, and a repeated one where the layout adds it."""
    headers = list(g.headers)
    if g.layout.extra_column is not None:
        position, source = g.layout.extra_column
        headers.insert(position, g.headers[source])
    return headers


# ---- file writers --------------------------------------------------------------------------------------
class FileWriter(ABC):
    """One output file: its opening, each chunk's result in order, its closing."""

    def __init__(self, g: FileGen, out: IO[bytes]):
        self.g = g
        self.lay: Layout = g.layout
        self.out = out
        self.stats: dict = {"short_rows": 0, "multiline_records": 0}

    @abstractmethod
    def begin(self) -> None: ...

    def add(self, chunk: dict) -> None:
        for key in ("short_rows", "multiline_records"):
            self.stats[key] += chunk[key]

    @abstractmethod
    def close(self) -> dict: ...


class TextFile(FileWriter):
    def __init__(self, g: FileGen, out: IO[bytes]):
        super().__init__(g, out)
        self.newlines = 0
        self.last = b""
        self.gbk_lines: list[list[int]] = []
        self.utf8 = True
        self.ascii = True

    def _write(self, data: bytes, utf8: bool | None = None) -> None:
        if not data:
            return
        self.out.write(data)
        self.newlines += data.count(b"\n")
        self.last = data[-1:]
        self.ascii = self.ascii and data.isascii()
        self.utf8 = self.utf8 and (utf8 if utf8 is not None else _valid_utf8(data))

    def begin(self) -> None:
        self._write(_encode(self.opening(), self.g.encoding, self.g.path))

    @abstractmethod
    def opening(self) -> str: ...

    def closing(self) -> str:
        return ""

    def add(self, chunk: dict) -> None:
        super().add(chunk)
        base = self.newlines + 1  # line number of the chunk's first line
        for a, b in chunk["gbk_runs"]:
            if self.gbk_lines and self.gbk_lines[-1][1] == base + a - 1:
                self.gbk_lines[-1][1] = base + b
            else:
                self.gbk_lines.append([base + a, base + b])
        self._write(chunk["data"], chunk["utf8"])

    def close(self) -> dict:
        self._write(_encode(self.closing(), body_encoding(self.g.encoding), self.g.path))
        g = self.g
        if _is_gb(g.encoding) and not self.ascii and self.utf8:
            raise GenerationError(f"{g.path}: {g.encoding} bytes also decode as UTF-8")
        lines = self.newlines + (1 if self.last not in (b"\n", b"") else 0)
        return {**self.stats, "lines": lines, "gbk_lines": self.gbk_lines}


class CsvFile(TextFile):
    def opening(self) -> str:
        lay = self.lay
        headers = written_headers(self.g)
        text = []
        for cells in lay.title_rows:
            if lay.title_padded:  # as Excel saves a sheet: every row as wide as the table
                cells = cells + [""] * (len(headers) - len(cells))
            text.append((csv_line(cells, lay.delimiter) if cells else "") + lay.eol)
        text.append(csv_line(headers, lay.delimiter) + lay.eol)
        return "".join(text)


class JsonFile(TextFile):
    def opening(self) -> str:
        if self.lay.json_style == "lines":
            return ""
        return _JSON_OPEN[(self.lay.json_style, self.lay.json_pretty)]

    def closing(self) -> str:
        if self.lay.json_style == "lines":
            return ""
        return _json_close(self.lay.json_style, self.lay.json_pretty, self.g.rows)


class XlsxFile(FileWriter):
    """Sheet rows go to a temporary file first: the ``<dimension>`` comes before them in the XML."""

    def begin(self) -> None:
        self.body = tempfile.TemporaryFile(prefix="citylake-sheet-")
        headers = written_headers(self.g)
        self.width = len(headers)
        parts = []
        for r, cells in enumerate(self.lay.title_rows, start=1):
            if cells:
                parts.append(xlsx_row(r, cells)[0])
        parts.append(xlsx_row(len(self.lay.title_rows) + 1, headers)[0])
        self.body.write("".join(parts).encode("utf-8"))
        self.last_row = len(self.lay.title_rows) + 1 + self.g.rows

    def add(self, chunk: dict) -> None:
        super().add(chunk)
        self.width = max(self.width, chunk["width"])
        self.body.write(chunk["data"])

    def close(self) -> dict:
        g, lay = self.g, self.lay
        used = f"A1:{_col(self.width - 1)}{self.last_row}"
        dimension = used
        if lay.stale_dimension:
            # as a tool that rewrote the sheet but not its header claims
            dimension = f"A1:{_col(max(0, self.width - 3))}{max(1, self.last_row // 3)}"
        merges = [
            f'<mergeCell ref="A{r}:{_col(len(written_headers(g)) - 1)}{r}"/>'
            for r, cells in enumerate(lay.title_rows, start=1)
            if cells
        ]
        head = (
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet {_NS} {_RNS}>'
            f'<dimension ref="{dimension}"/><sheetData>'
        )
        tail = "</sheetData>"
        if merges:
            tail += f'<mergeCells count="{len(merges)}">{"".join(merges)}</mergeCells>'
        tail += "</worksheet>"
        self.body.seek(0)
        write_xlsx(self.out, lay.sheet, g.export_at, g.reg.department_name, head, self.body, tail)
        self.body.close()
        return {**self.stats, "dimension": dimension, "used_range": used}


class XlsFile(FileWriter):
    """A BIFF8 workbook by xlwt, which builds it in memory: .xls caps a sheet at 65,536 rows anyway."""

    def begin(self) -> None:
        self.book = xlwt.Workbook(encoding="utf-8")
        self.sheet = self.book.add_sheet(self.lay.sheet[:31])
        self.date_style = xlwt.easyxf(num_format_str="YYYY-MM-DD")
        self.title_style = xlwt.easyxf("font: bold on; align: horiz center")
        headers = written_headers(self.g)
        r = 0
        for cells in self.lay.title_rows:
            if cells:
                self.sheet.write_merge(r, r, 0, len(headers) - 1, cells[0], self.title_style)
            r += 1
        self._row(r, headers)
        self.next_row = r + 1

    def _row(self, r: int, cells: list) -> None:
        write = self.sheet.write
        for k, cell in enumerate(cells):
            if cell is None or cell is MISSING or cell == "":
                continue
            if isinstance(cell, XDate):
                write(r, k, cell.serial, self.date_style)
            elif isinstance(cell, (bool, int, float)):
                write(r, k, cell)
            else:
                write(r, k, str(cell))

    def add(self, chunk: dict) -> None:
        super().add(chunk)
        for cells in chunk["data"]:
            self._row(self.next_row, cells)
            self.next_row += 1

    def close(self) -> dict:
        self.book.save(self.out)
        return dict(self.stats)


def file_writer(g: FileGen, out: IO[bytes]) -> FileWriter:
    cls = {"csv": CsvFile, "json": JsonFile, "xlsx": XlsxFile, "xls": XlsFile}[g.file_format]
    return cls(g, out)


# ---- XLSX package ---------------------------------------------------------------------------------
_NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
_RNS = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'


def _package_parts(sheet: str, created: datetime, creator: str) -> dict[str, str]:
    when = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
            '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
            "</Types>"
        ),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
            '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/>'
            "</Relationships>"
        ),
        "docProps/core.xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            f"<dc:creator>{_xml_escape(creator)}</dc:creator>"
            f'<dcterms:created xsi:type="dcterms:W3CDTF">{when}</dcterms:created>'
            f'<dcterms:modified xsi:type="dcterms:W3CDTF">{when}</dcterms:modified>'
            "</cp:coreProperties>"
        ),
        "xl/workbook.xml": (
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<workbook {_NS} {_RNS}>'
            f'<sheets><sheet name="{_xml_escape(sheet)}" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
            '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>'
            "</Relationships>"
        ),
        "xl/styles.xml": (
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<styleSheet {_NS}>'
            '<fonts count="1"><font><sz val="11"/><name val="宋体"/><family val="3"/><charset val="134"/></font></fonts>'
            '<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>'
            '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
            '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
            '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
            '<xf numFmtId="14" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
            '<cellStyles count="1"><cellStyle name="常规" xfId="0" builtinId="0"/></cellStyles>'
            "</styleSheet>"
        ),
    }


def write_xlsx(
    out: IO[bytes], sheet: str, created: datetime, creator: str, head: str, body: IO[bytes], tail: str
) -> None:
    """A minimal, deterministic XLSX package whose sheet XML is ``head`` + ``body`` (a stream) + ``tail``."""
    stamp = (created.year, created.month, created.day, created.hour, created.minute, created.second)

    def info(name: str, size: int) -> zipfile.ZipInfo:
        zi = zipfile.ZipInfo(name, date_time=stamp)
        zi.compress_type = zipfile.ZIP_DEFLATED  # zlib's default level (6), as Excel
        zi.create_system = 0
        zi.external_attr = 0
        zi.file_size = size  # decides ZIP64 up front, from the content alone
        return zi

    head_b, tail_b = head.encode("utf-8"), tail.encode("utf-8")
    body.seek(0, os.SEEK_END)
    size = len(head_b) + body.tell() + len(tail_b)
    body.seek(0)
    parts = _package_parts(sheet, created, creator)
    with zipfile.ZipFile(out, "w") as zf:
        for name in (
            "[Content_Types].xml",
            "_rels/.rels",
            "docProps/core.xml",
            "xl/workbook.xml",
            "xl/_rels/workbook.xml.rels",
            "xl/styles.xml",
        ):
            data = parts[name].encode("utf-8")
            with zf.open(info(name, len(data)), "w") as part:
                part.write(data)
        with zf.open(info("xl/worksheets/sheet1.xml", size), "w") as part:
            part.write(head_b)
            shutil.copyfileobj(body, part, 1 << 20)
            part.write(tail_b)


def xlsx_bytes(sheet: str, rows: list[list], created: datetime, creator: str) -> bytes:
    """A whole small workbook in memory: inline strings, numbers, and date cells (style 1)."""
    width = max((len(r) for r in rows), default=1)
    body = io.BytesIO("".join(xlsx_row(r, row)[0] for r, row in enumerate(rows, start=1)).encode("utf-8"))
    head = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet {_NS} {_RNS}>'
        f'<dimension ref="A1:{_col(width - 1)}{max(len(rows), 1)}"/><sheetData>'
    )
    out = io.BytesIO()
    write_xlsx(out, sheet, created, creator, head, body, "</sheetData></worksheet>")
    return out.getvalue()
