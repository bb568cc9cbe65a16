"""Decoding departmental files: encodings, header aliases, malformed rows kept with their text."""

import io
import json
import zipfile

import openpyxl
import pyarrow.parquet as pq
import pytest

from citylake.core.lake import Lake
from citylake.core.registry import load_registrations
from citylake.stages.decode import DecodeError, decode_to_parquet, detect_encoding

HEADER = "统一社会信用代码,企业名称,法定代表人,注册资本(万元),成立日期,行政区划代码,住所,登记状态"
GOOD = '91110000802100433B,郑州某公司,张三,"5,000(万元人民币)",2021/1/29,410102,郑州市中原区,存续'


@pytest.fixture
def regs(settings):
    return {r.resource: r for r in load_registrations(settings.resources_dir)}


def _decode(settings, reg, data: bytes, name="f.csv"):
    lake = Lake.from_settings(settings)
    lake.write_bytes(f"raw/x/{name}", data)
    info = decode_to_parquet(lake, reg, f"raw/x/{name}", "_staging/t/part.parquet")
    rows = pq.read_table(lake.fs_path("_staging/t/part.parquet")).to_pylist()
    return info, rows


@pytest.mark.parametrize("encoding, expected", [("gbk", "gb18030"), ("gb18030", "gb18030"),
                                                ("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig")])
def test_encodings_are_detected(settings, regs, encoding, expected):
    text = f"{HEADER}\n{GOOD}\n"
    info, rows = _decode(settings, regs["enterprise_registration"], text.encode(encoding))
    assert info.encoding == expected
    assert rows[0]["enterprise_name"] == "郑州某公司"
    assert rows[0]["registered_capital"] == "5,000(万元人民币)"


def test_detect_encoding_reads_whole_stream():
    # the first megabyte is ASCII; GBK bytes come later
    data = b"a" * (1 << 20) + "郑州".encode("gbk")
    assert detect_encoding(io.BytesIO(data)) == "gb18030"


def test_the_declared_encoding_decodes_what_is_not_utf8(settings, regs):
    # A department in Hong Kong or Taiwan style exports Big5; the registration says so.
    reg = regs["enterprise_registration"]
    big5 = reg.model_copy(update={"source": reg.source.model_copy(update={"encoding": "big5"})})
    text = "uscc,enterprise_name,division_code\n91110000802100433B,臺灣某公司,410102\n"
    info, rows = _decode(settings, big5, text.encode("big5"))
    assert info.encoding == "big5" and rows[0]["enterprise_name"] == "臺灣某公司"
    # Declared GBK, or UTF-8 with GBK bytes inside: read as GB18030, the superset of GBK.
    assert detect_encoding(io.BytesIO("郑州".encode("gbk")), "gbk") == "gb18030"
    assert detect_encoding(io.BytesIO("郑州".encode("gbk")), "utf-8") == "gb18030"
    assert detect_encoding(io.BytesIO("臺灣".encode()), "big5") == "utf-8"


def test_an_unknown_declared_encoding_is_refused_at_load(tmp_path):
    from citylake.core.registry import RegistrationError, load_registration
    from citylake.core.settings import REPO_ROOT

    text = (REPO_ROOT / "registrations/scjg/enterprise_registration.yaml").read_text(encoding="utf-8")
    bad = tmp_path / "scjg" / "enterprise_registration.yaml"
    bad.parent.mkdir()
    bad.write_text(text.replace("encoding: gbk", "encoding: klingon"), encoding="utf-8")
    with pytest.raises(RegistrationError, match="klingon"):
        load_registration(bad)


def test_malformed_and_short_rows_are_kept_with_their_text(settings, regs):
    text = f"{HEADER}\n{GOOD}\n1,2\n\"unterminated,x\n\n{GOOD}\n"
    info, rows = _decode(settings, regs["enterprise_registration"], text.encode("utf-8"))
    assert info.rows == 4  # the blank line is not a row
    assert [r["_source_row"] for r in rows] == [2, 3, 4, 6]
    assert rows[1]["_pre_reasons"] == ["column_count"] and rows[1]["_raw_line"] == "1,2"
    assert rows[2]["_pre_reasons"] == ["malformed_line"] and rows[2]["_raw_line"] == '"unterminated,x'


def test_missing_required_column_marks_every_row(settings, regs):
    text = "统一社会信用代码,法定代表人,成立日期,行政区划代码,登记状态,备注\n91110000802100433B,张三,2021-01-01,410102,存续,x\n"
    info, rows = _decode(settings, regs["enterprise_registration"], text.encode("utf-8"))
    assert info.missing_required == ["enterprise_name"]
    assert info.unmapped == ["备注"]
    assert rows[0]["_pre_reasons"] == ["missing_column:enterprise_name"]


def test_binary_file_named_csv_is_refused(settings, regs):
    with pytest.raises(DecodeError) as info:
        _decode(settings, regs["enterprise_registration"], b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    assert info.value.code == "binary_file"


def test_header_without_known_columns_is_refused(settings, regs):
    with pytest.raises(DecodeError) as info:
        _decode(settings, regs["enterprise_registration"], b"a,b,c\n1,2,3\n")
    assert info.value.code == "no_known_columns"


def _xlsx(rows) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def test_xlsx_numbers_dates_and_extra_cells(settings, regs):
    import datetime

    data = _xlsx(
        [
            ["统一社会信用代码", "单位名称", "缴存人数", "月缴存额(元)", "开户日期", "所在区县代码"],
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


def test_xlsx_zip_bomb_is_refused(settings, regs):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/worksheets/sheet1.xml", b"0" * (50 << 20))
    with pytest.raises(DecodeError) as info:
        _decode(settings, regs["housing_fund_units"], buf.getvalue(), "bomb.xlsx")
    assert info.value.code == "zip_bomb"


def test_json_lines_with_broken_lines(settings, regs):
    good = {
        "公民身份号码": "11010519491231002X",
        "姓名": "张三",
        "性别": "1",
        "出生日期": "1949-12-31",
        "户籍地行政区划": "110105",
        "extra": 1,
    }
    text = "\n".join([json.dumps(good, ensure_ascii=False), "{broken", "[1,2]", json.dumps(good, ensure_ascii=False)])
    info, rows = _decode(settings, regs["resident_population"], text.encode("utf-8"), "p.jsonl")
    assert info.rows == 4
    assert rows[0]["cn_id"] == "11010519491231002X"
    assert [r["_pre_reasons"] for r in rows] == [[], ["malformed_line"], ["malformed_line"], []]
    assert rows[1]["_raw_line"] == "{broken"
    assert info.unmapped == ["extra"]


def test_json_array(settings, regs):
    data = json.dumps([{"身份证号码": "11010519491231002X", "姓名": "张三"}, 5], ensure_ascii=False).encode()
    _info, rows = _decode(settings, regs["resident_population"], data, "p.json")
    assert [r["_source_row"] for r in rows] == [1, 2]
    assert rows[1]["_pre_reasons"] == ["malformed_line"]
