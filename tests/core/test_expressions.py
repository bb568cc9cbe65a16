"""jobs.expressions: Spark column expressions, checked value by value and against citylake.core.identifiers."""

from __future__ import annotations

import contextlib
import random
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from pyspark.sql import functions as F

from citylake.core import expressions as E
from citylake.core import identifiers as idf
from citylake.core.registry import MONEY_UNITS

pytestmark = pytest.mark.spark

TODAY = date(2026, 1, 1)


def _run(spark, values, **exprs):
    """One Spark job: a one-column DataFrame ``v`` and the given expressions (functions of the column)."""
    df = spark.createDataFrame([(v,) for v in values], "v string")
    v = F.col("v")
    rows = df.select(v, *[fn(v).alias(name) for name, fn in exprs.items()]).collect()
    assert [r["v"] for r in rows] == list(values)
    return rows


# ---- normalization ----------------------------------------------------------------------------------
def test_space_set_is_bmp_only():
    import sys

    assert not [c for c in range(0x10000, sys.maxunicode + 1) if chr(c).isspace()]


def test_normalize_text_and_encoding_damage(spark):
    values = [
        *idf.NULL_TOKENS,
        "NULL", "Null", "None", "NaN", "N/A", "n/a", "NA", "#N/A", "＃Ｎ／Ａ", "ｎｕｌｌ", " 　无 ", "\t-\n", "\xa0暂无\u2003",
        "　ＡＢＣ１２３（）\t", "abc", " a b ", "\u3000北京\u3000", "\x1c x \x1f", "—a", "nulls", "无锡", "-1",
        "北京锟斤拷", "a\ufffdb", None,
    ]  # fmt: skip
    rows = _run(
        spark,
        values,
        n=E.normalize_text,
        damaged=E.has_encoding_damage,
    )
    for r in rows:
        assert r["n"] == idf.normalize_text(r["v"]), repr(r["v"])
        assert r["damaged"] is idf.has_encoding_damage(r["v"]), repr(r["v"])
    by_value = {r["v"]: r for r in rows}
    assert by_value["　ＡＢＣ１２３（）\t"]["n"] == "ABC123()"
    assert by_value["无锡"]["n"] == "无锡" and by_value["NULL"]["n"] is None
    assert by_value["北京锟斤拷"]["damaged"] and not by_value["abc"]["damaged"] and by_value[None]["damaged"] is False


# ---- types ------------------------------------------------------------------------------------------
DATES = {
    "2021-01-29": date(2021, 1, 29),
    "2021/1/29": date(2021, 1, 29),
    "2021.1.29": date(2021, 1, 29),
    "2021年1月29日": date(2021, 1, 29),
    "20210129": date(2021, 1, 29),
    "2021-01-29 10:30": date(2021, 1, 29),
    "2021-01-29 10:30:15": date(2021, 1, 29),
    "2021/1/29T8:05": date(2021, 1, 29),
    "2021年1月29日 9时": date(2021, 1, 29),
    "20210129 23:59:59": date(2021, 1, 29),
    "20210129103015": date(2021, 1, 29),
    "44225": date(2021, 1, 29),  # Excel serial day
    "44225.0": date(2021, 1, 29),
    "44225.000": date(2021, 1, 29),
    "10000": date(1927, 5, 18),  # the first 5-digit serial
    "99999": date(2173, 10, 13),
    "２０２１０": date(1955, 5, 1),
    # a bare year is no date (and was once read as serial day 2021 = 1905-07-13); nor any 1-4 digit number
    "2021": None,
    "2021.0": None,
    " 2021 ": None,
    "２０２１": None,
    "\u30002021\t": None,
    "1999": None,
    "9999": None,
    "1": None,
    "0": None,
    "0.0": None,
    "2021年": None,
    "２０２１－０１－２９": date(2021, 1, 29),  # full-width, through normalize_text
    "2020-02-29": date(2020, 2, 29),
    "2021-02-30": None,
    "2021-02-29": None,
    "2021-13-01": None,
    "2021-00-10": None,
    "1900-02-29": None,
    "2021-1/29": None,
    "2021-01-29abc": None,
    "2021-01-29 25:00": None,
    "2021-01-29 10": None,
    "2021-01-29 10:3": None,
    "2021年1月29": None,
    "21-01-29": None,
    "202101": None,
    "2021012": None,
    "44225.5": None,
    "123456": None,
    "29/01/2021": None,
    "abc": None,
    "1,234": None,
    "2021-01-29\n": date(2021, 1, 29),  # trimmed by normalize_text
    "2021-01-29\nx": None,
    "0000-01-01": None,
}

TIMESTAMPS = {
    "2021-01-29": datetime(2021, 1, 29),
    "2021/1/29 8:05": datetime(2021, 1, 29, 8, 5),
    "2021.1.29 08:05:09": datetime(2021, 1, 29, 8, 5, 9),
    "2021-01-29T10:30:15": datetime(2021, 1, 29, 10, 30, 15),
    "2021年1月29日 9时": datetime(2021, 1, 29, 9),
    "2021年1月29日T23:59": datetime(2021, 1, 29, 23, 59),
    "20210129": datetime(2021, 1, 29),
    "20210129 7:00": datetime(2021, 1, 29, 7),
    "20210129103015": datetime(2021, 1, 29, 10, 30, 15),
    "2021-01-29 24:00": None,
    "2021-01-29 10:60": None,
    "2021-01-29 10:30:60": None,
    "20210129253015": None,
    "2021-02-30 10:00": None,
    "44225": None,  # serial days are dates only
    "2021": None,  # a bare year
    "2021.0": None,
    "２０２１": None,
    "2021-01-29 10时30分": None,
    "2021-01-29  10:30": None,
    "2021-01-29 10:30:15.123": None,
    "yesterday": None,
}

INTEGERS = {
    "0": 0, "42": 42, "-42": -42, "+7": 7, "1,234": 1234, "-1,234,567": -1234567, "41.0": 41, "41.000": 41,
    "１２３": 123, "9223372036854775807": 9223372036854775807,
    "9223372036854775808": None, "41.5": None, "1,23": None, "12,345,67": None, "1.": None, ".5": None,
    "1e5": None, "12 345": None, "--1": None, "abc": None, "0x10": None, "¥100": None,
}  # fmt: skip

DECIMALS = {
    "0": Decimal("0"), "41.2": Decimal("41.2"), "-1,234.5": Decimal("-1234.5"), "+0.000001": Decimal("0.000001"),
    "0.0000004": Decimal("0"), "0.0000005": Decimal("0.000001"), "1,234,567.891": Decimal("1234567.891"),
    "123456789012345678": Decimal("123456789012345678"),
    "1234567890123456789": None, "1,23.4": None, "1.2.3": None, "1e3": None, "NaN值": None, "五": None,
}  # fmt: skip


def test_parse_date(spark):
    rows = _run(spark, list(DATES), d=lambda v: E.parse_date(E.normalize_text(v)))
    assert {r["v"]: r["d"] for r in rows} == DATES


def test_parse_timestamp(spark):
    # compare as text: collect() would shift the session time zone (Asia/Shanghai) to the local one
    as_text = {k: v and f"{v:%Y-%m-%d %H:%M:%S}" for k, v in TIMESTAMPS.items()}
    rows = _run(
        spark,
        list(TIMESTAMPS),
        t=lambda v: F.date_format(E.parse_timestamp(E.normalize_text(v)), "yyyy-MM-dd HH:mm:ss"),
    )
    assert {r["v"]: r["t"] for r in rows} == as_text


def test_parse_numbers(spark):
    rows = _run(spark, list(INTEGERS), i=lambda v: E.parse_integer(E.normalize_text(v)))
    assert {r["v"]: r["i"] for r in rows} == INTEGERS
    rows = _run(spark, list(DECIMALS), d=lambda v: E.parse_decimal(E.normalize_text(v)))
    assert {r["v"]: r["d"] for r in rows} == DECIMALS
    rows = _run(spark, ["1.25", "1234567.84", "12345678.9"], d=lambda v: E.parse_decimal(v, 8, 1))
    assert [r["d"] for r in rows] == [Decimal("1.3"), Decimal("1234567.8"), None]


# (text, unit) -> (amount, currency); None when not money
MONEY = {
    ("5,000(万元人民币)", "万元"): (Decimal("5000"), "CNY"),
    ("41.2000(万)", "万元"): (Decimal("41.2"), "CNY"),
    ("970万人民币", "万元"): (Decimal("970"), "CNY"),
    ("120(万美元)", "万元"): (Decimal("120"), "USD"),
    ("500000元", "万元"): (Decimal("50"), "CNY"),
    ("N/A", "万元"): None,
    ("五百万", "万元"): None,
    ("5000", "万元"): (Decimal("5000"), "CNY"),
    ("5000", "元"): (Decimal("5000"), "CNY"),
    ("12（万元）", "万元"): (Decimal("12"), "CNY"),
    ("１２（万元）", "万元"): (Decimal("12"), "CNY"),
    ("12 万元", "万元"): (Decimal("12"), "CNY"),
    ("3万元", "元"): (Decimal("30000"), "CNY"),
    ("1.5亿", "万元"): (Decimal("15000"), "CNY"),
    ("1.5亿元", "元"): (Decimal("150000000"), "CNY"),
    ("500000元", "亿元"): (Decimal("0.005"), "CNY"),
    ("1元", "亿元"): (Decimal("0.000000"), "CNY"),
    ("2万元人民币", "亿元"): (Decimal("0.0002"), "CNY"),
    ("100元人民币", "元"): (Decimal("100"), "CNY"),
    ("100人民币", "万元"): (Decimal("0.01"), "CNY"),
    ("7港币", "元"): (Decimal("7"), "HKD"),
    ("7万港元", "元"): (Decimal("70000"), "HKD"),
    ("(8欧元)", "元"): None,
    ("8(欧元)", "元"): (Decimal("8"), "EUR"),
    ("9万日元", "万元"): (Decimal("9"), "JPY"),
    ("-1,000.5万", "万元"): (Decimal("-1000.5"), "CNY"),
    ("万元", "万元"): None,
    ("5000万元人民币币", "万元"): None,
    ("1,2345万", "万元"): None,
    ("5000(万元", "万元"): None,
    ("5000英镑", "万元"): (Decimal("0.5"), "GBP"),
    ("1亿美元", "万元"): (Decimal("10000"), "USD"),
    ("12345678901234567890万", "万元"): None,
    # as registries write it: 元 after the currency, 元 before it, brackets with spaces, currency first
    ("50万人民币元", "万元"): (Decimal("50"), "CNY"),
    ("15(万元美元)", "万元"): (Decimal("15"), "USD"),
    ("1,000(万香港元)", "万元"): (Decimal("1000"), "HKD"),
    ("45(万德国马克 )", "万元"): (Decimal("45"), "DEM"),
    ("300万元人民币", "万元"): (Decimal("300"), "CNY"),
    ("人民币500万元", "万元"): (Decimal("500"), "CNY"),
    ("人民币 500 万元", "万元"): (Decimal("500"), "CNY"),
    ("USD 20万", "万元"): (Decimal("20"), "USD"),
    ("usd20万", "万元"): (Decimal("20"), "USD"),
    ("RMB 80万元", "万元"): (Decimal("80"), "CNY"),
    ("CNY80万", "万元"): (Decimal("80"), "CNY"),
    ("美元100万", "万元"): (Decimal("100"), "USD"),
    ("港币 30万元", "万元"): (Decimal("30"), "HKD"),
    ("USD 20万美元", "万元"): (Decimal("20"), "USD"),  # named twice, the same currency
    ("5000（万元）", "万元"): (Decimal("5000"), "CNY"),
    ("2.5亿元", "万元"): (Decimal("25000"), "CNY"),
    ("1,234.5万港元", "万元"): (Decimal("1234.5"), "HKD"),
    ("50万美元元", "万元"): (Decimal("50"), "USD"),
    ("7万港币元", "万元"): (Decimal("7"), "HKD"),
    ("20万USD", "万元"): (Decimal("20"), "USD"),
    ("20 万 元", "万元"): (Decimal("20"), "CNY"),
    ("12( 万元 )", "万元"): (Decimal("12"), "CNY"),
    ("12 (  万元人民币)", "万元"): (Decimal("12"), "CNY"),
    ("3亿日元", "万元"): (Decimal("30000"), "JPY"),
    ("10万美金", "万元"): (Decimal("10"), "USD"),
    ("8万瑞士法郎", "万元"): (Decimal("8"), "CHF"),
    ("8(万新台币)", "万元"): (Decimal("8"), "TWD"),
    # full-width digits, commas, brackets and spaces (normalize_text makes them half-width)
    ("１，０００（万香港元）", "万元"): (Decimal("1000"), "HKD"),
    ("５０万人民币元", "万元"): (Decimal("50"), "CNY"),
    ("４５（　万德国马克　）", "万元"): (Decimal("45"), "DEM"),
    ("ＵＳＤ　２０万", "万元"): (Decimal("20"), "USD"),
    ("１２３４．５万港元", "万元"): (Decimal("1234.5"), "HKD"),
    # the same forms stored in 元 and in 亿元
    ("50万人民币元", "元"): (Decimal("500000"), "CNY"),
    ("50万人民币元", "亿元"): (Decimal("0.005"), "CNY"),
    ("15(万元美元)", "元"): (Decimal("150000"), "USD"),
    ("1,000(万香港元)", "亿元"): (Decimal("0.1"), "HKD"),
    ("2.5亿元", "元"): (Decimal("250000000"), "CNY"),
    ("2.5亿元", "亿元"): (Decimal("2.5"), "CNY"),
    ("人民币500万元", "亿元"): (Decimal("0.05"), "CNY"),
    ("USD 20万", "元"): (Decimal("200000"), "USD"),
    # a currency or 元 without 万/亿 means one unit of that currency; no word: the registration's unit
    ("人民币500", "元"): (Decimal("500"), "CNY"),
    ("人民币500", "万元"): (Decimal("0.05"), "CNY"),
    ("USD 200000", "万元"): (Decimal("20"), "USD"),
    ("100人民币元", "元"): (Decimal("100"), "CNY"),
    ("15(元)", "万元"): (Decimal("0.0015"), "CNY"),
    ("2.5", "亿元"): (Decimal("2.5"), "CNY"),
    # still refused: ambiguous, two currencies, unbalanced or empty brackets, words around the amount
    ("5000马克", "万元"): None,
    ("5000法郎", "万元"): None,
    ("5000克朗", "万元"): None,
    ("¥500", "元"): None,
    ("￥500万", "万元"): None,
    ("$500", "元"): None,
    ("USD 20万港元", "万元"): None,
    ("人民币500万美元", "万元"): None,
    ("500美元港元", "万元"): None,
    ("500元元", "元"): None,
    ("500万万", "万元"): None,
    ("500万亿", "万元"): None,
    ("500千元", "万元"): None,
    ("500()", "万元"): None,
    ("500( )", "万元"): None,
    ("500万元)", "万元"): None,
    ("500(万元", "万元"): None,
    ("500万(元)", "万元"): None,
    ("500(万元)(美元)", "万元"): None,
    ("(500万元)", "万元"): None,
    ("万元500", "万元"): None,
    ("约500万元", "万元"): None,
    ("500万元左右", "万元"): None,
    ("500万元整", "万元"): None,
    ("50万人民币元元", "万元"): None,
    ("人民币", "万元"): None,
    ("USD", "万元"): None,
    ("USD万", "万元"): None,
    ("500 USD 万", "万元"): None,
    ("USDD 500", "万元"): None,
    ("5,00万", "万元"): None,
    ("人民币 人民币500", "万元"): None,
}


def test_parse_money(spark):
    by_unit: dict[str, list[str]] = {}
    for text, unit in MONEY:
        by_unit.setdefault(unit, []).append(text)
    df = spark.createDataFrame([(t, u) for u, ts in by_unit.items() for t in ts], "v string, unit string")
    n = E.normalize_text(F.col("v"))
    money = F.when(F.col("unit") == "元", E.parse_money(n, "元"))
    money = money.when(F.col("unit") == "万元", E.parse_money(n, "万元")).otherwise(E.parse_money(n, "亿元"))
    out = df.select("v", "unit", money.alias("m"))
    assert out.schema["m"].dataType.simpleString() == "struct<amount:decimal(24,6),currency:string>"
    got = {(r["v"], r["unit"]): (r["m"]["amount"], r["m"]["currency"]) if r["m"] else None for r in out.collect()}
    assert got == MONEY


def test_parse_money_knows_every_currency(spark):
    # every name and ISO code, after the number (with and without 元) and before it
    names = {**E.MONEY_CURRENCIES, **{c: c for c in E.CURRENCY_CODES}, "RMB": "CNY", "usd": "USD", "Hkd": "HKD"}
    cases = {}
    for name, code in names.items():
        for text in (f"12万{name}", f"12(万元{name})", f"12万{name}元", f"{name} 12万", f"{name}12(万元)"):
            cases[text] = (Decimal("12"), code)
    rows = _run(spark, list(cases), m=lambda v: E.parse_money(E.normalize_text(v), "万元"))
    got = {r["v"]: (r["m"]["amount"], r["m"]["currency"]) if r["m"] else None for r in rows}
    assert got == cases
    assert all(len(c) == 3 and c.isupper() and c.isascii() for c in E.CURRENCY_CODES)
    assert {"CNY", "USD", "HKD", "EUR", "JPY", "GBP", "DEM"} <= set(E.CURRENCY_CODES)


def test_parse_money_unit_conversions(spark):
    # one amount written in each unit, stored in each unit: 1 亿 = 10,000 万 = 100,000,000 元
    written = {"1.5亿元": Decimal("150000000"), "1.5亿": Decimal("150000000"), "15000万元": Decimal("150000000"),
               "15000(万)": Decimal("150000000"), "150000000元": Decimal("150000000"),
               "150,000,000(元人民币)": Decimal("150000000"), "0.25万美元": Decimal("2500")}  # fmt: skip
    df = spark.createDataFrame([(t,) for t in written], "v string")
    n = E.normalize_text(F.col("v"))
    out = df.select("v", *[E.parse_money(n, u).getField("amount").alias(u) for u in MONEY_UNITS]).collect()
    for r in out:
        for unit, factor in MONEY_UNITS.items():
            assert r[unit] == written[r["v"]] / factor, (r["v"], unit)


def test_generated_money_and_dates_read_as_their_truth(spark):
    """The sample generator's good money and date spellings give back the generated value, and its
    bad dates (a bare year among them) stay null, under these expressions (the product's rules)."""
    from types import SimpleNamespace

    from citylake.core.registry import FieldSpec
    from citylake_dev.generate.defects import bad_value, verify_bad
    from citylake_dev.generate.noise import date_text, money_text, noise

    rng = random.Random("generated-money")
    money_rows, date_rows = [], []
    for unit in MONEY_UNITS:
        f = FieldSpec(name="amount", title="金额", type="money", unit=unit)
        for _ in range(600):
            yuan = Decimal(rng.choice((rng.randrange(1, 10**6) * 10000, rng.randrange(1, 10**9)))) / 100
            v = (yuan / MONEY_UNITS[unit]).quantize(Decimal("0.000001"))
            money_rows.append((noise(money_text(rng, f, v), rng), unit, v))
    for _ in range(400):
        d = date(1935, 1, 1) + timedelta(days=rng.randrange(40000))
        date_rows.append((noise(date_text(rng, d), rng), d))
    f = FieldSpec(name="day", title="日期", type="date")
    for fmt in ("csv", "json", "xlsx"):
        g = SimpleNamespace(rng=rng, fmt=fmt, encoding="utf-8" if fmt != "xlsx" else "xlsx")
        for _ in range(150):
            cell = bad_value(g, "bad_date", f, "date", {"day": date(2021, 1, 29)})
            verify_bad(g, "bad_date", f, "date", cell)
            date_rows.append((str(cell), None))
    assert {"2021", "2021.0", " 2021 ", "２０２１"} <= {t for t, d in date_rows if d is None}

    df = spark.createDataFrame([(t, u) for t, u, _ in money_rows], "v string, unit string")
    n = E.normalize_text(F.col("v"))
    money = F.when(F.col("unit") == "元", E.parse_money(n, "元"))
    money = money.when(F.col("unit") == "万元", E.parse_money(n, "万元")).otherwise(E.parse_money(n, "亿元"))
    got = [(r["v"], r["unit"], r["m"] and r["m"]["amount"]) for r in df.select("v", "unit", money.alias("m")).collect()]
    assert [(t, u, a) for t, u, a in got] == [(t, u, v) for t, u, v in money_rows]
    forms = {t for t, _, _ in money_rows}
    assert any("(万元美元)" in t for t in forms) and any(t.startswith("人民币") for t in forms)
    assert any("人民币元" in t for t in forms) and any("( " in t for t in forms)

    rows = _run(spark, [t for t, _ in date_rows], d=lambda v: E.parse_date(E.normalize_text(v)))
    assert [r["d"] for r in rows] == [d for _, d in date_rows]


def test_parse_money_rejects_unknown_unit():
    with pytest.raises(ValueError):
        E.parse_money(F.col("v"), "千元")


def test_codelist_value(spark):
    codes = {"1": "男", "2": "女", "9": "未说明", "M": "1"}
    rows = _run(
        spark, ["1", "男", "女", "9", "未说明", "M", "3", "male", "m", None], c=lambda v: E.codelist_value(v, codes)
    )
    assert [r["c"] for r in rows] == ["1", "1", "2", "9", "9", "M", None, None, None, None]
    rows = _run(spark, ["a", "b"], c=lambda v: E.codelist_value(v, {"a": "x", "c": "x"}))
    assert [r["c"] for r in rows] == ["a", None]


def test_nothing_throws_under_ansi(spark):
    assert spark.conf.get("spark.sql.ansi.enabled") == "true"
    junk = [
        "9" * 60, "-" * 5, "1e309", "2021-99-99", "99999", "99999999999999", "00000000", "0000年0月0日", "１２", "\ud7ff",
        "2021-01-29 99:99:99", "9999-12-31 23:59:59", "+", ".", ",", "(万元)", "9" * 30 + "亿", "\x00", "x" * 1000,
    ]  # fmt: skip
    exprs = {
        "d": E.parse_date, "t": E.parse_timestamp, "i": E.parse_integer, "dec": E.parse_decimal,
        "m": lambda v: E.parse_money(v, "亿元"), "m2": lambda v: E.parse_money(v, "元"),
    }  # fmt: skip
    rows = _run(spark, junk, **exprs)  # identifiers get the same junk in the agreement test
    assert len(rows) == len(junk)


def test_unknown_check_is_an_error():
    with pytest.raises(ValueError):
        E.identifier_reason("passport", F.col("v"))
    with pytest.raises(ValueError):
        E.identifier_reason("cn_id", F.col("v"), legacy15="keep")


# ---- agreement with citylake.core.identifiers ---------------------------------------------------------------
SPACES = (" ", "\t", "\u3000", "\xa0", "\u2003", "\n")


def _fullwidth(text: str) -> str:
    return text.translate(str.maketrans(idf.HALFWIDTH, idf.FULLWIDTH))


def _replace(rng: random.Random, text: str, alphabet: str) -> str:
    i = rng.randrange(len(text))
    return text[:i] + rng.choice(alphabet) + text[i + 1 :]


def _decorate(rng: random.Random, text: str) -> str:
    """Ways exports dirty an otherwise unchanged value."""
    k = rng.randrange(8)
    if k == 0:
        return text.lower()
    if k == 1:
        return _fullwidth(text)
    if k == 2:
        i = rng.randrange(len(text) + 1)
        return text[:i] + rng.choice(SPACES) + text[i:]
    if k == 3:
        return rng.choice(SPACES) + text + rng.choice(SPACES)
    if k == 4:
        return text[: rng.randrange(len(text))]  # truncated
    if k == 5:
        return text + rng.choice("0123456789X")  # too long
    return text


COMMON_JUNK = [
    "北京市朝阳区", "某某公司", "xx", "XXXX", "***", "-", "NULL", "无", "不详", "", "  ", "N/A", "1", "abc",
    "91110000802100433B", "11010519491231002X", "13800138000", "110105", "80210043-3", "锟斤拷",
    "9" * 60, "x" * 300, "\x00", "\ud7ff", "ß" * 18, "ſ" * 9, "ı", "1" * 17 + "ſ", "１３８００１３８０００",
]  # fmt: skip


def _uscc_values(rng):
    out = []
    for _ in range(2500):
        head = "".join(rng.choice(idf.USCC_ALPHABET) for _ in range(2))
        body = head + "".join(rng.choice("0123456789") for _ in range(6))
        body += "".join(rng.choice(idf.USCC_ALPHABET) for _ in range(9))
        code = body + idf.uscc_check_char(body)
        k = rng.randrange(10)
        if k == 0:
            code = body + rng.choice(idf.USCC_ALPHABET.replace(code[17], ""))  # wrong check character
        elif k == 1:
            code = _replace(rng, code, idf.USCC_ALPHABET + "IOSVZ*")
        elif k == 2:
            d14 = "".join(rng.choice("0123456789") for _ in range(14))
            code = d14 + (idf.regno15_check_digit(d14) if rng.random() < 0.5 else rng.choice("0123456789"))
        elif k == 3:
            i = rng.randrange(14)
            code = code[:i] + rng.choice(["xx", "XXXX", "*", "****"]) + code[i + 4 :]
        elif k == 4:
            i = rng.randrange(18)
            code = code[:i] + rng.choice(["北京", "有限公司", "㐀", "鿿"]) + code[i:]
        out.append(_decorate(rng, code))
    return out


def _cn_id_values(rng):
    areas = sorted(idf.all_division_codes())
    out = []
    for _ in range(2500):
        born = date(1850, 1, 1) + timedelta(days=rng.randrange((TODAY - date(1850, 1, 1)).days + 400))
        area = rng.choice(areas) if rng.random() < 0.9 else f"{rng.randrange(10**6):06d}"
        body = f"{area}{born:%Y%m%d}{rng.randrange(1000):03d}"
        number = body + idf.cn_id_check_char(body)
        k = rng.randrange(10)
        if k == 0:
            number = body + rng.choice(idf.CN_ID_CHECK_CHARS.replace(number[17], ""))
        elif k == 1:  # bad month / day
            number = body[:10] + rng.choice(["13", "00", "02"]) + rng.choice(["30", "31", "00", "29"]) + body[14:]
            number = number + idf.cn_id_check_char(number)
        elif k == 2:  # legacy 15-digit
            number = body[:6] + body[8:17]
        elif k == 3:  # masked
            number = number[:6] + "********" + number[14:]
        elif k == 4:
            number = _replace(rng, number, "0123456789XA")
        elif k == 5:  # future
            later = TODAY + timedelta(days=rng.randrange(1, 4000))
            number = f"{area}{later:%Y%m%d}001"
            number += idf.cn_id_check_char(number)
        out.append(_decorate(rng, number))
    return out


def _org_values(rng):
    alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = []
    for _ in range(2000):
        body = "".join(rng.choice(alnum) for _ in range(8))
        code = body + idf.org_check_char(body)
        k = rng.randrange(8)
        if k == 0:
            code = body + rng.choice("0123456789X".replace(code[8], ""))
        elif k == 1:
            code = body + "-" + code[8]
        elif k == 2:
            code = _replace(rng, code, alnum + "-*")
        elif k == 3:
            code = code[:4] + "-" + code[4:]
        out.append(_decorate(rng, code))
    return out


def _division_values(rng):
    codes = sorted(idf.all_division_codes())
    out = []
    for _ in range(2000):
        k = rng.randrange(4)
        code = rng.choice(codes) if k < 2 else f"{rng.randrange(10**6):06d}"
        if k == 3:
            code = _replace(rng, code, "0123456789AX")
        out.append(_decorate(rng, code))
    return out


def _mobile_values(rng):
    out = []
    for _ in range(2000):
        number = "1" + rng.choice("0123456789") + "".join(rng.choice("0123456789") for _ in range(9))
        k = rng.randrange(8)
        if k == 0:
            number = rng.choice(["+86", "0086", "86", "+86 ", "(+86)", "0086-", "+852"]) + number
        elif k == 1:
            number = f"{number[:3]}{rng.choice(' -')}{number[3:7]}{rng.choice(' -')}{number[7:]}"
        elif k == 2:
            number = f"({number[:3]}){number[3:]}"
        elif k == 3:
            number = "0" + "".join(rng.choice("0123456789") for _ in range(rng.randrange(8, 12)))
        elif k == 4:
            number = _replace(rng, number, "0123456789+*x")
        out.append(_decorate(rng, number))
    return out


# Variants marked "known" take the conform job's route: membership precomputed by division_membership
# on the materialized normalized column; the others build their own isin.
AGREEMENT = {
    "uscc": (_uscc_values, [{}]),
    "cn_id": (
        _cn_id_values,
        [{"legacy15": "quarantine"}, {"legacy15": "quarantine", "known": True}, {"legacy15": "convert", "known": True}],
    ),
    "org_code": (_org_values, [{}]),
    "division_code": (
        _division_values,
        [
            {"retired_window_years": 5},
            {"retired_window_years": 5, "known": True},
            {"retired_window_years": 20, "known": True},
            {"retired_window_years": 0, "known": True},
        ],
    ),
    "mobile": (_mobile_values, [{}]),
}


@pytest.mark.parametrize("bound", [False, True], ids=["lambdas", "columns"])
@pytest.mark.parametrize("kind", list(AGREEMENT))
def test_spark_agrees_with_python(spark, kind, bound):
    """Both ways of binding the checks' intermediate values agree with Python: lambda variables
    (the default) and columns (E.materialized, the conform job's way)."""
    make_values, variants = AGREEMENT[kind]
    rng = random.Random(f"agreement-{kind}")
    values = list(dict.fromkeys(make_values(rng) + COMMON_JUNK))
    df = spark.createDataFrame([(v,) for v in values], "v string")
    df = df.select("v", E.normalize_text(F.col("v")).alias("text"))
    bindings = E.Bindings()
    with E.materialized(bindings) if bound else contextlib.nullcontext():
        stored, known, reasons_out = _agreement_columns(kind, variants)
    binds = kind != "mobile"  # the mobile check binds nothing
    if bound:
        assert bool(bindings.levels) == binds
        df = bindings.apply(df)
    df = df.select("*", *stored)
    if known:
        df = df.select("*", *known)
    df = df.select("*", *reasons_out)
    # _let's lambda is a one-element transform: none is left when the values are columns
    plan = df._jdf.queryExecution().analyzed().toString()
    assert ("transform(" in plan) == (binds and not bound), plan[:2000]
    rows = df.collect()
    assert [r["v"] for r in rows] == values
    _agree(kind, variants, rows)


def _agreement_columns(kind, variants):
    text = F.col("text")
    stored, known, reasons_out = [], [], []
    for i, variant in enumerate(variants):
        kw = {k: v for k, v in variant.items() if k != "known"}
        norm_kw = {"legacy15": kw["legacy15"]} if "legacy15" in kw else {}
        stored.append(E.identifier_normalized(kind, text, **norm_kw).alias(f"n{i}"))
        reason_kw = dict(kw, today=TODAY) if kind == "cn_id" else dict(kw)
        if variant.get("known"):
            window = kw.get("retired_window_years", 5)
            cn_id = kind == "cn_id"
            known.append(
                E.division_membership(f"n{i}", any_edition=cn_id, prefix6=cn_id, retired_window_years=window).alias(
                    f"k{i}"
                )
            )
            reason_kw["known"] = F.col(f"k{i}")
        reasons_out.append(E.identifier_reason(kind, text, **reason_kw).alias(f"r{i}"))
    return stored, known, reasons_out


def _agree(kind, variants, rows):
    reasons: dict[str | None, int] = {}
    mismatches = []
    for r in rows:
        for i, variant in enumerate(variants):
            kw = {k: v for k, v in variant.items() if k != "known"}
            if idf.normalize_text(r["v"]) is None:  # the caller reports required:<field>
                expected = (None, None)
            else:
                py_kw = dict(kw, today=TODAY) if kind == "cn_id" else kw
                result = idf.CHECKERS[kind](r["v"], **py_kw)
                expected = (result.reason, result.normalized)
                reasons[result.reason] = reasons.get(result.reason, 0) + 1
            if (r[f"r{i}"], r[f"n{i}"]) != expected:
                mismatches.append((r["v"], variant, (r[f"r{i}"], r[f"n{i}"]), expected))
    assert not mismatches, mismatches[:20]
    # the generated values really exercise every reason of this check
    expected_reasons = {
        "uscc": {None, "uscc_masked", "uscc_text", "uscc_regno15", "uscc_format", "uscc_check"},
        "cn_id": {None, "cn_id_legacy15", "cn_id_format", "cn_id_area", "cn_id_birth", "cn_id_check"},
        "org_code": {None, "org_code_format", "org_code_check"},
        "division_code": {None, "division_format", "division_unknown"},
        "mobile": {None, "mobile_format"},
    }[kind]
    assert set(reasons) == expected_reasons
    assert all(n >= 20 for n in reasons.values()), reasons
