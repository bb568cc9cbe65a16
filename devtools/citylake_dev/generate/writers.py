"""Bytes of an export file: CSV, JSON Lines, and a hand-written XLSX workbook.

Hand-written so the bytes depend only on the rows and the seed (the ingest stage
recognises a file dropped twice by its checksum).
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import datetime
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape as _xml_escape

from citylake_dev.generate.cells import MISSING, GenerationError, RawLine, XDate

if TYPE_CHECKING:
    from citylake_dev.generate.values import FileGen


# ---- CSV ----------------------------------------------------------------------------------------
def csv_line(cells: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(cells)
    return buf.getvalue()


def parse_csv_line(line: str) -> list[str] | None:
    """The fields of one CSV line, or None when it does not parse (strict quoting)."""
    try:
        rows = list(csv.reader([line], strict=True))
    except csv.Error:
        return None
    return rows[0] if rows else []


def csv_bytes(g: FileGen, rows: list) -> bytes:
    eol = "\r\n" if g.damage_marker == "锟斤拷" else "\n"
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator=eol)
    writer.writerow(g.headers)
    for row in rows:
        if isinstance(row, RawLine):
            buf.write(row.text + eol)
        else:
            writer.writerow(row)
    text = buf.getvalue()
    try:
        data = text.encode(g.encoding)
    except UnicodeEncodeError as exc:
        raise GenerationError(f"{g.path}: text not encodable in {g.encoding}: {exc}") from None
    if g.encoding.lower().replace("-", "").startswith("gb") and not text.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            raise GenerationError(f"{g.path}: {g.encoding} bytes also decode as UTF-8")
    return data


# ---- JSON Lines -----------------------------------------------------------------------------------
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


def json_bytes(g: FileGen, rows: list) -> bytes:
    lines = []
    for row in rows:
        if isinstance(row, RawLine):
            lines.append(row.text)
        else:
            lines.append(json.dumps(json_obj(g, row), ensure_ascii=False))
    text = "\n".join(lines) + "\n"
    encoding = g.encoding if g.encoding.lower() not in ("xlsx",) else "utf-8"
    return text.encode(encoding)


# ---- XLSX ---------------------------------------------------------------------------------------
def _col(n: int) -> str:
    out = ""
    n += 1
    while n:
        n, r = divmod(n - 1, 26)
        out = chr(65 + r) + out
    return out


_NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
_RNS = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'


def xlsx_bytes(sheet: str, rows: list[list], created: datetime, creator: str) -> bytes:
    """A minimal, deterministic XLSX workbook: inline strings, numbers, and date cells (style 1)."""
    width = max((len(r) for r in rows), default=1)
    parts = []
    cols = [_col(k) for k in range(width)]
    for r, row in enumerate(rows, start=1):
        cells = []
        for k, cell in enumerate(row):
            if cell is None or cell is MISSING or cell == "":
                continue
            ref = f"{cols[k]}{r}"
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
        parts.append(f'<row r="{r}">{"".join(cells)}</row>')
    dim = f"A1:{_col(width - 1)}{max(len(rows), 1)}"
    sheet_xml = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet {_NS} {_RNS}>'
        f'<dimension ref="{dim}"/><sheetData>{"".join(parts)}</sheetData></worksheet>'
    )
    when = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    files = {
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
        "xl/worksheets/sheet1.xml": sheet_xml,
    }
    buf = io.BytesIO()
    stamp = (created.year, created.month, created.day, created.hour, created.minute, created.second)
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 0
            info.external_attr = 0
            zf.writestr(info, text.encode("utf-8"), compresslevel=6)
    return buf.getvalue()
