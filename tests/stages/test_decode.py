"""Decoding departmental files: every shape real exports come in, each record counted once."""

import io
import json
import re
import zipfile

import openpyxl
import pytest

from citylake.core.lake import Lake
from citylake.core.registry import load_registrations
from citylake.stages import decode
from citylake.stages.decode import DecodeError, decode_file

HEADER = "统一社会信用代码,企业名称,法定代表人,注册资本(万元),成立日期,行政区划代码,住所,登记状态"
GOOD = '91110000802100433B,郑州某公司,张三,"5,000(万元人民币)",2021/1/29,410102,郑州市中原区,存续'
PLAIN = "91410100MA44U2X0XB,郑州另一公司,李四,100,2020-05-01,410103,郑州市二七区,存续"


@pytest.fixture
def regs(settings):
    return {r.resource: r for r in load_registrations(settings.resources_dir)}


def _with(reg, **source):
    return reg.model_copy(update={"source": reg.source.model_copy(update=source)})


def _decode(settings, reg, data: bytes, name="f.csv"):
    lake = Lake.from_settings(settings)
    lake.write_bytes(f"raw/x/{name}", data)
    table, info = decode_file(lake, reg, f"raw/x/{name}")
    rows = sorted(table.to_pylist(), key=lambda r: r["_source_row"])
    assert info.rows == len(rows)
    return info, rows


# ---- encodings ----------------------------------------------------------------------------
@pytest.mark.parametrize("encoding, expected", [("gbk", "gb18030"), ("gb18030", "gb18030"),
                                                ("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig")])
def test_encodings_are_detected(settings, regs, encoding, expected):
    text = f"{HEADER}\n{GOOD}\n"
    info, rows = _decode(settings, regs["enterprise_registration"], text.encode(encoding))
    assert info.encoding == expected
    assert rows[0]["enterprise_name"] == "郑州某公司"
    assert rows[0]["registered_capital"] == "5,000(万元人民币)"


def test_the_declared_encoding_decodes_what_is_not_utf8(settings, regs):
    # A department in Hong Kong or Taiwan style exports Big5; the registration says so.
    big5 = _with(regs["enterprise_registration"], encoding="big5")
    text = "uscc,enterprise_name,division_code\n91110000802100433B,臺灣某公司,410102\n"
    info, rows = _decode(settings, big5, text.encode("big5"))
    assert info.encoding == "big5" and rows[0]["enterprise_name"] == "臺灣某公司"


def test_a_utf8_file_with_gbk_lines_reads_both_and_reports_the_ranges(settings, regs, monkeypatch):
    monkeypatch.setattr(decode, "CHUNK_BYTES", 256)  # the GBK lines fall in a later chunk
    lines = [HEADER] + [PLAIN.replace("郑州另一公司", f"郑州公司{i}") for i in range(8)]
    data = b"".join((line + "\n").encode("gbk" if i in (4, 5, 7) else "utf-8") for i, line in enumerate(lines))
    info, rows = _decode(settings, regs["enterprise_registration"], data)
    assert info.encoding == "utf-8"
    assert [r["enterprise_name"] for r in rows] == [f"郑州公司{i}" for i in range(8)]  # no mojibake
    assert info.encoding_ranges == [{"encoding": "gb18030", "first": 5, "last": 6},
                                    {"encoding": "gb18030", "first": 8, "last": 8}]


def test_a_gbk_file_stays_gbk_when_a_later_chunk_is_ascii(settings, regs, monkeypatch):
    monkeypatch.setattr(decode, "CHUNK_BYTES", 128)
    text = f"{HEADER}\n{GOOD}\n" + "\n".join(["91110000802100433B,ABC,ZS,1,2021-01-01,410102,X,Y"] * 5) + "\n"
    info, rows = _decode(settings, regs["enterprise_registration"], text.encode("gbk"))
    assert info.encoding == "gb18030" and rows[0]["enterprise_name"] == "郑州某公司" and len(rows) == 6


def test_an_unknown_declared_encoding_is_refused_at_load(tmp_path):
    from citylake.core.registry import RegistrationError, load_registration
    from citylake.core.settings import REPO_ROOT

    text = (REPO_ROOT / "registrations/scjg/enterprise_registration.yaml").read_text(encoding="utf-8")
    bad = tmp_path / "scjg" / "enterprise_registration.yaml"
    bad.parent.mkdir()
    bad.write_text(text.replace("encoding: gbk", "encoding: klingon"), encoding="utf-8")
    with pytest.raises(RegistrationError, match="klingon"):
        load_registration(bad)


# ---- CSV shapes ---------------------------------------------------------------------------
def test_malformed_and_long_rows_are_kept_with_their_text(settings, regs):
    text = f"{HEADER}\n{GOOD}\n1,2,3,4,5,6,7,8,多余\n\"unterminated,x\n\n{GOOD}\n"
    info, rows = _decode(settings, regs["enterprise_registration"], text.encode("utf-8"))
    assert info.rows == 4  # the blank line is not a row
    assert [r["_source_row"] for r in rows] == [2, 3, 4, 6]
    assert rows[1]["_pre_reasons"] == ["column_count"] and rows[1]["_raw_line"] == "1,2,3,4,5,6,7,8,多余"
    assert rows[2]["_pre_reasons"] == ["malformed_line"] and rows[2]["_raw_line"] == '"unterminated,x'
    assert rows[3]["enterprise_name"] == "郑州某公司"  # the unclosed quote swallowed nothing


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_a_quoted_cell_with_line_breaks_is_one_record_with_its_line_range(settings, regs, eol):
    cell = f'"郑州市中原区{eol}建设路 1 号{eol}3 楼"'
    multi = f"91110000802100433B,郑州某公司,张三,100,2021-01-29,410102,{cell},存续"
    text = eol.join([HEADER, PLAIN, multi, PLAIN.replace("李四", "王五"), ""])
    info, rows = _decode(settings, regs["enterprise_registration"], text.encode("gbk"))
    assert len(rows) == 3 and info.multiline_records == 1
    assert (rows[1]["_source_row"], rows[1]["_source_row_end"]) == (3, 5)
    assert rows[1]["address"] == "郑州市中原区\n建设路 1 号\n3 楼" and rows[1]["_raw_line"] is None
    assert (rows[2]["_source_row"], rows[2]["legal_rep"]) == (6, "王五")


def test_a_multiline_record_across_a_chunk_boundary(settings, regs, monkeypatch):
    monkeypatch.setattr(decode, "CHUNK_BYTES", 64)
    multi = '91110000802100433B,郑州某公司,张三,100,2021-01-29,410102,"第一行\n第二行\n第三行",存续'
    text = "\n".join([HEADER, PLAIN, multi, PLAIN, ""])
    _info, rows = _decode(settings, regs["enterprise_registration"], text.encode("utf-8"))
    assert [(r["_source_row"], r["_source_row_end"]) for r in rows] == [(2, 2), (3, 5), (6, 6)]
    assert rows[1]["address"] == "第一行\n第二行\n第三行"


def test_many_chunks_lose_and_repeat_nothing(settings, regs, monkeypatch):
    monkeypatch.setattr(decode, "CHUNK_BYTES", 300)
    monkeypatch.setattr(decode, "BATCH_ROWS", 7)
    body = [PLAIN.replace("郑州另一公司", f"公司{i}") for i in range(100)]
    body[40] = '"unterminated,x'
    _info, rows = _decode(settings, regs["enterprise_registration"], "\n".join([HEADER, *body]).encode("gbk"))
    assert [r["_source_row"] for r in rows] == list(range(2, 102))
    assert sum(1 for r in rows if r["_raw_line"]) == 1


def test_crlf_throughout(settings, regs):
    text = "\r\n".join([HEADER, GOOD, PLAIN, ""])
    _info, rows = _decode(settings, regs["enterprise_registration"], text.encode("gbk"))
    assert [r["status"] for r in rows] == ["存续", "存续"]  # no trailing \r in the last cell


@pytest.mark.parametrize("delimiter", ["\t", ";", "|"])
def test_the_delimiter_is_sniffed_from_the_header(settings, regs, delimiter):
    text = "\n".join([HEADER.replace(",", delimiter), PLAIN.replace(",", delimiter), ""])
    info, rows = _decode(settings, regs["enterprise_registration"], text.encode("gbk"))
    assert info.delimiter == delimiter and rows[0]["address"] == "郑州市二七区" and rows[0]["_raw_line"] is None


def test_a_declared_delimiter_is_used(settings, regs):
    reg = _with(regs["enterprise_registration"], delimiter=";")
    text = "\n".join([HEADER.replace(",", ";"), PLAIN.replace(",", ";"), ""])
    info, rows = _decode(settings, reg, text.encode("utf-8"))
    assert info.delimiter == ";" and rows[0]["legal_rep"] == "李四"


def test_short_rows_are_padded_and_recorded(settings, regs):
    short = PLAIN.rsplit(",", 2)[0]  # the last two cells left out
    text = "\n".join([HEADER, short, PLAIN + ",,", ""])
    info, rows = _decode(settings, regs["enterprise_registration"], text.encode("utf-8"))
    assert rows[0]["address"] is None and rows[0]["status"] is None and rows[0]["_raw_line"] is None
    assert rows[1]["status"] == "存续" and rows[1]["_raw_line"] is None  # trailing empty cells dropped
    assert info.padded_rows == 1 and info.padded_examples == [2]


def test_title_rows_above_the_header_are_skipped_and_reported(settings, regs):
    text = "\n".join(["郑州市市场监督管理局 企业登记信息", "导出时间：2024-05-01", "", HEADER, PLAIN, ""])
    info, rows = _decode(settings, regs["enterprise_registration"], text.encode("gbk"))
    assert info.header_row == 4 and [r["_source_row"] for r in rows] == [5]
    assert [s["row"] for s in info.skipped_rows] == [1, 2]


def test_skip_rows_from_the_registration(settings, regs):
    reg = _with(regs["enterprise_registration"], skip_rows=1)
    text = "\n".join(["统一社会信用代码 说明行", HEADER, PLAIN, ""])
    info, rows = _decode(settings, reg, text.encode("utf-8"))
    assert info.header_row == 2 and rows[0]["legal_rep"] == "李四"


def test_duplicate_header_names_are_reported(settings, regs):
    header = HEADER + ",企业名称"
    text = "\n".join([header, PLAIN + ",别的名称", ""])
    info, rows = _decode(settings, regs["enterprise_registration"], text.encode("utf-8"))
    assert rows[0]["enterprise_name"] == "郑州另一公司"  # the first column wins
    assert info.duplicate_columns == [{"column": 9, "header": "企业名称", "field": "enterprise_name",
                                       "kept_column": 2}]


def test_missing_required_column_is_known(settings, regs):
    text = "统一社会信用代码,法定代表人,成立日期,行政区划代码,登记状态,备注\n91110000802100433B,张三,2021-01-01,410102,存续,x\n"
    info, rows = _decode(settings, regs["enterprise_registration"], text.encode("utf-8"))
    assert info.missing_required == ["enterprise_name"] and info.unmapped == ["备注"]
    assert rows[0]["enterprise_name"] is None  # conform adds missing_column:enterprise_name


def test_binary_file_named_csv_is_refused(settings, regs):
    with pytest.raises(DecodeError) as info:
        _decode(settings, regs["enterprise_registration"], b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    assert info.value.code == "binary_file"


def test_header_without_known_columns_is_refused(settings, regs):
    with pytest.raises(DecodeError) as info:
        _decode(settings, regs["enterprise_registration"], b"a,b,c\n1,2,3\n")
    assert info.value.code == "no_known_columns"


# ---- workbooks ----------------------------------------------------------------------------
def _xlsx(rows) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


UNIT_HEADER = ["统一社会信用代码", "单位名称", "缴存人数", "月缴存额(元)", "开户日期", "所在区县代码"]


def test_xlsx_numbers_dates_and_extra_cells(settings, regs):
    import datetime

    data = _xlsx(
        [
            UNIT_HEADER,
            ["91110000802100433B", "某单位", 12, 41.2, 44225, "410102"],
            ["9114010663015395X2", "另一单位", 3, 100, datetime.datetime(2021, 1, 29), None],
            [None, None, None, None, None, None],
            ["91110000600037341N", "x", 1, 1, 1, "410102", "多余"],
        ]
    )
    info, rows = _decode(settings, regs["housing_fund_units"], data, "u.xlsx")
    assert info.rows == 3
    assert rows[0]["depositor_count"] == "12" and rows[0]["monthly_amount"] == "41.2"
    assert rows[0]["opened_on"] == "44225"
    assert rows[1]["opened_on"] == "2021-01-29"
    assert rows[2]["_pre_reasons"] == ["column_count"] and rows[2]["_source_row"] == 5


def test_xlsx_title_rows_and_short_rows_as_for_csv(settings, regs):
    data = _xlsx([["住房公积金缴存单位 导出"], [], UNIT_HEADER, ["91110000802100433B", "某单位", 12, 41.2]])
    info, rows = _decode(settings, regs["housing_fund_units"], data, "u.xlsx")
    assert info.header_row == 3 and [s["row"] for s in info.skipped_rows] == [1]
    assert rows[0]["opened_on"] is None and info.padded_rows == 1 and info.padded_examples == [4]


def test_xlsx_with_a_stale_dimension_is_read_whole(settings, regs):
    data = _xlsx([UNIT_HEADER] + [["91110000802100433B", f"单位{i}", i, 1, 44225, "410102"] for i in range(20)])
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            body = src.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                body, n = re.subn(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:C3"', body)
                assert n == 1
            dst.writestr(item, body)
    _info, rows = _decode(settings, regs["housing_fund_units"], buf.getvalue(), "u.xlsx")
    assert len(rows) == 20 and rows[-1]["unit_name"] == "单位19" and rows[-1]["division_code"] == "410102"


def test_legacy_xls_workbook(settings, regs):
    import datetime

    import xlwt  # the dev tools' writer of legacy workbooks (devtools/pyproject.toml)

    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("Sheet1")
    rows = [UNIT_HEADER, ["91110000802100433B", "某单位", 12, 41.2, datetime.datetime(2021, 1, 29), "410102"]]
    date_style = xlwt.easyxf(num_format_str="YYYY-MM-DD")
    for r, values in enumerate(rows):
        for c, value in enumerate(values):
            sheet.write(r, c, value, date_style if isinstance(value, datetime.datetime) else xlwt.Style.default_style)
    buf = io.BytesIO()
    book.save(buf)
    reg = _with(regs["housing_fund_units"], format="xls")
    _info, out = _decode(settings, reg, buf.getvalue(), "u.xls")
    assert out[0]["unit_name"] == "某单位" and out[0]["depositor_count"] == "12"
    assert out[0]["opened_on"] == "2021-01-29" and out[0]["monthly_amount"] == "41.2"


def test_xlsx_zip_bomb_is_refused(settings, regs):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/worksheets/sheet1.xml", b"0" * (50 << 20))
    with pytest.raises(DecodeError) as info:
        _decode(settings, regs["housing_fund_units"], buf.getvalue(), "bomb.xlsx")
    assert info.value.code == "zip_bomb"


# ---- JSON ---------------------------------------------------------------------------------
PERSON = {"公民身份号码": "11010519491231002X", "姓名": "张三", "性别": "1", "出生日期": "1949-12-31",
          "户籍地行政区划": "110105", "extra": 1}


def test_json_lines_with_broken_lines(settings, regs):
    text = "\n".join([json.dumps(PERSON, ensure_ascii=False), "{broken", "[1,2]", json.dumps(PERSON, ensure_ascii=False)])
    info, rows = _decode(settings, regs["resident_population"], text.encode("utf-8"), "p.jsonl")
    assert info.rows == 4
    assert rows[0]["cn_id"] == "11010519491231002X"
    assert [r["_pre_reasons"] for r in rows] == [[], ["malformed_line"], ["malformed_line"], []]
    assert rows[1]["_raw_line"] == "{broken"
    assert info.unmapped == ["extra"]


@pytest.mark.parametrize("indent", [None, 2])
def test_json_array(settings, regs, indent):
    data = json.dumps([{"身份证号码": "11010519491231002X", "姓名": "张三"}, 5], ensure_ascii=False, indent=indent)
    _info, rows = _decode(settings, regs["resident_population"], data.encode(), "p.json")
    assert [r["_source_row"] for r in rows] == [1, 2]
    assert rows[0]["person_name"] == "张三" and rows[1]["_pre_reasons"] == ["malformed_line"]


@pytest.mark.parametrize("path, wrap", [
    ("data", lambda recs: {"code": 0, "msg": "成功", "data": recs}),
    ("result.records", lambda recs: {"success": True, "result": {"total": len(recs), "records": recs}}),
])
@pytest.mark.parametrize("indent", [None, 2])
def test_wrapped_json_responses(settings, regs, path, wrap, indent):
    recs = [PERSON, {**PERSON, "姓名": "李四", "金额": 1.50}]
    data = json.dumps(wrap(recs), ensure_ascii=False, indent=indent).encode("gbk")
    reg = _with(regs["resident_population"], record_path=path)
    info, rows = _decode(settings, reg, data, "p.json")
    assert [r["person_name"] for r in rows] == ["张三", "李四"] and info.record_path == path
    # Without the path the file is refused with one that names where the records are.
    with pytest.raises(DecodeError) as err:
        _decode(settings, regs["resident_population"], data, "p.json")
    assert err.value.code == "json_wrapped" and path in err.value.message_en
