"""`citylake generate`, streaming and in shapes: chunked output that is byte-for-byte the same in
any number of processes, keys unique by construction, flat memory, and each shape's file read
here independently (csv, json, zip/XML, BIFF records) to check it is what its truth says.

The reference reading of docs/conform-rules.md is :func:`tests.devtools.test_generate.reference_reasons`.
Where a test compares its reasons with the truth, it uses registrations whose fields that reference
reads by the current rules: air quality, and two registrations made here (a market-entity list and a
person list) without money or date fields, whose rules changed lately (conform-rules.md section 4).
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import re
import struct
import textwrap
import tracemalloc
import zipfile
from collections import Counter
from dataclasses import replace

import openpyxl
import pytest
import yaml

from citylake.core.identifiers import check_cn_id, check_uscc, divisions, normalize_text
from citylake.core.lake import Lake
from citylake.core.registry import FileSource, load_registration, load_registrations, normalize_header
from citylake_dev import generate as gen
from citylake_dev.generate import shapes
from citylake_dev.generate.entities import Permutation
from tests.devtools.test_generate import decode_rows, reference_reasons

SEED = 20261121


@pytest.fixture(scope="module")
def regs():
    from citylake.core.settings import REPO_ROOT

    return {r.resource: r for r in load_registrations(REPO_ROOT / "registrations")}


_HEAD = """
    provider: {name: 郑州市市场监督管理局, code: "1141010052601815X8"}
    classification: {category: "1", item: "02", catalog: "009"}
    summary: 测试用登记表。
    format: {category: 电子表格, type: csv}
    update_cycle: 每日
    share: {type: 无条件共享}
"""
_MARKET = """
    resource: market_entities
    name: 市场主体名录
    department: scjg
    department_name: 郑州市市场监督管理局
    source: {kind: file, format: csv, pattern: "*.csv", encoding: gbk}
    key: [uscc]
    fields:
      - {name: uscc, title: 统一社会信用代码, aliases: [信用代码], type: string, required: true, unique: true, check: uscc}
      - {name: enterprise_name, title: 企业名称, type: string, length: 200, required: true}
      - {name: legal_rep, title: 法定代表人, type: string, required: true}
      - {name: legal_rep_id, title: 法定代表人身份证号码, type: string, check: cn_id}
      - {name: division_code, title: 住所所在行政区划, type: string, required: true, check: division_code}
      - {name: address, title: 住所, type: string, length: 400}
      - {name: employees, title: 从业人数, type: integer, min: 0, max: 100000}
      - {name: status, title: 登记状态, type: string, required: true, check: codelist, codes: {存续: 存续, 注销: 注销, 吊销: 吊销}}
"""
_PEOPLE = """
    resource: residents
    name: 人员名册
    department: gaj
    department_name: 郑州市公安局
    source: {kind: file, format: json, pattern: "*.json*", encoding: utf-8}
    key: [cn_id]
    fields:
      - {name: cn_id, title: 公民身份号码, type: string, required: true, unique: true, check: cn_id}
      - {name: person_name, title: 姓名, type: string, required: true}
      - {name: gender, title: 性别, type: string, required: true, check: codelist, codes: {"1": 男, "2": 女, "9": 未说明}}
      - {name: mobile, title: 手机号码, type: string, check: mobile}
      - {name: address, title: 住址, type: string, length: 200}
"""


def _registration(folder, text: str, **replace_text):
    body = textwrap.dedent(text)
    for old, new in replace_text.items():
        body = body.replace(old, new)
    body += textwrap.dedent(_HEAD)
    raw = yaml.safe_load(body)
    path = folder / raw["department"] / f"{raw['resource']}.yaml"  # the layout registrations/ has
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
    return load_registration(path)


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    """Market entities, a GBK CSV keyed by USCC: no money or date field."""
    return _registration(tmp_path_factory.mktemp("regs"), _MARKET)


@pytest.fixture(scope="module")
def people(tmp_path_factory):
    """A person list in JSON Lines keyed by citizen ID: no money or date field."""
    return _registration(tmp_path_factory.mktemp("regs"), _PEOPLE)


def _make(settings, reg, shape=None, rows=400, seed=SEED, **kw):
    """(truth entry, bytes, truth) of the one file made for ``reg``."""
    truth = gen.generate(settings, [reg], rows=rows, seed=seed, shape=shape, **kw)
    [(path, entry)] = truth["files"].items()
    return entry, Lake.from_settings(settings).read_bytes(path), truth


def _with(reg, **source):
    return reg.model_copy(update={"source": FileSource(**{**reg.source.model_dump(), **source})})


def _as_registered(reg, entry, key="registration_overrides"):
    """The registration with the entry's overrides applied, as a liaison would edit its YAML."""
    src = entry.get(key, {}).get("source", {})
    return reg.model_copy(update={"source": FileSource(**{**reg.source.model_dump(), **src})}) if src else reg


def _text(entry, data: bytes) -> str:
    return data.decode("gb18030" if entry["encoding"] in ("gbk", "gb18030") else "utf-8-sig")


def _files(settings, truth):
    lake = Lake.from_settings(settings)
    return {path: lake.read_bytes(path) for path in truth["files"]}


# ---- streaming ------------------------------------------------------------------------------------
def test_chunks_made_in_other_processes_give_the_same_bytes(settings, regs, tmp_path):
    pair = [regs["enterprise_registration"], regs["housing_fund_units"], regs["resident_population"]]
    here = gen.generate(settings, pair, rows=900, seed=3, workers=1, chunk_rows=250)
    other = replace(settings, home=tmp_path / "par", lake_uri=(tmp_path / "par" / "lake").as_uri())
    there = gen.generate(other, pair, rows=900, seed=3, workers=2, chunk_rows=250)
    assert there["files"] == here["files"]
    assert _files(other, there) == _files(settings, here)
    # another chunk size is another random stream per chunk: other bytes, the same kind of file
    third = replace(settings, home=tmp_path / "third", lake_uri=(tmp_path / "third" / "lake").as_uri())
    again = gen.generate(third, pair, rows=900, seed=3, workers=1, chunk_rows=300)
    assert set(again["files"]) == set(here["files"])
    assert all(again["files"][p]["sha256"] != e["sha256"] for p, e in here["files"].items())


@pytest.mark.parametrize("shape", ["mixed_encoding", "json_wrapped_result", "xlsx_stale_dimension"])
def test_shapes_in_chunks_are_the_same_in_any_number_of_processes(settings, regs, tmp_path, shape):
    reg = regs["enterprise_registration"]
    one, data1, _ = _make(settings, reg, shape, rows=700, workers=1, chunk_rows=200)
    other = replace(settings, home=tmp_path / "p2", lake_uri=(tmp_path / "p2" / "lake").as_uri())
    two, data2, _ = _make(other, reg, shape, rows=700, workers=2, chunk_rows=200)
    assert one == two and data1 == data2


@pytest.mark.parametrize("which", ["market", "market_xlsx", "people", "air_quality_hourly"])
def test_a_file_made_in_many_chunks_has_a_truth_that_adds_up(settings, regs, market, people, which):
    import hashlib

    reg = {"market": market, "market_xlsx": _with(market, format="xlsx", pattern="*.xlsx"), "people": people}.get(
        which
    ) or regs[which]
    entry, data, _ = _make(settings, reg, rows=2500, chunk_rows=600)
    bad = sum(entry["bad"].values())
    assert entry["rows"] == 2500 and entry["good"] == 2500 - bad and 0.08 <= bad / 2500 <= 0.15
    assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["size"] == len(data)
    counts, received, per_row = reference_reasons(reg, data, settings.division_retired_window_years)
    assert received == entry["rows"]
    assert dict(counts) == entry["bad"]
    assert all(len(r) <= 1 for r in per_row)
    # duplicates copy a recent good row, in every chunk
    assert entry["bad"].get("duplicate_row", 0) >= 4 and entry["bad"].get("duplicate_key", 0) >= 4
    if reg.source.format == "csv":
        assert entry["lines"] == _text(entry, data).count("\n") == 2501
        assert entry["short_rows"] == 0  # a column-count defect is a cell too many, never one too few
    if reg.source.format == "json":
        assert entry["lines"] == 2500 and "short_rows" not in entry


def test_memory_does_not_grow_with_the_rows(settings, regs):
    """The rows go to the file chunk by chunk: three times the rows, about the same peak."""
    reg = regs["enterprise_registration"]

    def peak(rows):
        tracemalloc.start()
        gen.generate(settings, [reg], rows=rows, seed=1, workers=1, chunk_rows=400)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    small, big = peak(1200), peak(3600)
    assert big < small * 1.3, (small, big)


def test_keys_are_unique_by_construction(settings, regs):
    for n in (1, 2, 3, 7, 64, 1000, 4097):
        perm = Permutation(n, f"k{n}")
        assert sorted(perm(i) for i in range(n)) == list(range(n))
    with pytest.raises(gen.GenerationError):
        Permutation(10, "k")(10)
    # no shipped registration needs the set of keys already written
    for reg in regs.values():
        assert not gen.FileGen(settings, reg, SEED, 0, 1, 100).key_fallback, reg.resource
    # citizen IDs (the resident register's key) and USCCs (the enterprise register's): distinct and valid
    from citylake_dev.generate.entities import Record

    people = gen.FileGen(settings, regs["resident_population"], SEED, 0, 1, 20_000)
    ids = [Record(people, i).person()["cn_id"] for i in range(20_000)]
    assert len(set(ids)) == len(ids) and all(check_cn_id(x).valid for x in ids[::7])
    firms = gen.FileGen(settings, regs["enterprise_registration"], SEED, 0, 1, 20_000)
    codes = [Record(firms, i).org()["uscc"] for i in range(20_000)]
    assert len(set(codes)) == len(codes) and all(check_uscc(c).valid for c in codes[::7])
    assert sum(c[8:10] == "MA" for c in codes) > 10_000  # the newer MA… bodies, and the older digit ones
    assert sum(c[8:16].isdigit() for c in codes) > 1000


def test_a_key_no_field_can_carry_still_comes_out_unique(settings, tmp_path):
    """A key of names only: the generator keeps the keys it wrote (memory grows, the rows are right)."""
    reg = _registration(tmp_path, _MARKET, **{"key: [uscc]": "key: [enterprise_name]"})
    assert gen.FileGen(settings, reg, 1, 0, 1, 10).key_fallback
    entry, data, _ = _make(settings, reg, rows=600, chunk_rows=250)
    counts, received, _ = reference_reasons(reg, data)
    assert received == 600 and dict(counts) == entry["bad"]


# ---- CSV shapes -------------------------------------------------------------------------------------
def test_csv_multiline_cells_are_one_record_each(settings, regs):
    reg = regs["enterprise_registration"]
    entry, data, _ = _make(settings, reg, "csv_multiline", rows=600)
    text = _text(entry, data)
    records = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    assert len(records) - 1 == entry["rows"] == 600
    broken = [r for r in records if any("\n" in c or "\r" in c for c in r)]
    assert len(broken) == entry["shape"]["multiline_records"] >= 10
    assert entry["lines"] == text.count("\n") > 601
    assert "malformed_line" not in entry["bad"]  # an unclosed quote would swallow the lines after it
    # the breaks are in addresses (the registration's free text), \n and \r\n alike
    address = next(k for k, h in enumerate(records[0]) if reg.header_map().get(normalize_header(h)) == "address")
    assert all(any("\n" in c for c in r) == ("\n" in r[address]) for r in broken if len(r) == len(records[0]))
    assert any("\r\n" in r[address] for r in broken) and any(re.search(r"[^\r]\n", r[address]) for r in broken)


def test_csv_crlf_throughout(settings, regs):
    reg = regs["real_estate_registration"]  # LF when plain
    entry, data, _ = _make(settings, reg, "csv_crlf")
    assert entry["shape"]["line_end"] == "\r\n"
    assert data.count(b"\n") == data.count(b"\r\n") == entry["lines"] == 401
    plain, plain_data, _ = _make(settings, reg)
    assert b"\r\n" not in plain_data and plain["lines"] == 401


def test_csv_delimiters_tab_semicolon_pipe(settings, regs):
    reg = regs["enterprise_registration"]
    truth = gen.generate(settings, [reg], rows=300, seed=SEED, shape="csv_delimiter", files_per_resource=3)
    files = _files(settings, truth)
    seen = set()
    for path, entry in truth["files"].items():
        d = entry["shape"]["delimiter"]
        seen.add(d)
        assert entry["registration_overrides"] == {}  # sniffed from the header line
        assert entry["registration_declared"] == {"source": {"delimiter": d}}
        lines = _text(entry, files[path]).splitlines()
        assert next(csv.reader([lines[0]], delimiter=d)) == entry["headers"]
        assert "," not in lines[0] and d in lines[0]
        widths = Counter()
        for line in lines[1:]:
            try:
                cells = next(csv.reader([line], delimiter=d, strict=True))
            except csv.Error:
                widths["malformed"] += 1
                continue
            widths["ok" if len(cells) == len(entry["headers"]) else "long" if len(cells) > len(entry["headers"]) else "short"] += 1
        assert widths["malformed"] == entry["bad"].get("malformed_line", 0)
        assert widths["long"] == entry["bad"].get("column_count", 0) and widths["short"] == 0
    assert seen == {"\t", ";", "|"}


def test_csv_short_rows_leave_out_trailing_empty_optional_cells(settings, market):
    reg = market
    entry, data, _ = _make(settings, reg, "csv_short_rows", rows=800)
    text = _text(entry, data)
    lines = text.split("\r\n")[:-1]
    header = next(csv.reader([lines[0]]))
    fields = [reg.header_map()[normalize_header(h)] for h in header]
    optional = {f.name for f in reg.fields if not f.required and f.name not in reg.key}
    assert set(fields[-len(entry["shape"]["optional_fields_last"]):]) <= optional
    padded, short = [lines[0]], 0
    for line in lines[1:]:
        try:
            cells = next(csv.reader([line], strict=True))
        except csv.Error:
            padded.append(line)
            continue
        if len(cells) < len(header):
            short += 1
            assert set(fields[len(cells):]) <= optional, line
            line += "," * (len(header) - len(cells))
        padded.append(line)
    assert short == entry["short_rows"] == entry["shape"]["short_rows"] >= 80
    # padded as a reader pads them, the short rows are good rows: the reasons are exactly the truth's
    counts, received, _ = reference_reasons(reg, "\r\n".join(padded).encode("gb18030"))
    assert received == 800 and dict(counts) == entry["bad"]


# ---- header rows ------------------------------------------------------------------------------------
def test_csv_title_rows_above_the_header(settings, market):
    reg = market
    entry, data, _ = _make(settings, reg, "title_rows")
    skip = entry["shape"]["skip_rows"]
    assert 1 <= skip <= 3 and entry["shape"]["header_row"] == skip + 1
    assert entry["registration_declared"] == {"source": {"skip_rows": skip}}
    lines = _text(entry, data).split("\r\n")
    assert lines[0].startswith(entry["shape"]["title_rows"][0]) and reg.name in lines[0]
    assert next(csv.reader([lines[skip]])) == entry["headers"]
    hmap = reg.header_map()
    for line in lines[:skip]:  # no title row names a registered column
        assert not any(normalize_header(c) in hmap for c in next(csv.reader([line]), []) if c)
    counts, received, _ = reference_reasons(reg, "\r\n".join(lines[skip:]).encode("gb18030"))
    assert received == entry["rows"] and dict(counts) == entry["bad"]


def _sheet_rows(data: bytes) -> tuple[str, dict[int, list[int]], str]:
    """(dimension ref, sheet row -> column numbers of its cells, sheet XML) read from the zip's XML."""
    xml = zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml").decode("utf-8")
    rows = {}
    for number, body in re.findall(r'<row r="(\d+)">(.*?)</row>', xml):
        rows[int(number)] = [_col_number(c) for c in re.findall(r'<c r="([A-Z]+)\d+"', body)]
    return re.search(r'<dimension ref="([^"]+)"', xml).group(1), rows, xml


def _col_number(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n


def test_xlsx_title_rows_above_the_header(settings, regs):
    reg = regs["housing_fund_units"]
    entry, data, _ = _make(settings, reg, "title_rows")
    skip = entry["shape"]["skip_rows"]
    _, rows, xml = _sheet_rows(data)
    assert rows[1] == [1] and '<mergeCell ref="A1:' in xml  # the title, merged across the table
    assert min(r for r in rows if r > skip) == skip + 1 and len(rows[skip + 1]) == len(entry["headers"])
    ws = openpyxl.load_workbook(io.BytesIO(data)).worksheets[0]
    assert ws["A1"].value == entry["shape"]["title_rows"][0]
    assert [c.value for c in ws[skip + 1]][: len(entry["headers"])] == entry["headers"]
    assert ws.max_row == skip + 1 + entry["rows"]


def test_duplicate_headers_csv_and_xlsx(settings, regs):
    for reg in (regs["enterprise_registration"], regs["housing_fund_units"]):
        entry, data, _ = _make(settings, reg, "duplicate_headers")
        [dup] = entry["shape"]["duplicate_headers"]
        first, second = dup["columns"]
        assert dup["kept"] == first < second
        headers = entry["headers"]
        assert headers[first] == headers[second] == dup["header"]
        assert [h for h, n in Counter(headers).items() if n > 1] == [dup["header"]]
        assert reg.header_map()[normalize_header(dup["header"])] == dup["field"]
        if reg.source.format == "csv":
            rows = [next(csv.reader([x])) for x in _text(entry, data).split("\r\n")[:-1]]
            rows = [r for r in rows if len(r) == len(headers)]
        else:
            rows = [list(r) for r in openpyxl.load_workbook(io.BytesIO(data), read_only=True).worksheets[0].values]
        assert list(rows[0][: len(headers)]) == headers
        both = [r for r in rows[1:] if r[first] not in ("", None) and r[second] not in ("", None)]
        assert len(both) > entry["rows"] * 0.7
        assert sum(r[first] != r[second] for r in both) > len(both) / 2  # the second column holds other values


# ---- workbooks --------------------------------------------------------------------------------------
def test_xlsx_short_rows_are_absent_trailing_cells(settings, market):
    reg = market
    entry, data, _ = _make(settings, reg, "xlsx_short_rows", rows=600)
    assert entry["registration_overrides"] == {"source": {"format": "xlsx", "pattern": "*.xlsx"}}
    width = len(entry["headers"])
    _, rows, _ = _sheet_rows(data)
    assert rows[1] == list(range(1, width + 1))
    short = sum(1 for r, cols in rows.items() if r > 1 and max(cols, default=0) < width)
    assert short == entry["short_rows"] == entry["shape"]["short_rows"] >= 100
    counts, received, _ = reference_reasons(_as_registered(reg, entry), data)  # openpyxl pads them
    assert received == 600 and dict(counts) == entry["bad"]


def test_xlsx_stale_dimension_claims_less_than_the_sheet_holds(settings, regs):
    reg = regs["housing_fund_units"]
    entry, data, _ = _make(settings, reg, "xlsx_stale_dimension")
    dimension, rows, _ = _sheet_rows(data)
    assert dimension == entry["shape"]["dimension"]
    claimed_col, claimed_row = re.match(r"A1:([A-Z]+)(\d+)$", dimension).groups()
    used_col, used_row = re.match(r"A1:([A-Z]+)(\d+)$", entry["shape"]["used_range"]).groups()
    assert max(rows) == int(used_row) == entry["rows"] + 1 > int(claimed_row)
    assert max(max(c) for c in rows.values()) == _col_number(used_col) > _col_number(claimed_col)
    # the reader that trusts it loses rows: what the stale dimension is for
    ws = openpyxl.load_workbook(io.BytesIO(data), read_only=True).worksheets[0]
    assert len(list(ws.iter_rows(values_only=True))) == int(claimed_row) < entry["rows"] + 1
    _, plain_data, _ = _make(settings, reg)  # the plain file's dimension is its used range
    assert re.match(r"A1:[A-Z]+(\d+)$", _sheet_rows(plain_data)[0]).group(1) == used_row


def _biff_rows(data: bytes) -> list[tuple[int, int, int]]:
    """(row, first column, last column + 1) of every ROW record of the workbook's sheet, read from the
    BIFF stream xlwt writes contiguously after the 512-byte compound-document header."""
    pos, out, bofs = 512, [], 0
    while pos + 4 <= len(data):
        kind, size = struct.unpack_from("<HH", data, pos)
        body = data[pos + 4 : pos + 4 + size]
        if kind == 0x0809:
            bofs += 1
        elif kind == 0x0208:
            out.append(struct.unpack_from("<HHH", body))
        elif kind == 0x000A and bofs == 2:
            break  # the sheet's EOF
        pos += 4 + size
    return out


def test_xls_is_a_biff8_workbook_with_every_row(settings, regs):
    reg = regs["housing_fund_units"]
    entry, data, _ = _make(settings, reg, "xls")
    assert data[:8] == bytes.fromhex("d0cf11e0a1b11ae1")  # OLE2 compound document
    assert entry["format"] == entry["encoding"] == "xls" and "short_rows" not in entry
    assert entry["registration_overrides"] == {"source": {"format": "xls", "pattern": "*.xls"}}
    assert entry["shape"]["sheet"] == "Sheet1"
    rows = _biff_rows(data)
    assert [r for r, _, _ in rows] == list(range(entry["rows"] + 1))
    assert rows[0][1:] == (0, len(entry["headers"]))
    try:
        import xlrd
    except ImportError:
        return
    sheet = xlrd.open_workbook(file_contents=data).sheet_by_index(0)
    assert sheet.nrows == entry["rows"] + 1 and sheet.row_values(0)[: len(entry["headers"])] == entry["headers"]
    assert any(sheet.cell_type(r, c) == xlrd.XL_CELL_DATE for r in range(1, 50) for c in range(sheet.row_len(r)))


@pytest.mark.parametrize("rows", [65_535])
def test_xls_refuses_more_rows_than_a_sheet_holds(settings, regs, rows):
    with pytest.raises(ValueError, match="xls"):
        gen.generate(settings, [regs["housing_fund_units"]], rows=rows, seed=1, shape="xls")


# ---- JSON -------------------------------------------------------------------------------------------
def test_json_array_pretty(settings, regs):
    reg = regs["housing_fund_units"]
    entry, data, _ = _make(settings, reg, "json_array")
    assert entry["registration_overrides"] == {"source": {"format": "json", "pattern": "*.json"}}
    assert entry["shape"] == {"name": "json_array", "container": "array", "record_path": None, "pretty": True}
    doc = json.loads(data.decode("utf-8"))
    assert isinstance(doc, list) and len(doc) == entry["rows"]
    assert sum(not isinstance(x, dict) for x in doc) == entry["bad"].get("malformed_line", 0) > 0
    assert data.startswith(b"[\n  {\n    \"") and entry["lines"] == data.count(b"\n") > entry["rows"]
    assert {k for x in doc if isinstance(x, dict) for k in x} <= set(entry["headers"])


def test_json_lines_for_a_csv_registration(settings, market):
    reg = market
    entry, data, _ = _make(settings, reg, "json_lines")
    assert entry["registration_overrides"] == {
        "source": {"format": "json", "encoding": "utf-8", "pattern": "*.jsonl"}
    }
    lines = data.decode("utf-8").splitlines()
    assert len(lines) == entry["lines"] == entry["rows"]
    counts, received, _ = reference_reasons(_as_registered(reg, entry), data)
    assert received == entry["rows"] and dict(counts) == entry["bad"]


@pytest.mark.parametrize(
    "shape, path, pretty",
    [
        ("json_wrapped", "data", True),
        ("json_wrapped_line", "data", False),
        ("json_wrapped_result", "result.records", True),
        ("json_wrapped_result_line", "result.records", False),
    ],
)
def test_wrapped_json_responses(settings, regs, shape, path, pretty):
    reg = regs["resident_population"]
    entry, data, _ = _make(settings, reg, shape)
    assert entry["registration_overrides"]["source"]["record_path"] == path
    assert entry["shape"]["record_path"] == path and entry["shape"]["pretty"] is pretty
    doc = json.loads(data.decode("utf-8"))
    records = doc
    for key in path.split("."):
        records = records[key]
    assert isinstance(records, list) and len(records) == entry["rows"]
    assert sum(not isinstance(x, dict) for x in records) == entry["bad"].get("malformed_line", 0) > 0
    if path == "result.records":
        assert doc["result"]["total"] == entry["rows"]
    else:
        assert doc["code"] == 0
    if pretty:
        assert entry["lines"] == data.count(b"\n") > entry["rows"]
    else:
        assert b"\n" not in data and entry["lines"] == 1
    # the registration as the overrides make it reads the file: a JSON file, that record path
    src = _as_registered(reg, entry).source
    assert (src.format, src.record_path) == ("json", path)


# ---- encodings and identifiers ----------------------------------------------------------------------
@pytest.mark.parametrize("which", ["market", "people", "air_quality_hourly"])
def test_mixed_encoding_gbk_line_ranges(settings, regs, market, people, which):
    reg = {"market": market, "people": people}.get(which) or regs[which]
    entry, data, _ = _make(settings, reg, "mixed_encoding", rows=800)
    ranges = entry["shape"]["gbk_lines"]
    assert ranges and entry["shape"]["gbk_line_count"] == sum(b - a + 1 for a, b in ranges) > 0
    assert all(a <= b for a, b in ranges) and all(b1 + 1 < a2 for (_, b1), (a2, _) in itertools.pairwise(ranges))
    gbk = {n for a, b in ranges for n in range(a, b + 1)}
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    assert len(lines) == entry["lines"]
    texts = []
    for n, line in enumerate(lines, start=1):
        if n in gbk:
            with pytest.raises(UnicodeDecodeError):
                line.decode("utf-8")
            texts.append(line.decode("gbk"))
        else:
            texts.append(line.decode("utf-8"))
    # decoded line by line, it is the file the truth describes
    counts, received, _ = reference_reasons(reg, "\n".join(texts).encode("utf-8"))
    assert received == entry["rows"] and dict(counts) == entry["bad"]
    declared = reg.source.encoding.lower().startswith("gb")
    assert entry["registration_overrides"] == ({} if declared else {"source": {"encoding": "gbk"}})


@pytest.mark.parametrize("which, field", [("market", "legal_rep_id"), ("people", "cn_id")])
def test_old_division_ids_are_good_rows(settings, market, people, which, field):
    reg = {"market": market, "people": people}[which]
    old = {c for c, d in divisions().items() if d.last_year < 2002}
    if not old:
        pytest.skip("the shipped GB/T 2260 list has no edition before 2002")
    entry, data, _ = _make(settings, reg, "old_division_ids", rows=800)
    rows, _ = decode_rows(reg, data)
    counts, received, per_row = reference_reasons(reg, data)
    assert received == 800 and dict(counts) == entry["bad"]
    found = Counter()
    for (_, rec, _), reasons in zip(rows, per_row):
        if reasons or rec is None:
            continue
        text = normalize_text(rec.get(field))
        if text and check_cn_id(text).valid and check_cn_id(text).normalized[:6] in old:
            found[check_cn_id(text).normalized[:6]] += 1
    assert sum(found.values()) == entry["shape"]["rows"] >= 40
    assert sorted(found) == entry["shape"]["codes"]
    assert entry["registration_overrides"] == {}


# ---- shapes that cannot apply, and the command ----------------------------------------------------------
def test_a_shape_that_cannot_apply_is_refused(settings, regs):
    with pytest.raises(ValueError, match="no citizen-ID field"):
        gen.generate(settings, [regs["air_quality_hourly"]], rows=10, seed=1, shape="old_division_ids")
    with pytest.raises(ValueError, match="database source"):
        gen.generate(settings, [regs["social_insurance_enrollment"]], rows=10, seed=1, shape="csv_crlf")
    with pytest.raises(ValueError, match="unknown shape"):
        gen.generate(settings, [regs["enterprise_registration"]], rows=10, seed=1, shape="csv_sideways")
    assert shapes.problem("csv_short_rows", regs["real_estate_registration"], 10)  # every field required


def test_cli_shape(settings, monkeypatch, capsys):
    monkeypatch.setenv("CITYLAKE_HOME", str(settings.home))
    monkeypatch.setenv("CITYLAKE_LAKE_URI", settings.lake_uri)
    monkeypatch.setenv("CITYLAKE_RESOURCES_DIR", str(settings.resources_dir))
    parser = argparse.ArgumentParser()
    gen.add_arguments(parser)
    assert parser.parse_args([]).shape is None
    assert gen.run(parser.parse_args(["--rows", "30", "--shape", "old_division_ids", "--workers", "1"])) == 0
    out = capsys.readouterr().out.splitlines()
    assert "air_quality_hourly: skipped (no citizen-ID field)" in out
    made = [line for line in out if "[shape old_division_ids;" in line]
    assert len(made) == 3 and all(": 30 rows, " in line for line in made)
    code = gen.run(parser.parse_args(["--rows", "30", "--shape", "json_wrapped", "--resource", "housing_fund_units"]))
    assert code == 0 and "'record_path': 'data'" in capsys.readouterr().out
    assert gen.run(parser.parse_args(["--shape", "xls", "--resource", "social_insurance_enrollment"])) == 2
    with pytest.raises(SystemExit):
        parser.parse_args(["--shape", "no_such_shape"])
