"""Spark column expressions for the conform rules (docs/conform-rules.md sections 2-5).

Native expressions only (``pyspark.sql.functions``: regexes, check characters summed term by
term, date arithmetic, ``try_*`` casts): no Python UDFs, so the JVM evaluates them,
and nothing raises under ``spark.sql.ansi.enabled=true``. Identifier and date text is validated
before it reaches a function that could raise, so bad rows cost no throw-and-catch inside Spark
(only out-of-range numbers still go through a ``try_cast`` that fails internally).

Every definition (alphabets, weights, patterns, null tokens, division lists) comes from
:mod:`citylake.core.identifiers`; ``tests/core/test_expressions.py`` proves these expressions
give the same reason and normalized value as the pure-Python checks.

Callers pass identifier and type parsers a column that has already been through
:func:`normalize_text` (compute it once per field and reuse it).
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import date
from decimal import Decimal

from pyspark.sql import Column
from pyspark.sql import functions as F

from citylake.core import identifiers as idf
from citylake.core.registry import MONEY_UNITS

__all__ = [
    "CURRENCY_CODES",
    "IDENTIFIER_CHECKS",
    "MONEY_CURRENCIES",
    "codelist_value",
    "division_membership",
    "has_encoding_damage",
    "identifier_normalized",
    "identifier_reason",
    "normalize_text",
    "parse_date",
    "parse_decimal",
    "parse_integer",
    "parse_money",
    "parse_timestamp",
]

IDENTIFIER_CHECKS = tuple(idf.CHECKERS)

# ---- white space, exactly as Python's str.strip() / re "\s" see it ------------------------------
# identifiers.py trims with str.strip() and compacts with re "\s"; both mean str.isspace(). Java's
# "\s" is ASCII-only, so the same set is derived here and written as \uXXXX escapes for Java regex.
# (Every isspace() character is in the BMP; a test asserts it.)
_SPACE_CHARS = "".join(chr(c) for c in range(0x10000) if chr(c).isspace())
_SPACE_CLASS = "[" + "".join(f"\\u{ord(c):04x}" for c in _SPACE_CHARS) + "]"


def _java_regex(python_pattern: str) -> str:
    """A pattern from identifiers.py for java.util.regex: Python's Unicode "\\s" made explicit.

    Java accepts a nested class inside a class (union), so this works inside ``[...]`` too.
    """
    return python_pattern.replace(r"\s", _SPACE_CLASS)


class Bindings:
    """What :func:`_let` binds while :func:`materialized` is active: each value becomes a column
    (``_b0``, ``_b1``, …) that :meth:`apply` adds to a frame, one projection per nesting level, and
    ``fn`` gets the column instead of a lambda variable. Spark runs a lambda (``transform``)
    interpreted, with everything beneath it; columns keep the checks in generated code."""

    def __init__(self, prefix: str = "_b"):
        self.prefix = prefix
        self.levels: list[list[Column]] = []
        self.depth = 0
        self.count = 0

    def bind(self, value: Column) -> Column:
        name = f"{self.prefix}{self.count}"
        self.count += 1
        while len(self.levels) <= self.depth:
            self.levels.append([])
        self.levels[self.depth].append(value.alias(name))
        return F.col(name)

    def apply(self, df):
        """``df`` with every value bound so far (a level's values may read the levels before it)."""
        for level in self.levels:
            if level:
                df = df.select("*", *level)
        self.levels = []
        return df


_ACTIVE: list[Bindings] = []


@contextmanager
def materialized(bindings: Bindings):
    """Expressions built inside bind their values into ``bindings`` (apply them to the frame before
    selecting those expressions); outside, :func:`_let` binds through a lambda."""
    _ACTIVE.append(bindings)
    try:
        yield bindings
    finally:
        _ACTIVE.pop()


def _let(fn, **values: Column) -> Column:
    """``fn(**values)`` with every value computed once per row.

    Each value is computed on its own: values that share a costly part (a regex) should take it
    from an outer ``_let`` rather than each computing it again.

    Spark does not eliminate common subexpressions inside CASE branches, so a check chain that
    refers to its normalized text five times would compute it (a regex) five times. Passing the
    values through a one-element ``transform`` binds them to lambda variables instead.
    """
    if _ACTIVE:
        bindings = _ACTIVE[-1]
        cols = {k: bindings.bind(v) for k, v in values.items()}
        bindings.depth += 1
        try:
            return fn(**cols)
        finally:
            bindings.depth -= 1
    if len(values) == 1:
        ((name, value),) = values.items()
        return F.get(F.transform(F.array(value), lambda v: fn(**{name: v})), 0)
    packed = F.struct(*[v.alias(k) for k, v in values.items()])
    return F.get(F.transform(F.array(packed), lambda s: fn(**{k: s[k] for k in values})), 0)


def _null_str() -> Column:
    return F.lit(None).cast("string")


# ---- section 2 and 3: row check and field normalization ----------------------------------------
# Every null token but "" (which nullif handles), whole text, case-insensitive. The tokens are ASCII
# or caseless CJK, so Java's ASCII (?i) agrees with Python's str.lower() on them.
_NULL_TOKEN_RE = "(?i)^(?:" + "|".join(f"\\Q{t}\\E" for t in idf.NULL_TOKENS if t) + ")\\z"


def normalize_text(col: Column) -> Column:
    """Full-width ASCII (and U+3000) to half-width, trim, null tokens (case-insensitive) to null."""
    text = F.trim(F.translate(col, idf.FULLWIDTH, idf.HALFWIDTH), F.lit(_SPACE_CHARS))
    # One reference to the text and no lambda, so Spark generates code for all of it (the lambda
    # form ran interpreted; replacing it measured no change on its own, docs/benchmark.md).
    return F.nullif(F.regexp_replace(text, _NULL_TOKEN_RE, ""), F.lit(""))


def comparable_text(col: Column) -> Column:
    """Text as compared across departments: full-width ASCII (and U+3000) to half-width, every white
    space removed (``有限 公司`` and ``有限公司``, ``（郑州）`` and ``(郑州)`` are the same value)."""
    return F.regexp_replace(F.translate(col, idf.FULLWIDTH, idf.HALFWIDTH), _SPACE_CLASS + "+", "")


def has_encoding_damage(col: Column) -> Column:
    """True when the original text carries U+FFFD or 锟斤拷 (never null)."""
    hit = None
    for marker in idf.ENCODING_DAMAGE_MARKERS:
        cond = col.contains(marker)
        hit = cond if hit is None else (hit | cond)
    return F.coalesce(hit, F.lit(False))


# ---- section 5: identifiers --------------------------------------------------------------------
def _compact(col: Column) -> Column:
    return F.regexp_replace(col, _SPACE_CLASS + "+", "")


def _char(text: Column, pos: int) -> Column:
    return F.substr(text, F.lit(pos), F.lit(1))


def _weighted_sum(text: Column, weights: tuple[int, ...], value) -> Column:
    """sum(value(char_i) * weights[i]) over the first len(weights) characters.

    Written out term by term: the array form (split + zip_with + aggregate) compiled a regex and
    built two arrays per row.
    """
    total = F.lit(0)
    for i, w in enumerate(weights, start=1):
        total = total + value(_char(text, i)) * w
    return total


def _digit(c: Column) -> Column:
    # only meaningful on characters a pattern has proved to be digits; never throws otherwise
    return F.ascii(c) - ord("0")


def _uscc_check_char(upper: Column) -> Column:
    alphabet = F.lit(idf.USCC_ALPHABET)
    n = len(idf.USCC_ALPHABET)
    total = _weighted_sum(upper, idf.USCC_WEIGHTS, lambda c: F.instr(alphabet, c) - 1)
    return F.substr(alphabet, (F.lit(n) - total % n) % n + 1, F.lit(1))


def _regno15_valid(digits: Column) -> Column:
    """GS 15-2006, ISO 7064 MOD 11,10 (identifiers.regno15_valid)."""

    def step(p, d):
        s = (p % 11 + _digit(d)) % 10
        return 2 * ((s + 9) % 10 + 1)  # 2 * s, or 2 * 10 when s is 0

    p = F.aggregate(F.split(F.substr(digits, F.lit(1), F.lit(14)), ""), F.lit(10), step)
    return (11 - p % 11) % 10 == _digit(_char(digits, 15))


def _cn_id_check_char(text: Column) -> Column:
    total = _weighted_sum(text, idf.CN_ID_WEIGHTS, _digit)
    return F.substr(F.lit(idf.CN_ID_CHECK_CHARS), total % len(idf.CN_ID_CHECK_CHARS) + 1, F.lit(1))


def _org_check_char(text: Column) -> Column:
    def value(c):
        return F.when((c >= "0") & (c <= "9"), F.ascii(c) - ord("0")).otherwise(F.ascii(c) - ord("A") + 10)

    v = 11 - _weighted_sum(text, idf.ORG_WEIGHTS, value) % 11
    return F.when(v == 10, "X").when(v == 11, "0").otherwise(v.cast("string"))


def _number(digits: Column) -> Column:
    """Int from a string of at most 9 digits, or 0 for "" (no exception is raised, even internally)."""
    return F.concat(F.lit("0"), digits).try_cast("int")


def _real_date(y: Column, m: Column, d: Column) -> Column:
    """The date y-m-d, or null when there is no such day (2021-02-30), without raising inside Spark.

    y, m and d are referred to several times: pass columns that are cheap to evaluate (bound by _let).
    """
    ok = y.between(1, 9999) & m.between(1, 12) & d.between(1, 31)
    day = F.date_add(F.make_date(F.when(ok, y), F.when(ok, m), F.lit(1)), d - 1)
    return F.when(F.dayofmonth(day) == d, day)


def _cn_id_reason(t: Column, refuse15: bool, today: date | None, known: Column | None) -> Column:
    """Reason for an upper-cased, compacted (and, if registered so, 15→18 converted) citizen ID."""
    chain = F.when(t.isNull(), _null_str())
    if refuse15:
        chain = chain.when(t.rlike(idf.CN_ID15_PATTERN), "cn_id_legacy15")
    latest = F.lit(today) if today is not None else F.current_date()

    def birth_ok(y, m, d):
        return F.coalesce(_real_date(y, m, d).between(F.lit(date(1850, 1, 1)), latest), F.lit(False))

    positions = {"y": (7, 4), "m": (11, 2), "d": (13, 2)}  # YYYYMMDD after the address code
    ymd = {k: _number(F.substr(t, F.lit(p), F.lit(n))) for k, (p, n) in positions.items()}
    return (
        chain.when(~t.rlike(idf.CN_ID_PATTERN), "cn_id_format")
        .when(~_member(F.substr(t, F.lit(1), F.lit(6)), idf.all_division_codes(), known), "cn_id_area")
        .when(~_let(birth_ok, **ymd), "cn_id_birth")
        .when(_cn_id_check_char(t) != _char(t, 18), "cn_id_check")
    )


def _cn_id_text(col: Column, convert15: bool, fn) -> Column:
    """fn(t) with t the upper-cased, compacted ID, legacy 15-digit numbers converted if asked."""
    text = F.upper(_compact(col))
    if not convert15:
        return _let(fn, t=text)

    def convert(t):
        body = F.concat(F.substr(t, F.lit(1), F.lit(6)), F.lit("19"), F.substr(t, F.lit(7), F.lit(9)))
        converted = F.concat(body, _cn_id_check_char(body))
        return _let(fn, t=F.when(t.rlike(idf.CN_ID15_PATTERN), converted).otherwise(t))

    return _let(convert, t=text)


def _member(code: Column, codes, known: Column | None) -> Column:
    """``known`` (precomputed by division_membership) when given, else ``code IN codes``."""
    return known if known is not None else code.isin(sorted(codes))


def _check_legacy15(legacy15: str) -> bool:
    if legacy15 not in ("quarantine", "convert"):
        raise ValueError(f"legacy15 must be 'quarantine' or 'convert', not {legacy15!r}")
    return legacy15 == "convert"


def _unknown_check(check: str) -> ValueError:
    return ValueError(f"unknown identifier check {check!r}; expected one of {', '.join(IDENTIFIER_CHECKS)}")


def _mobile_text(col: Column) -> Column:
    stripped = F.regexp_replace(col, _java_regex(idf.MOBILE_STRIP_PATTERN), "")
    return F.regexp_replace(stripped, idf.MOBILE_PREFIX_PATTERN, "")


def identifier_reason(
    check: str,
    col: Column,
    *,
    legacy15: str = "quarantine",
    retired_window_years: int = 5,
    today: date | None = None,
    known: Column | None = None,
) -> Column:
    """Bare reason code (e.g. ``uscc_check``), or null when valid or input null. Input: normalize_text'ed.

    Reasons are tested in the order of citylake.core.identifiers (docs/conform-rules.md section 5).
    ``known`` (cn_id, division_code): a precomputed boolean "the code is in the GB/T 2260 list",
    e.g. from :func:`division_membership`. Building a 4,000-literal ``isin`` through py4j costs
    seconds per use, so the conform job computes membership once with one SQL ``IN``.
    """
    convert15 = _check_legacy15(legacy15)
    if check == "uscc":

        def uscc(text, upper):
            return (
                F.when(text.isNull(), _null_str())
                .when(text.rlike(idf.USCC_MASK_PATTERN), "uscc_masked")
                .when(text.rlike(idf.CJK_PATTERN), "uscc_text")
                .when(
                    upper.rlike(idf.REGNO15_PATTERN),
                    F.when(_regno15_valid(upper), "uscc_regno15").otherwise("uscc_format"),
                )
                .when(~upper.rlike(idf.USCC_PATTERN), "uscc_format")
                .when(_uscc_check_char(upper) != _char(upper, 18), "uscc_check")
            )

        # text bound before upper(text) is: a struct of both would run the compacting regex twice
        return _let(lambda text: _let(uscc, text=text, upper=F.upper(text)), text=_compact(col))

    if check == "cn_id":
        return _cn_id_text(col, convert15, lambda t: _cn_id_reason(t, not convert15, today, known))

    if check == "org_code":

        def org(t):
            return (
                F.when(t.isNull(), _null_str())
                .when(~t.rlike(idf.ORG_PATTERN), "org_code_format")
                .when(_org_check_char(t) != _char(t, 9), "org_code_check")
            )

        return _let(org, t=F.translate(F.upper(_compact(col)), "-", ""))

    if check == "division_code":
        def division(t):
            accepted = idf.accepted_division_codes(int(retired_window_years)) if known is None else ()
            return (
                F.when(t.isNull(), _null_str())
                .when(~t.rlike(idf.DIVISION_PATTERN), "division_format")
                .when(~_member(t, accepted, known), "division_unknown")
            )

        return _let(division, t=_compact(col))

    if check == "mobile":
        text = _mobile_text(col)
        return F.when(~text.rlike(idf.MOBILE_PATTERN), "mobile_format")  # null in, null out

    raise _unknown_check(check)


def division_membership(
    column_name: str, *, any_edition: bool, retired_window_years: int = 5, prefix6: bool = False
) -> Column:
    """``<column> IN (<codes>)`` built by one SQL parse (cheap), for a *named* column; never null.

    ``any_edition``: codes of every edition (citizen-ID address codes) or only accepted ones.
    ``prefix6``: test the first six characters (a citizen ID's address code).
    Pass the result as ``known`` to :func:`identifier_reason`; the column should hold the
    :func:`identifier_normalized` form.
    """
    if any_edition:
        codes = idf.all_division_codes()
    else:
        codes = idf.accepted_division_codes(int(retired_window_years))
    target = f"substr(`{column_name}`, 1, 6)" if prefix6 else f"`{column_name}`"
    return F.expr(f"coalesce({target} IN ({','.join(repr(c) for c in sorted(codes))}), false)")


def identifier_normalized(check: str, col: Column, *, legacy15: str = "quarantine") -> Column:
    """The stored form: white space removed, upper-cased, 15→18 converted, mobile prefix removed."""
    convert15 = _check_legacy15(legacy15)
    if check == "uscc":
        # masked values and text keep their case (as citylake.core.identifiers does)
        def uscc(t):
            return F.when(t.rlike(idf.USCC_MASK_PATTERN) | t.rlike(idf.CJK_PATTERN), t).otherwise(F.upper(t))

        return _let(uscc, t=_compact(col))
    if check == "cn_id":
        return F.upper(_compact(col)) if not convert15 else _cn_id_text(col, True, lambda t: t)
    if check == "org_code":
        return F.translate(F.upper(_compact(col)), "-", "")
    if check == "division_code":
        return _compact(col)
    if check == "mobile":
        return _mobile_text(col)
    raise _unknown_check(check)


# ---- section 4: types --------------------------------------------------------------------------
# One regex pass turns any accepted date / date-time text into "y,m,d,H,M,S,serial"; the last
# alternative (anything else) matches too, so text that is not a date yields empty fields -> null.
_D = "[0-9]"
_DATE_TIME_RE = (
    "(?s)^(?:"
    # 2021-01-29 / 2021/1/29 / 2021.1.29 (one separator throughout)          groups 1-4
    f"(?:({_D}{{4}})([-/.])({_D}{{1,2}})\\2({_D}{{1,2}})"
    # 2021年1月29日                                                            groups 5-7
    f"|({_D}{{4}})年({_D}{{1,2}})月({_D}{{1,2}})日"
    # 20210129                                                                groups 8-10
    f"|({_D}{{4}})({_D}{{2}})({_D}{{2}}))"
    # followed by space or T and H:mm, H:mm:ss or H时                          groups 11-13
    f"(?:[ T]({_D}{{1,2}})(?::({_D}{{2}})(?::({_D}{{2}}))?|时))?"
    # YYYYMMDDHHMMSS                                                          groups 14-19
    f"|({_D}{{4}})({_D}{{2}})({_D}{{2}})({_D}{{2}})({_D}{{2}})({_D}{{2}})"
    # Excel serial day: 5 digits (1927-05-18 on), optional .0; a bare year     group 20
    # (2021) or any shorter number is no date
    f"|({_D}{{5}})(?:\\.0+)?"
    "|.*)\\z"
)
_DATE_TIME_REPL = "$1$5$8$14,$3$6$9$15,$4$7$10$16,$11$17,$12$18,$13$19,$20"
_EXCEL_EPOCH = date(1899, 12, 30)


def _date_time(col: Column, fn) -> Column:
    """fn(y, m, d, hh, mi, ss, serial): ints (0 when absent) and the serial-day text ("" when absent)."""
    names = ("y", "m", "d", "hh", "mi", "ss")

    def split(parts):
        values = {k: _number(F.get(parts, i)) for i, k in enumerate(names)}
        return _let(fn, **values, serial=F.get(parts, len(names)))

    # Bound first: each of the seven values would otherwise run the regex again (a lambda's
    # argument has no common-subexpression elimination); measured 2x on a date column.
    return _let(split, parts=F.split(F.regexp_replace(col, _DATE_TIME_RE, _DATE_TIME_REPL), ","))


def _time_ok(hh: Column, mi: Column, ss: Column) -> Column:
    # make_timestamp would roll second 60 over into the next minute
    return hh.between(0, 23) & mi.between(0, 59) & ss.between(0, 59)


def parse_date(col: Column) -> Column:
    """Date from any accepted form (a valid time after it is ignored) or a 5-digit Excel serial day; else null."""

    def build(y, m, d, hh, mi, ss, serial):
        calendar = F.when(_time_ok(hh, mi, ss), _real_date(y, m, d))
        return F.when(serial != "", F.date_add(F.lit(_EXCEL_EPOCH), _number(serial))).otherwise(calendar)

    return _date_time(col, build)


def parse_timestamp(col: Column) -> Column:
    """Timestamp (session time zone): a date form with an optional time, or YYYYMMDDHHMMSS; else null."""

    def build(y, m, d, hh, mi, ss, serial):
        ok = (serial == "") & _time_ok(hh, mi, ss) & _real_date(y, m, d).isNotNull()
        return F.try_make_timestamp(F.when(ok, y), m, d, hh, mi, ss)  # checked first: never raises inside

    return _date_time(col, build)


# optional sign, digits with optional "," thousands separators, optional fraction
_NUMBER = r"[+-]?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)"
_DECIMAL_RE = f"^{_NUMBER}(?:\\.[0-9]+)?$"
_INTEGER_RE = f"^{_NUMBER}(?:\\.0+)?$"


def parse_integer(col: Column) -> Column:
    """Long from ``-1,234`` / ``41.0``; null when not an integer or out of range."""
    digits = F.substring_index(F.translate(col, ",", ""), ".", 1)
    return F.when(col.rlike(_INTEGER_RE), digits.try_cast("long"))


def parse_decimal(col: Column, precision: int = 24, scale: int = 6) -> Column:
    """decimal(precision, scale) from ``-1,234.5``; null when not a number or out of range."""
    return F.when(col.rlike(_DECIMAL_RE), F.translate(col, ",", "").try_cast(f"decimal({precision},{scale})"))


# Money (conform rules section 4). Registries write an amount with a currency before it
# (人民币500万元, USD 20万) and/or a unit word after it, bare or in brackets: an optional
# multiplier (万/亿), an optional 元, an optional currency, and 元 again after the currency
# (50万人民币元, 15(万元美元), 45(万德国马克 )). Currency names: the Chinese names of GB/T 12406
# (= ISO 4217) codes that enterprise registries show, with the common 美金/港币/澳门币. A name that
# could mean several currencies (马克, 法郎, 克朗, 比索, ¥, $) is left out: it stays bad_money
# rather than guessed.
MONEY_CURRENCIES: dict[str, str] = {
    "人民币": "CNY",
    "美元": "USD", "美金": "USD",
    "港元": "HKD", "港币": "HKD", "香港元": "HKD",
    "欧元": "EUR",
    "日元": "JPY",
    "英镑": "GBP",
    "德国马克": "DEM",
    "法国法郎": "FRF",
    "瑞士法郎": "CHF",
    "新加坡元": "SGD",
    "澳大利亚元": "AUD", "澳元": "AUD",
    "加拿大元": "CAD", "加元": "CAD",
    "新西兰元": "NZD",
    "澳门元": "MOP", "澳门币": "MOP",
    "新台币": "TWD",
    "韩元": "KRW",
    "泰铢": "THB",
    "俄罗斯卢布": "RUB", "卢布": "RUB",
    "瑞典克朗": "SEK", "挪威克朗": "NOK", "丹麦克朗": "DKK",
    "马来西亚林吉特": "MYR",
    "荷兰盾": "NLG",
    "意大利里拉": "ITL",
    "比利时法郎": "BEF",
    "奥地利先令": "ATS",
    "芬兰马克": "FIM",
}  # fmt: skip
# ISO 4217 codes are accepted too (any case), and RMB, the usual Latin name of the renminbi.
_MONEY_CODES = {**{c: c for c in MONEY_CURRENCIES.values()}, "RMB": "CNY"}
CURRENCY_CODES = tuple(sorted(set(MONEY_CURRENCIES.values())))
_MONEY_MULTIPLIERS = {"万": MONEY_UNITS["万元"], "亿": MONEY_UNITS["亿元"]}

# Possessive space runs (*+): spaces never start the next token, and giving none back keeps the
# pattern linear on long runs of spaces.
_SP = _SPACE_CLASS + "*+"
_CUR = (
    "("
    + "|".join(sorted(MONEY_CURRENCIES, key=len, reverse=True))
    + "|(?i:"
    + "|".join(sorted(_MONEY_CODES))
    + "))"
)
# "currency before|number|(|multiplier|元|currency after|)" in one pass; anything else (the last
# alternative) becomes all-empty fields -> null amount.
_MONEY_RE = (
    "(?s)^(?:"
    f"(?:{_CUR}{_SP})?"  # group 1: currency before
    f"({_NUMBER}(?:\\.[0-9]+)?){_SP}"  # group 2: number
    f"(\\()?{_SP}({'|'.join(_MONEY_MULTIPLIERS)})?{_SP}(元)?{_SP}"  # groups 3-5: (, 万/亿, 元
    f"(?:{_CUR}(?:{_SP}元)?)?{_SP}(\\))?"  # groups 6-7: currency after (元), )
    "|.*)\\z"
)
_MONEY_REPL = "$1|$2|$3|$4|$5|$6|$7"
_MONEY_TYPE = "decimal(24,6)"


def parse_money(col: Column, unit: str) -> Column:
    """struct<amount decimal(24,6) in the registration's ``unit``, currency (ISO 4217)> or null.

    Input: normalize_text'ed (full-width brackets, digits and commas are half-width by then).
    """
    if unit not in MONEY_UNITS:
        raise ValueError(f"money unit must be one of {', '.join(MONEY_UNITS)}, not {unit!r}")
    target = MONEY_UNITS[unit]
    codes = F.create_map(*[F.lit(x) for pair in sorted({**MONEY_CURRENCIES, **_MONEY_CODES}.items()) for x in pair])

    def code(word: Column) -> Column:
        return F.try_element_at(codes, F.upper(word))  # the regex only lets known words through

    def money(p):
        digits = F.translate(F.get(p, 1), ",", "")
        number = F.when(digits != "", digits.try_cast("decimal(28,10)"))
        before, opened, mult, yuan, after, closed = (F.get(p, i) for i in (0, 2, 3, 4, 5, 6))

        # No word at all: already in the registration's unit; a currency or 元 alone: one unit of it.
        written = None
        for word, factor in _MONEY_MULTIPLIERS.items():
            hit = mult == word
            written = F.when(hit, F.lit(factor)) if written is None else written.when(hit, F.lit(factor))
        written = written.when((yuan != "") | (before != "") | (after != ""), F.lit(1))
        written = written.otherwise(F.lit(target))

        # Exact scaling: multiply or divide by a power of ten, each branch cast on its own.
        amount = F.when(written == target, number.try_cast(_MONEY_TYPE))
        for factor in sorted({1, *MONEY_UNITS.values(), *_MONEY_MULTIPLIERS.values()} - {target}):
            if factor > target:
                scaled = number * F.lit(Decimal(factor // target))
            else:
                scaled = number / F.lit(Decimal(target // factor))
            amount = amount.when(written == factor, scaled.try_cast(_MONEY_TYPE))

        # Brackets come in pairs around a word; a currency named twice must be the same one (the
        # lookups of that rare case run only when both are there: Or short-circuits).
        ok = (
            ((opened == "") == (closed == ""))
            & ((opened == "") | (mult != "") | (yuan != "") | (after != ""))
            & ((before == "") | (after == "") | (code(before) == code(after)))
        )
        named = F.when(after != "", after).otherwise(before)
        return _let(
            lambda a, c: F.when(a.isNotNull(), F.struct(a.alias("amount"), c.alias("currency"))),
            a=F.when(ok, amount),
            c=F.coalesce(code(named), F.lit("CNY")),
        )

    return _let(money, p=F.split(F.regexp_replace(col, _MONEY_RE, _MONEY_REPL), r"\|"))


def codelist_value(col: Column, codes: dict[str, str]) -> Column:
    """The code when the value is a code or a code's meaning; else null."""
    code_list = [str(c) for c in codes]
    by_meaning: dict[str, str] = {}
    for code, meaning in codes.items():
        if meaning is not None:
            by_meaning.setdefault(str(meaning), str(code))
    result = F.when(col.isin(code_list), col) if code_list else F.when(F.lit(False), col)
    if by_meaning:
        lookup = F.create_map(*[F.lit(x) for pair in by_meaning.items() for x in pair])
        result = result.otherwise(F.try_element_at(lookup, col))
    return result
