"""`citylake generate`: deterministic, dirty sample exports and an exact truth file.

The strongest test here is a plain-Python reading of docs/conform-rules.md
(:func:`reference_reasons`): it decodes every generated file the way the rules say,
applies every rule, and must find exactly the reasons the truth file promises, one
per bad row and none on good rows. No Spark.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import textwrap
from collections import Counter
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from stdnum.cn import ric, uscc

from citylake.core.identifiers import (
    ENCODING_DAMAGE_MARKERS,
    check_cn_id,
    check_division_code,
    check_mobile,
    check_org_code,
    check_uscc,
    normalize_text,
)
from citylake.core.lake import Lake
from citylake.core.registry import (
    MONEY_UNITS,
    Registration,
    load_registration,
    load_registrations,
    normalize_header,
)
from citylake_dev import generate as gen
from citylake_dev.generate.defects import bad_value

ROWS = 1500  # enough for every defect kind of every registration to appear
SEED = 20261121


# ---- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def regs() -> list[Registration]:
    from citylake.core.settings import REPO_ROOT

    return load_registrations(REPO_ROOT / "registrations")


@pytest.fixture
def generated(settings, regs):
    truth = gen.generate(settings, regs, rows=ROWS, seed=SEED)
    return settings, truth


def _reg(regs, resource):
    return next(r for r in regs if r.resource == resource)


def _files(settings, truth):
    lake = Lake.from_settings(settings)
    return {path: lake.read_bytes(path) for path in truth["files"]}


# ---- a plain-Python reading of docs/conform-rules.md ----------------------------------------------
_DATE = re.compile(
    r"^(?:(\d{4})([-/.])(\d{1,2})\2(\d{1,2})|(\d{4})年(\d{1,2})月(\d{1,2})日|(\d{4})(\d{2})(\d{2}))"
    r"(?:[ T](\d{1,2})(?::(\d{2})(?::(\d{2}))?|时))?$"
)
_TS14 = re.compile(r"^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$")
_SERIAL = re.compile(r"^(\d{5})(?:\.0+)?$")  # 5 digits only: a bare year is no date
_NUMBER = r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)"
_DECIMAL = re.compile(rf"^{_NUMBER}(?:\.\d+)?$")
_INTEGER = re.compile(rf"^{_NUMBER}(?:\.0+)?$")
_CURRENCIES = dict(
    pair.split(":")
    for pair in (
        "人民币:CNY 美元:USD 美金:USD 港元:HKD 港币:HKD 香港元:HKD 欧元:EUR 日元:JPY 英镑:GBP 德国马克:DEM "
        "法国法郎:FRF 瑞士法郎:CHF 新加坡元:SGD 澳大利亚元:AUD 澳元:AUD 加拿大元:CAD 加元:CAD 新西兰元:NZD "
        "澳门元:MOP 澳门币:MOP 新台币:TWD 韩元:KRW 泰铢:THB 俄罗斯卢布:RUB 卢布:RUB 瑞典克朗:SEK 挪威克朗:NOK "
        "丹麦克朗:DKK 马来西亚林吉特:MYR 荷兰盾:NLG 意大利里拉:ITL 比利时法郎:BEF 奥地利先令:ATS 芬兰马克:FIM"
    ).split()
)
_CODES = {**{c: c for c in _CURRENCIES.values()}, "RMB": "CNY"}
_CUR = f"({'|'.join(sorted(_CURRENCIES, key=len, reverse=True))}|(?i:{'|'.join(_CODES)}))"
# [currency] number [(] [万|亿] [元] [currency [元]] [)]
_MONEY = re.compile(
    rf"^(?:{_CUR}\s*)?({_NUMBER}(?:\.\d+)?)\s*(\()?\s*(万|亿)?\s*(元)?\s*(?:{_CUR}(?:\s*元)?)?\s*(\))?$"
)


def _date_parts(text):
    m = _DATE.match(text)
    if not m:
        return None
    g = m.groups()
    y, mo, d = (g[0], g[2], g[3]) if g[0] else ((g[4], g[5], g[6]) if g[4] else (g[7], g[8], g[9]))
    hh, mi, ss = (int(g[10]) if g[10] else 0), (int(g[11]) if g[11] else 0), (int(g[12]) if g[12] else 0)
    if not (hh <= 23 and mi <= 59 and ss <= 59):
        return None
    try:
        return datetime(int(y), int(mo), int(d), hh, mi, ss)
    except ValueError:
        return None


def parse_date(text):
    m = _SERIAL.match(text)
    if m:
        return date(1899, 12, 30) + timedelta(days=int(m.group(1)))
    dt = _date_parts(text)
    return dt.date() if dt else None


def parse_timestamp(text):
    if _SERIAL.match(text):
        return None
    m = _TS14.match(text)
    if m:
        try:
            return datetime(*map(int, m.groups()))
        except ValueError:
            return None
    return _date_parts(text)


def parse_number(text, integer):
    if not (_INTEGER if integer else _DECIMAL).match(text):
        return None
    return Decimal(text.replace(",", ""))


def parse_money(text, unit):
    m = _MONEY.match(text)
    if not m:
        return None
    before, number, opened, mult, yuan, after, closed = m.groups()
    if bool(opened) != bool(closed) or (opened and not (mult or yuan or after)):
        return None  # brackets in pairs, around a word
    named = {(_CURRENCIES.get(c) or _CODES[c.upper()]) for c in (before, after) if c}
    if len(named) > 1:
        return None  # two different currencies
    if mult:
        written = 10_000 if mult == "万" else 100_000_000
    else:
        written = 1 if (yuan or named) else MONEY_UNITS[unit]
    return Decimal(number.replace(",", "")) * written / MONEY_UNITS[unit]


def _xlsx_text(v):
    if v is None:
        return None
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else format(Decimal(repr(v)), "f")
    if isinstance(v, datetime):
        return v.date().isoformat()
    return str(v)


def decode_rows(reg: Registration, data: bytes):
    """[(line number, {field: original text} or None, decode reason or None)], header."""
    hmap = reg.header_map()
    fmt = reg.source.format
    out = []
    if fmt == "xlsx":
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
        ws = wb.worksheets[0]
        rows = [list(r) for r in ws.iter_rows(values_only=True)]
        wb.close()
        header = [_xlsx_text(v) or "" for v in rows[0]]
        while header and not header[-1]:
            header.pop()
        pos = {hmap[normalize_header(h)]: k for k, h in enumerate(header) if normalize_header(h) in hmap}
        for n, values in enumerate(rows[1:], start=2):
            texts = [_xlsx_text(v) for v in values]
            if not any(t is not None and t.strip() for t in texts):
                continue
            if any(t is not None and t.strip() for t in texts[len(header):]):
                out.append((n, None, "column_count"))
                continue
            texts += [None] * (len(header) - len(texts))
            out.append((n, {f: texts[k] for f, k in pos.items()}, None))
        return out, header
    if data.startswith(b"\xef\xbb\xbf"):
        text = data[3:].decode("utf-8")
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("gb18030")
    lines = text.splitlines()
    if fmt == "json":
        header = set()
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                obj = None
            if not isinstance(obj, dict):
                out.append((n, None, "malformed_line"))
                continue
            rec = {}
            for key, value in obj.items():
                name = hmap.get(normalize_header(key))
                header.add(key)
                if name and name not in rec:
                    rec[name] = None if value is None else (value if isinstance(value, str) else json.dumps(value))
            out.append((n, rec, None))
        return out, sorted(header)
    header = next(csv.reader([lines[0]], strict=True))
    pos = {hmap[normalize_header(h)]: k for k, h in enumerate(header) if normalize_header(h) in hmap}
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            cells = next(csv.reader([line], strict=True))
        except csv.Error:
            out.append((n, None, "malformed_line"))
            continue
        if len(cells) != len(header):
            out.append((n, None, "column_count"))
            continue
        out.append((n, {f: cells[k] for f, k in pos.items()}, None))
    return out, header


def field_reasons(reg: Registration, rec: dict, window: int):
    """(reasons, normalized values) of one decoded row, conform-rules sections 2-5."""
    reasons, values = [], {}
    if any(v is not None and any(m in v for m in ENCODING_DAMAGE_MARKERS) for v in rec.values()):
        reasons.append("encoding_damage")
    for f in reg.fields:
        norm = normalize_text(rec.get(f.name))
        values[f.name] = norm
        if norm is None:
            if f.required:
                reasons.append(f"required:{f.name}")
            continue
        code, value = None, norm
        if f.check == "uscc":
            r = check_uscc(norm)
            code, value = r.reason, r.normalized
        elif f.check == "cn_id":
            r = check_cn_id(norm, legacy15=f.legacy15)
            code, value = r.reason, r.normalized
        elif f.check == "org_code":
            r = check_org_code(norm)
            code, value = r.reason, r.normalized
        elif f.check == "division_code":
            r = check_division_code(norm, window)
            code, value = r.reason, r.normalized
        elif f.check == "mobile":
            r = check_mobile(norm)
            code, value = r.reason, r.normalized
        elif f.check == "codelist":
            meanings = {m: c for c, m in (f.codes or {}).items()}
            value = norm if norm in (f.codes or {}) else meanings.get(norm)
            code = None if value is not None else "not_in_codelist"
        elif f.type == "date":
            value = parse_date(norm)
            code = None if value else "bad_date"
        elif f.type == "timestamp":
            value = parse_timestamp(norm)
            code = None if value else "bad_timestamp"
        elif f.type in ("integer", "decimal", "double"):
            value = parse_number(norm, f.type == "integer")
            code = None if value is not None else "bad_number"
        elif f.type == "money":
            value = parse_money(norm, f.unit)
            code = None if value is not None else "bad_money"
        elif f.type == "boolean":
            value = {"是": True, "否": False}.get(norm)
            code = None if value is not None else "bad_boolean"
        if code is None and f.type in ("integer", "decimal", "double", "money") and value is not None:
            below = f.min is not None and value < Decimal(str(f.min))
            above = f.max is not None and value > Decimal(str(f.max))
            if below or above:
                code = "out_of_range"
        if code:
            reasons.append(f"{code}:{f.name}")
        values[f.name] = value
    return reasons, values


def reference_reasons(reg: Registration, data: bytes, window: int = 5):
    """Per-reason row counts, rows received, and the reasons of every row (in file order)."""
    rows, _ = decode_rows(reg, data)
    per_row = []
    seen_text, seen_key = set(), set()
    for _, rec, decode_reason in rows:
        if decode_reason:
            per_row.append([decode_reason])
            continue
        reasons, values = field_reasons(reg, rec, window)
        if not reasons:  # duplicates: among rows with no reason so far, first occurrence kept
            texts = tuple(rec.get(f.name) for f in reg.fields)
            key = tuple(values[k] for k in reg.key)
            if texts in seen_text:
                reasons = ["duplicate_row"]
            elif key in seen_key:
                reasons = ["duplicate_key"]
            seen_text.add(texts)
            seen_key.add(key)
        per_row.append(reasons)
    counts = Counter(r for reasons in per_row for r in reasons)
    return counts, len(rows), per_row


# ---- determinism ---------------------------------------------------------------------------------
def test_same_seed_same_bytes_and_different_seed_different_bytes(settings, regs, tmp_path):
    first = gen.generate(settings, regs, rows=300, seed=SEED)
    files1 = _files(settings, first)
    other = replace(settings, home=tmp_path / "other", lake_uri=(tmp_path / "other" / "lake").as_uri())
    second = gen.generate(other, regs, rows=300, seed=SEED)
    assert _files(other, second) == files1
    assert second["files"] == first["files"]
    third = replace(settings, home=tmp_path / "third", lake_uri=(tmp_path / "third" / "lake").as_uri())
    changed = gen.generate(third, regs, rows=300, seed=SEED + 1)
    files3 = _files(third, changed)
    # another seed: other bytes for every resource (the file names may or may not change)
    by_resource1 = {first["files"][p]["resource"]: b for p, b in files1.items()}
    by_resource3 = {changed["files"][p]["resource"]: b for p, b in files3.items()}
    assert all(by_resource1[r] != by_resource3[r] for r in by_resource1)


def test_one_resource_alone_gives_the_same_bytes(settings, regs, tmp_path):
    everything = _files(settings, gen.generate(settings, regs, rows=200, seed=5))
    other = replace(settings, home=tmp_path / "one", lake_uri=(tmp_path / "one" / "lake").as_uri())
    alone = gen.generate(other, [_reg(regs, "housing_fund_units")], rows=200, seed=5)
    [(path, data)] = _files(other, alone).items()
    assert everything[path] == data


def test_parallel_build_gives_the_same_bytes(settings, regs, tmp_path):
    pair = [_reg(regs, "enterprise_registration"), _reg(regs, "housing_fund_units")]
    serial = gen.generate(settings, pair, rows=150, seed=3, files_per_resource=2, workers=1)
    other = replace(settings, home=tmp_path / "par", lake_uri=(tmp_path / "par" / "lake").as_uri())
    parallel = gen.generate(other, pair, rows=150, seed=3, files_per_resource=2, workers=2)
    assert parallel["files"] == serial["files"]
    assert _files(other, parallel) == _files(settings, serial)


# ---- the files -------------------------------------------------------------------------------------
def test_layout_names_encodings_and_headers(generated, regs):
    settings, truth = generated
    files = _files(settings, truth)
    assert {e["resource"] for e in truth["files"].values()} == {r.resource for r in regs}
    for path, data in files.items():
        entry = truth["files"][path]
        reg = _reg(regs, entry["resource"])
        assert path.startswith(f"landing/{reg.department}/{reg.resource}/")
        from fnmatch import fnmatch

        assert fnmatch(path.rsplit("/", 1)[1], reg.source.pattern)
        fmt = reg.source.format
        if fmt == "xlsx":
            assert data[:2] == b"PK" and entry["encoding"] == "xlsx"
            continue
        declared = reg.source.encoding
        assert entry["encoding"] == declared
        text = data.decode(declared)  # decodes in its declared encoding
        if declared == "utf-8-sig":
            assert data.startswith(b"\xef\xbb\xbf")
        if declared in ("gbk", "gb18030"):
            with pytest.raises(UnicodeDecodeError):
                data.decode("utf-8")  # conform must not mistake it for UTF-8
            assert data.decode("gb18030") == text
        assert "\x00" not in text
    for path, data in files.items():
        reg = _reg(regs, truth["files"][path]["resource"])
        _, header = decode_rows(reg, data)
        spellings = {normalize_header(h): f.name for f in reg.fields for h in f.headers}
        mapped = [spellings.get(normalize_header(h)) for h in header]
        assert None not in mapped, (path, header)
        assert sorted(mapped) == sorted(f.name for f in reg.fields), path
        assert list(header) == truth["files"][path]["headers"] or reg.source.format == "json"


def test_header_spellings_vary_between_files(settings, regs):
    truth = gen.generate(settings, [_reg(regs, "enterprise_registration")], rows=20, seed=1, files_per_resource=6)
    headers = {tuple(e["headers"]) for e in truth["files"].values()}
    assert len(headers) > 1
    assert len(truth["files"]) == 6 and len({p.rsplit("_", 1)[1] for p in truth["files"]}) == 6


def test_truth_file_counts_add_up(generated, regs):
    settings, truth = generated
    on_disk = json.loads(gen.truth_path(settings).read_text(encoding="utf-8"))
    assert on_disk["files"] == truth["files"] and on_disk["seed"] == SEED and on_disk["rows"] == ROWS
    files = _files(settings, truth)
    for path, entry in truth["files"].items():
        bad = sum(entry["bad"].values())
        assert entry["rows"] == ROWS and entry["good"] == ROWS - bad
        assert 0.08 <= bad / ROWS <= 0.15, (path, bad)
        assert all(n > 0 for n in entry["bad"].values())
        assert entry["sha256"] == __import__("hashlib").sha256(files[path]).hexdigest()
        reg = _reg(regs, entry["resource"])
        rows, _ = decode_rows(reg, files[path])
        assert len(rows) == ROWS, path  # every data row written is a row (malformed lines too)


def test_reference_conform_finds_exactly_the_truth(generated, regs):
    """Every file, read by the rules: the same reasons, one per bad row, none on good rows."""
    settings, truth = generated
    for path, data in _files(settings, truth).items():
        entry = truth["files"][path]
        reg = _reg(regs, entry["resource"])
        counts, received, per_row = reference_reasons(reg, data, settings.division_retired_window_years)
        assert received == entry["rows"], path
        assert dict(counts) == entry["bad"], path
        assert all(len(r) <= 1 for r in per_row), (path, [r for r in per_row if len(r) > 1][:5])
        assert sum(1 for r in per_row if r) == sum(entry["bad"].values())


def test_every_defect_kind_appears(generated, regs):
    _, truth = generated
    by_resource = {e["resource"]: set(e["bad"]) for e in truth["files"].values()}
    expected = {
        "enterprise_registration": {
            "uscc_check:uscc", "uscc_regno15:uscc", "uscc_masked:uscc", "uscc_text:uscc", "uscc_format:uscc",
            "cn_id_check:legal_rep_id", "cn_id_area:legal_rep_id", "cn_id_birth:legal_rep_id",
            "cn_id_legacy15:legal_rep_id", "division_unknown:division_code", "bad_money:registered_capital",
            "out_of_range:registered_capital", "bad_date:established_on", "not_in_codelist:status",
            "required:enterprise_name", "duplicate_row", "duplicate_key", "encoding_damage", "column_count",
            "malformed_line",
        },
        "resident_population": {
            "cn_id_check:cn_id", "cn_id_area:cn_id", "cn_id_birth:cn_id", "mobile_format:mobile",
            "not_in_codelist:gender", "bad_date:birth_date", "duplicate_row", "duplicate_key", "encoding_damage",
            "malformed_line",
        },
        "housing_fund_units": {
            "uscc_check:uscc", "uscc_regno15:uscc", "bad_money:monthly_amount", "out_of_range:depositor_count",
            "bad_number:depositor_count", "bad_date:opened_on", "duplicate_row", "duplicate_key",
            "encoding_damage", "column_count",
        },
        "air_quality_hourly": {
            "bad_timestamp:observed_at", "out_of_range:aqi", "bad_number:pm25", "division_unknown:division_code",
            "duplicate_row", "duplicate_key", "encoding_damage", "column_count", "malformed_line",
        },
        "real_estate_registration": {
            "cn_id_check:owner_id", "not_in_codelist:usage", "out_of_range:floor_area", "bad_date:registered_on",
            "duplicate_row", "duplicate_key", "encoding_damage", "column_count", "malformed_line",
        },
    }
    for resource, reasons in expected.items():
        assert reasons <= by_resource[resource], (resource, sorted(reasons - by_resource[resource]))
    assert "malformed_line" not in by_resource["housing_fund_units"]  # a workbook has no lines to break


# ---- identifiers ------------------------------------------------------------------------------------
def _good_values(reg, data, window):
    rows, _ = decode_rows(reg, data)
    for _, rec, decode_reason in rows:
        if decode_reason is None and not field_reasons(reg, rec, window)[0]:
            yield rec


def test_good_identifiers_are_valid_per_stdnum_and_identifiers(generated, regs):
    settings, truth = generated
    seen = Counter()
    for path, data in _files(settings, truth).items():
        reg = _reg(regs, truth["files"][path]["resource"])
        for rec in _good_values(reg, data, settings.division_retired_window_years):
            for f in reg.fields:
                raw = rec.get(f.name)
                if normalize_text(raw) is None or f.check not in ("uscc", "cn_id"):
                    continue
                if f.check == "uscc":
                    result = check_uscc(raw)
                    assert result.valid, raw
                    assert uscc.is_valid(result.normalized), raw
                else:
                    result = check_cn_id(raw, legacy15=f.legacy15)
                    assert result.valid, raw
                    number = result.normalized
                    # stdnum's format, check digit and birth date (its birth-place lookup also demands the
                    # county existed in the birth year, which GB 11643 does not)
                    assert len(number) == 18 and number[:17].isdigit()
                    assert ric.calc_check_digit(number) == number[17], raw
                    ric.get_birth_date(number)
                seen[f.check] += 1
                if raw.strip() != raw or raw != raw.upper() or len(raw) == 15:
                    seen[f"{f.check}:noisy"] += 1
    assert seen["uscc"] > 1000 and seen["cn_id"] > 1000
    assert seen["uscc:noisy"] > 0 and seen["cn_id:noisy"] > 0
    for example in ("91110000802100433B", "9114010663015395X2"):
        assert uscc.is_valid(example) and check_uscc(example).valid
    for example in ("11010519491231002X", "360426199101010071"):
        assert ric.is_valid(example) and check_cn_id(example).valid


@pytest.mark.parametrize(
    "code,field",
    [
        ("uscc_check", "uscc"), ("uscc_regno15", "uscc"), ("uscc_masked", "uscc"), ("uscc_text", "uscc"),
        ("uscc_format", "uscc"), ("cn_id_check", "legal_rep_id"), ("cn_id_area", "legal_rep_id"),
        ("cn_id_birth", "legal_rep_id"), ("cn_id_format", "legal_rep_id"), ("cn_id_legacy15", "legal_rep_id"),
        ("division_unknown", "division_code"), ("division_format", "division_code"),
    ],
)
def test_each_identifier_defect_gives_its_reason(settings, regs, code, field):
    reg = _reg(regs, "enterprise_registration")
    g = gen.FileGen(settings, reg, SEED, 0, 1, 100)
    f = reg.field_map[field]
    kind = gen.field_kind(f)
    for i in range(300):
        rec = g.record(i)
        text = bad_value(g, code, f, kind, rec)
        result = g.check(f, text)
        assert result.reason == code, (text, result)
        assert normalize_text(text) is not None
        if code in ("uscc_check", "cn_id_check", "cn_id_area", "cn_id_birth"):
            assert len(text) == 18
        if code == "uscc_check":
            assert not uscc.is_valid(text)
        if code in ("cn_id_check",):
            assert ric.calc_check_digit(text) != text[17]
        if code in ("cn_id_area", "cn_id_birth"):  # a correct check character: only this defect
            assert ric.calc_check_digit(text) == text[17]


def test_mobile_and_org_code_defects(settings, tmp_path):
    reg = _custom_registration(tmp_path)
    g = gen.FileGen(settings, reg, 1, 0, 1, 100)
    cases = (("mobile_format", "contact_mobile"), ("org_code_check", "org_code"), ("org_code_format", "org_code"))
    for code, field in cases:
        f = reg.field_map[field]
        for i in range(200):
            text = bad_value(g, code, f, gen.field_kind(f), g.record(i))
            assert g.check(f, text).reason == code, text


# ---- formats ----------------------------------------------------------------------------------------
def test_xlsx_has_excel_serial_dates_and_date_cells(generated, regs):
    settings, truth = generated
    [(path, _)] = [(p, e) for p, e in truth["files"].items() if e["resource"] == "housing_fund_units"]
    wb = openpyxl.load_workbook(io.BytesIO(Lake.from_settings(settings).read_bytes(path)), read_only=True)
    rows = list(wb.worksheets[0].iter_rows(values_only=True))
    header = [normalize_header(h or "") for h in rows[0]]
    reg = _reg(regs, "housing_fund_units")
    col = next(k for k, h in enumerate(header) if reg.header_map().get(h) == "opened_on")
    values = [r[col] for r in rows[1:] if len(r) > col]
    serials = [v for v in values if isinstance(v, int) and 30000 <= v <= 50000]
    cells = [v for v in values if isinstance(v, datetime)]
    texts = [v for v in values if isinstance(v, str)]
    assert len(serials) > ROWS * 0.2 and len(cells) > ROWS * 0.2 and len(texts) > ROWS * 0.1
    assert any("年" in t for t in texts) and any("/" in t for t in texts)
    numbers = [r[k] for r in rows[1:] for k in range(len(header)) if k < len(r) and isinstance(r[k], float)]
    assert numbers, "amounts as numeric cells"


def test_json_lines_have_malformed_lines(generated, regs):
    settings, truth = generated
    [(path, entry)] = [(p, e) for p, e in truth["files"].items() if e["resource"] == "resident_population"]
    lines = Lake.from_settings(settings).read_bytes(path).decode("utf-8").splitlines()
    broken = 0
    for line in lines:
        try:
            obj = json.loads(line)
        except ValueError:
            broken += 1
            continue
        broken += not isinstance(obj, dict)
    assert broken == entry["bad"]["malformed_line"] > 0
    assert len(lines) == ROWS
    first = json.loads(lines[0])
    assert len(first) == len(_reg(regs, "resident_population").fields), "the first object names every field"


def test_valid_noise_is_present(generated, regs):
    settings, truth = generated
    files = _files(settings, truth)
    text = {p: d.decode(truth["files"][p]["encoding"]) for p, d in files.items() if truth["files"][p]["format"] != "xlsx"}
    ent = next(t for p, t in text.items() if "enterprise_registration" in p)
    for needle in ("(万元人民币)", "(万)", "万人民币", "(万美元)", "年", "/", "０", "\u3000", ",NULL,", ",—,", ",无,"):
        assert needle in ent, needle
    assert re.search(r'"\d{1,3}(,\d{3})+', ent), "thousands separators, quoted"
    assert re.search(r"\n9[0-9A-Z]{16}[a-z],", ent), "lower-case check letter"
    air = next(t for p, t in text.items() if "air_quality" in p)
    assert "时," in air and "T" in air
    pop = next(t for p, t in text.items() if "resident_population" in p)
    assert "+86" in pop and "\ufffd" in pop
    assert re.search(r'"\d{15}"', pop), "legacy 15-digit IDs (converted by the registration)"
    assert "锟斤拷" in ent


def test_no_good_row_collides_on_key(generated, regs):
    settings, truth = generated
    for path, data in _files(settings, truth).items():
        reg = _reg(regs, truth["files"][path]["resource"])
        keys = Counter()
        for rec in _good_values(reg, data, settings.division_retired_window_years):
            _, values = field_reasons(reg, rec, settings.division_retired_window_years)
            keys[tuple(values[k] for k in reg.key)] += 1
        dup = sum(truth["files"][path]["bad"].get(r, 0) for r in ("duplicate_row", "duplicate_key"))
        assert sum(n - 1 for n in keys.values()) == dup, path


# ---- a registration the generator has never seen ----------------------------------------------------------
def _custom_registration(tmp_path: Path) -> Registration:
    folder = tmp_path / "resources" / "jyj"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "school_licences.yaml"
    path.write_text(
        textwrap.dedent(
            """
            resource: school_licences
            name: 民办学校办学许可
            department: jyj
            department_name: 郑州市教育局
            provider: {name: 郑州市教育局, code: "11410100005252848M"}
            classification: {category: "3", item: "07", catalog: "001"}
            summary: 民办学校办学许可证信息。
            format: {category: 电子表格, type: csv}
            update_cycle: 每季度
            share: {type: 无条件共享}
            source: {kind: file, format: csv, pattern: "*.csv", encoding: utf-8}
            key: [licence_no, issued_at]
            fields:
              - {name: licence_no, title: 许可证编号, aliases: [证书编号], type: string, required: true}
              - {name: org_code, title: 组织机构代码, type: string, check: org_code, required: true}
              - {name: school_name, title: 学校名称, type: string, required: true}
              - {name: issued_at, title: 发证时间, type: timestamp, required: true}
              - {name: investment, title: 举办者投入, type: money, unit: 亿元, min: 0, max: 50}
              - {name: students, title: 在校生数, type: integer, min: 0, max: 20000}
              - {name: ratio, title: 生师比, type: double, min: 1, max: 40}
              - {name: nonprofit, title: 是否非营利, type: boolean}
              - {name: contact_mobile, title: 联系电话, type: string, check: phone}
              - {name: remark, title: 备注, type: text}
            """
        ),
        encoding="utf-8",
    )
    return load_registration(path)


def test_a_new_registration_needs_no_code_changes(settings, tmp_path):
    reg = _custom_registration(tmp_path)
    truth = gen.generate(settings, [reg], rows=800, seed=9, files_per_resource=2)
    assert len(truth["files"]) == 2
    for path, data in _files(settings, truth).items():
        entry = truth["files"][path]
        assert re.search(r"/民办学校办学许可_\d{4}Q[1-4]\.csv$", path)
        counts, received, per_row = reference_reasons(reg, data)
        assert received == entry["rows"] == 800
        assert dict(counts) == entry["bad"], path
        assert all(len(r) <= 1 for r in per_row)
        assert {
            "org_code_check:org_code",
            "out_of_range:investment",
            "bad_timestamp:issued_at",
            "mobile_format:contact_mobile",
            "duplicate_key",
        } <= set(entry["bad"])


# ---- truth file and CLI -------------------------------------------------------------------------------
def test_truth_keeps_entries_for_unchanged_earlier_files(settings, regs):
    first = gen.generate(settings, [_reg(regs, "enterprise_registration")], rows=50, seed=20261101)
    second = gen.generate(settings, [_reg(regs, "housing_fund_units")], rows=50, seed=20261101)
    on_disk = json.loads(gen.truth_path(settings).read_text(encoding="utf-8"))
    assert set(on_disk["files"]) == set(first["files"]) | set(second["files"])
    # an earlier file overwritten by other bytes drops out
    Lake.from_settings(settings).write_bytes(next(iter(first["files"])), b"changed")
    gen.generate(settings, [_reg(regs, "housing_fund_units")], rows=50, seed=20261101)
    on_disk = json.loads(gen.truth_path(settings).read_text(encoding="utf-8"))
    assert set(on_disk["files"]) == set(second["files"])


def test_cli(settings, monkeypatch, capsys):
    monkeypatch.setenv("CITYLAKE_HOME", str(settings.home))
    monkeypatch.setenv("CITYLAKE_LAKE_URI", settings.lake_uri)
    monkeypatch.setenv("CITYLAKE_RESOURCES_DIR", str(settings.resources_dir))
    parser = argparse.ArgumentParser()
    gen.add_arguments(parser)
    defaults = parser.parse_args([])
    assert (defaults.rows, defaults.seed, defaults.resource, defaults.files_per_resource) == (200, 20261121, [], 1)
    args = parser.parse_args(["--rows", "40", "--resource", "air_quality_hourly", "--resource", "housing_fund_units"])
    assert gen.run(args) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 3 and out[-1] == f"truth: {gen.truth_path(settings)}"
    assert all(re.search(r": 40 rows, \d+ bad \(", line) for line in out[:2])
    assert gen.run(parser.parse_args(["--resource", "no_such_thing"])) == 2


def test_rows_must_be_positive(settings, regs):
    with pytest.raises(ValueError):
        gen.generate(settings, regs, rows=0, seed=1)
    tiny = gen.generate(settings, [_reg(regs, "resident_population")], rows=1, seed=1)
    [entry] = tiny["files"].values()
    assert entry["rows"] == 1 and entry["bad"] == {}
