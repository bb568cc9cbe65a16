"""Drop templates: for every registered file-drop resource the XLSX and CSV carry the accepted
header and a valid example row, the real decoder maps every column of both, the “填写说明” sheet
explains every field; publishing writes them next to the internal site and links them there only."""

from __future__ import annotations

import io
import json
from datetime import date, datetime

import openpyxl
import pytest

from citylake.core.identifiers import CHECKERS, normalize_text
from citylake.core.lake import Lake
from citylake.core.registry import FieldSpec, Registration, load_registrations
from citylake.core.settings import REPO_ROOT
from citylake.stages import drop_template
from citylake.stages.decode import decode_file
from citylake.stages.publish.publish import publish

REGS = load_registrations(REPO_ROOT / "registrations")
FILE_REGS = [r for r in REGS if r.source.kind == "file"]
SQL_REGS = [r for r in REGS if r.source.kind == "sql"]
NOW = datetime(2025, 6, 30, 4, 0)


def test_the_repository_has_both_kinds():
    assert FILE_REGS and SQL_REGS


@pytest.mark.parametrize("kind", sorted(drop_template.IDENTIFIER_EXAMPLES))
def test_identifier_examples_are_valid(kind):
    result = CHECKERS[kind](drop_template.IDENTIFIER_EXAMPLES[kind])
    assert result.valid, result


def _assert_valid(f: FieldSpec, text: str | None) -> None:
    """The conform rules (docs/conform-rules.md) for one example value."""
    value = normalize_text(text)
    assert value is not None, f"{f.name}: empty example"
    if f.check == "codelist":
        assert value in f.codes, f.name
    elif f.check:
        kwargs = {"legacy15": f.legacy15} if f.check == "cn_id" else {}
        result = CHECKERS[f.check](value, **kwargs)
        assert result.valid, (f.name, result)
    if f.type == "date":
        date.fromisoformat(value)
    elif f.type == "timestamp":
        datetime.fromisoformat(value)
    elif f.type == "boolean":
        assert value in ("是", "否")
    elif f.type in ("integer", "decimal", "double", "money"):
        number = float(value)
        if f.type == "integer":
            assert number.is_integer(), f.name
        assert f.min is None or number >= f.min, f.name
        assert f.max is None or number <= f.max, f.name


def _as_format(reg: Registration, fmt: str) -> Registration:
    """The same registration delivered as ``fmt``: header mapping does not depend on the format."""
    if reg.source.format == fmt:
        return reg
    return reg.model_copy(update={"source": reg.source.model_copy(update={"format": fmt})})


def _sheets(data: bytes) -> list[list[tuple]]:
    wb = openpyxl.load_workbook(io.BytesIO(data))
    return [list(ws.iter_rows(values_only=True)) for ws in wb.worksheets]


def _decode(settings, reg: Registration, name: str, data: bytes):
    lake = Lake.from_settings(settings)
    lake.write_bytes(f"raw/t/{name}", data)
    table, info = decode_file(lake, reg, f"raw/t/{name}")
    return info, table.to_pylist()


@pytest.fixture(params=FILE_REGS, ids=lambda r: r.resource)
def reg(request) -> Registration:
    return request.param


def test_xlsx_sheet1_is_the_header_and_a_valid_example(reg):
    wb = openpyxl.load_workbook(io.BytesIO(drop_template.xlsx_bytes(reg)))
    ws = wb.worksheets[0]
    rows = list(ws.iter_rows(values_only=True))
    assert list(rows[0]) == [f.title for f in reg.fields]
    assert len(rows) == 2
    assert ws.title == (reg.source.sheet or drop_template.DATA_SHEET)
    for f, value in zip(reg.fields, rows[1], strict=True):
        assert value is not None, f.name
        if f.type in ("string", "text") or f.check:  # text cells keep leading zeros and long IDs
            assert isinstance(value, str), f.name
        if f.type in ("date", "timestamp"):
            assert isinstance(value, datetime), f.name  # a real date cell


def test_xlsx_sheet2_explains_every_field(reg):
    wb = openpyxl.load_workbook(io.BytesIO(drop_template.xlsx_bytes(reg)))
    assert wb.sheetnames[1] == drop_template.HELP_SHEET
    rows = list(wb.worksheets[1].iter_rows(values_only=True))
    assert list(rows[0]) == drop_template.HELP_COLUMNS
    lines = rows[1:len(reg.fields) + 1]
    assert len(lines) == len(reg.fields)
    col = {name.split()[0]: i for i, name in enumerate(drop_template.HELP_COLUMNS)}
    for f, line in zip(reg.fields, lines, strict=True):
        assert line[col["列名（表头）"]] == f.title and line[col["字段名"]] == f.name
        assert line[col["必填"]] == ("是" if f.required else "否")
        assert line[col["个人信息"]] == ("是" if f.sensitivity == "personal" else "否")
        for alias in f.aliases:
            assert alias in line[col["其他可用表头"]], (f.name, alias)
        if f.codes:
            for code, meaning in f.codes.items():
                assert code in line[col["允许值"]] and meaning in line[col["允许值"]], (f.name, code)
        else:
            assert line[col["允许值"]] == ("是；否" if f.type == "boolean" else "—")
        fmt = line[col["格式要求"]] or ""
        if f.type == "money":
            assert f.unit in fmt
        if f.type == "date":
            assert "2024-05-01" in fmt
        if f.min is not None:
            assert "取值范围" in fmt
        assert line[col["示例"]] == drop_template.example_text(f)
    # after the field lines: a blank row, then general notes (example row to delete, drop format)
    notes = " ".join(r[0] for r in rows[len(reg.fields) + 2:] if r and r[0])
    assert "删除示例行" in notes and reg.source.pattern in notes


def test_csv_is_header_and_example_in_the_declared_encoding(reg):
    data = drop_template.csv_bytes(reg)
    text = data.decode(reg.source.encoding)  # strict: every byte is in the declared encoding
    if reg.source.encoding == "utf-8-sig":
        assert data.startswith(b"\xef\xbb\xbf")  # Excel opens it as UTF-8
    lines = text.split("\r\n")
    assert lines[2:] == [""] and len(lines) == 3
    delimiter = reg.source.delimiter or ","
    assert lines[0].split(delimiter) == [f.title for f in reg.fields]
    assert lines[1].split(delimiter) == [drop_template.example_text(f) for f in reg.fields]
    assert drop_template.template_rows(reg) == [[f.title for f in reg.fields],
                                               [drop_template.example_text(f) for f in reg.fields]]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_the_decoder_maps_every_column_and_the_example_is_valid(settings, reg, fmt):
    names = drop_template.file_names(reg.resource)
    data = drop_template.csv_bytes(reg) if fmt == "csv" else drop_template.xlsx_bytes(reg)
    info, rows = _decode(settings, _as_format(reg, fmt), names[fmt], data)
    assert info.unmapped == [] and info.missing_fields == [] and info.missing_required == []
    assert info.mapped == {f.title: f.name for f in reg.fields}
    assert len(rows) == 1 and rows[0]["_raw_line"] is None and rows[0]["_pre_reasons"] == []
    for f in reg.fields:
        assert rows[0][f.name] == drop_template.example_text(f), f.name
        _assert_valid(f, rows[0][f.name])


def test_a_json_drop_takes_the_same_header_as_keys(settings):
    json_regs = [r for r in FILE_REGS if r.source.format == "json"]
    assert json_regs
    for reg in json_regs:
        header, example = drop_template.template_rows(reg)
        line = json.dumps(dict(zip(header, example, strict=True)), ensure_ascii=False) + "\n"
        info, rows = _decode(settings, reg, "t.jsonl", line.encode(reg.source.encoding))
        assert info.unmapped == [] and info.missing_fields == []
        assert [rows[0][f.name] for f in reg.fields] == example


@pytest.mark.parametrize("reg", SQL_REGS, ids=lambda r: r.resource)
def test_a_sql_source_has_no_template(reg):
    for build in (drop_template.template_rows, drop_template.xlsx_bytes, drop_template.csv_bytes):
        with pytest.raises(drop_template.NoDropTemplate, match="sql source"):
            build(reg)


def test_text_the_declared_encoding_cannot_hold_is_a_clear_error():
    reg = FILE_REGS[0]
    ascii_reg = reg.model_copy(update={"source": reg.source.model_copy(update={"encoding": "ascii"})})
    with pytest.raises(ValueError, match="cannot be written in the declared encoding ascii"):
        drop_template.csv_bytes(ascii_reg)


# ---- publishing --------------------------------------------------------------------------------
def test_publish_writes_the_templates_and_the_internal_pages_link_them(settings):
    result = publish(settings, now=NOW)  # an empty lake
    site = settings.directory_dir / "site"
    for reg in FILE_REGS:
        names = drop_template.file_names(reg.resource)
        # the XLSX carries its save time, so compare what it holds
        assert _sheets((site / "templates" / names["xlsx"]).read_bytes()) == _sheets(drop_template.xlsx_bytes(reg))
        assert (site / "templates" / names["csv"]).read_bytes() == drop_template.csv_bytes(reg)
        page = (site / "r" / f"{reg.resource}.html").read_text(encoding="utf-8")
        assert "下载报送模板" in page
        assert f'href="../templates/{names["xlsx"]}"' in page and f'href="../templates/{names["csv"]}"' in page
    for reg in SQL_REGS:
        page = (site / "r" / f"{reg.resource}.html").read_text(encoding="utf-8")
        assert "下载报送模板" not in page and "templates/" not in page
        assert not list((site / "templates").glob(f"{reg.resource}_*"))
    opened = list((site / "open").rglob("*.html"))
    assert opened, "some resources are open"
    for page in opened:
        html = page.read_text(encoding="utf-8")
        assert "下载报送模板" not in html and "_template." not in html, page
    assert not (site / "open" / "templates").exists()
    assert not any("drop template" in w for w in result.warnings)


def test_templates_of_a_resource_no_longer_registered_are_removed(settings):
    publish(settings, now=NOW)
    gone = FILE_REGS[0]
    publish(settings, [r for r in REGS if r is not gone], now=NOW)
    templates = settings.directory_dir / "site" / "templates"
    assert not list(templates.glob(f"{gone.resource}_template.*"))
    assert (templates / drop_template.file_names(FILE_REGS[1].resource)["xlsx"]).exists()


def test_publish_with_the_lake_on_s3_mirrors_the_templates(s3_settings):
    publish(s3_settings, now=NOW)
    lake = Lake.from_settings(s3_settings)
    for reg in FILE_REGS:
        for name in drop_template.file_names(reg.resource).values():
            local = (s3_settings.directory_dir / "site" / "templates" / name).read_bytes()
            assert lake.read_bytes(f"directory/site/templates/{name}") == local
        page = lake.read_bytes(f"directory/site/r/{reg.resource}.html").decode("utf-8")
        assert f"../templates/{reg.resource}_template.xlsx" in page
