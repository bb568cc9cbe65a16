"""Spark column expressions for the conform rules (docs/conform-rules.md sections 2-5).

Native expressions only (``pyspark.sql.functions``: regexes, higher-order functions over
``sequence``, ``try_*`` parsers): no Python UDFs, so the JVM evaluates them and nothing
throws under ``spark.sql.ansi.enabled=true``.

Every definition (alphabets, weights, patterns, null tokens, division lists) comes from
:mod:`citylake.identifiers`; ``tests/jobs/test_expressions.py`` proves these expressions
give the same reason and normalized value as the pure-Python checks.

Callers pass identifier and type parsers a column that has already been through
:func:`normalize_text` (compute it once per field and reuse it).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pyspark.sql import Column
from pyspark.sql import functions as F

from citylake import identifiers as idf
from citylake.registry import MONEY_UNITS

__all__ = [
    "normalize_text",
    "has_encoding_damage",
    "identifier_reason",
    "identifier_normalized",
    "parse_date",
    "parse_timestamp",
    "parse_integer",
    "parse_decimal",
    "parse_money",
    "codelist_value",
    "division_membership",
    "IDENTIFIER_CHECKS",
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


def _null_str() -> Column:
    return F.lit(None).cast("string")


# ---- section 2 and 3: row check and field normalization ----------------------------------------
def normalize_text(col: Column) -> Column:
    """Full-width ASCII (and U+3000) to half-width, trim, null tokens (case-insensitive) to null."""
    text = F.trim(F.translate(col, idf.FULLWIDTH, idf.HALFWIDTH), F.lit(_SPACE_CHARS))
    return F.when(F.lower(text).isin(list(idf.NULL_TOKENS)), _null_str()).otherwise(text)


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


def _weighted_sum(text: Column, weights: tuple[int, ...], value) -> Column:
    """sum(value(char_i) * weights[i]) over the first len(weights) characters, as one aggregate."""
    w = F.array(*[F.lit(x) for x in weights])
    return F.aggregate(
        F.sequence(F.lit(1), F.lit(len(weights))),
        F.lit(0),
        lambda acc, i: acc + value(F.substr(text, i, F.lit(1))) * F.element_at(w, i),
    )


def _digit(c: Column) -> Column:
    # only used on characters a pattern has already proved to be digits; never throws otherwise
    return F.ascii(c) - ord("0")


def _uscc_check_char(upper: Column) -> Column:
    alphabet = F.lit(idf.USCC_ALPHABET)
    n = len(idf.USCC_ALPHABET)
    total = _weighted_sum(upper, idf.USCC_WEIGHTS, lambda c: F.instr(alphabet, c) - 1)
    return F.substr(alphabet, (F.lit(n) - total % n) % n + 1, F.lit(1))


def _regno15_valid(digits: Column) -> Column:
    """GS 15-2006, ISO 7064 MOD 11,10 (identifiers.regno15_valid)."""

    def step(p, i):
        s = (p % 11 + _digit(F.substr(digits, i, F.lit(1)))) % 10
        return 2 * ((s + 9) % 10 + 1)  # s, or 10 when s is 0

    p = F.aggregate(F.sequence(F.lit(1), F.lit(14)), F.lit(10), step)
    return (11 - p % 11) % 10 == _digit(F.substr(digits, F.lit(15), F.lit(1)))


def _cn_id_check_char(text: Column) -> Column:
    total = _weighted_sum(text, idf.CN_ID_WEIGHTS, _digit)
    return F.substr(F.lit(idf.CN_ID_CHECK_CHARS), total % len(idf.CN_ID_CHECK_CHARS) + 1, F.lit(1))


def _org_check_char(text: Column) -> Column:
    def value(c):
        return F.when((c >= "0") & (c <= "9"), F.ascii(c) - ord("0")).otherwise(F.ascii(c) - ord("A") + 10)

    v = 11 - _weighted_sum(text, idf.ORG_WEIGHTS, value) % 11
    return F.when(v == 10, "X").when(v == 11, "0").otherwise(v.cast("string"))


def _birth_bad(yyyymmdd: Column, today: date | None) -> Column:
    born = F.try_to_date(yyyymmdd, "yyyyMMdd")
    upper = F.lit(today) if today is not None else F.current_date()
    return born.isNull() | (born < F.lit(date(1850, 1, 1))) | (born > upper)


def _identifier(check: str, col: Column, legacy15: str, retired_window_years: int, today,
                known: Column | None = None) -> tuple[Column, Column]:
    """(reason, normalized) for one identifier check; reason null when valid or input null."""
    if legacy15 not in ("quarantine", "convert"):
        raise ValueError(f"legacy15 must be 'quarantine' or 'convert', not {legacy15!r}")
    chain = F.when(col.isNull(), _null_str())

    if check == "uscc":
        text = _compact(col)
        upper = F.upper(text)
        masked_or_text = text.rlike(idf.USCC_MASK_PATTERN)
        cjk = text.rlike(idf.CJK_PATTERN)
        reason = (
            chain.when(masked_or_text, "uscc_masked")
            .when(cjk, "uscc_text")
            .when(
                upper.rlike(idf.REGNO15_PATTERN),
                F.when(_regno15_valid(upper), "uscc_regno15").otherwise("uscc_format"),
            )
            .when(~upper.rlike(idf.USCC_PATTERN), "uscc_format")
            .when(_uscc_check_char(upper) != F.substr(upper, F.lit(18), F.lit(1)), "uscc_check")
        )
        normalized = F.when(masked_or_text | cjk, text).otherwise(upper)
        return reason, normalized

    if check == "cn_id":
        text = F.upper(_compact(col))
        is15 = text.rlike(idf.CN_ID15_PATTERN)
        if legacy15 == "convert":
            body = F.concat(F.substr(text, F.lit(1), F.lit(6)), F.lit("19"), F.substr(text, F.lit(7), F.lit(9)))
            full = F.when(is15, F.concat(body, _cn_id_check_char(body))).otherwise(text)
        else:
            chain = chain.when(is15, "cn_id_legacy15")
            full = text
        reason = (
            chain.when(~full.rlike(idf.CN_ID_PATTERN), "cn_id_format")
            .when(~(known if known is not None else F.substr(full, F.lit(1), F.lit(6)).isin(
                sorted(idf.all_division_codes()))), "cn_id_area")
            .when(_birth_bad(F.substr(full, F.lit(7), F.lit(8)), today), "cn_id_birth")
            .when(_cn_id_check_char(full) != F.substr(full, F.lit(18), F.lit(1)), "cn_id_check")
        )
        return reason, full

    if check == "org_code":
        text = F.translate(F.upper(_compact(col)), "-", "")
        reason = chain.when(~text.rlike(idf.ORG_PATTERN), "org_code_format").when(
            _org_check_char(text) != F.substr(text, F.lit(9), F.lit(1)), "org_code_check"
        )
        return reason, text

    if check == "division_code":
        text = _compact(col)
        accepted = sorted(idf.accepted_division_codes(int(retired_window_years)))
        reason = chain.when(~text.rlike(idf.DIVISION_PATTERN), "division_format").when(
            ~(known if known is not None else text.isin(accepted)), "division_unknown"
        )
        return reason, text

    if check == "mobile":
        text = F.regexp_replace(
            F.regexp_replace(col, _java_regex(idf.MOBILE_STRIP_PATTERN), ""), idf.MOBILE_PREFIX_PATTERN, ""
        )
        reason = chain.when(~text.rlike(idf.MOBILE_PATTERN), "mobile_format")
        return reason, text

    raise ValueError(f"unknown identifier check {check!r}; expected one of {', '.join(IDENTIFIER_CHECKS)}")


def identifier_reason(
    check: str,
    col: Column,
    *,
    legacy15: str = "quarantine",
    retired_window_years: int = 5,
    today: date | None = None,
    known: Column | None = None,
) -> Column:
    """Bare reason code (e.g. ``uscc_check``) or null when valid / input null. Input: normalize_text'ed.

    ``known`` (cn_id, division_code): a precomputed boolean "the code is in the GB/T 2260 list",
    e.g. from :func:`division_membership`. Building a 4,000-literal ``isin`` through py4j costs
    seconds per use, so the conform job computes membership once with one SQL ``IN``.
    """
    return _identifier(check, col, legacy15, retired_window_years, today, known)[0]


def division_membership(column_name: str, *, any_edition: bool, retired_window_years: int = 5,
                        prefix6: bool = False) -> Column:
    """``<column> IN (<codes>)`` built by one SQL parse (cheap), for a *named* column.

    ``any_edition``: codes of every edition (citizen-ID address codes) or only accepted ones.
    ``prefix6``: test the first six characters (a citizen ID's address code).
    """
    codes = sorted(idf.all_division_codes() if any_edition else idf.accepted_division_codes(int(retired_window_years)))
    target = f"substr(`{column_name}`, 1, 6)" if prefix6 else f"`{column_name}`"
    return F.expr(f"coalesce({target} IN ({','.join(repr(c) for c in codes)}), false)")


def identifier_normalized(check: str, col: Column, *, legacy15: str = "quarantine") -> Column:
    """The stored form: white space removed, upper-cased, 15→18 converted, mobile prefix removed."""
    # The reason half is discarded: a constant `known` spares building its code lists.
    return _identifier(check, col, legacy15, 5, None, F.lit(True))[1]


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
    # Excel serial day: 1-5 digits, optional .0                               group 20
    f"|({_D}{{1,5}})(?:\\.0+)?"
    "|.*)\\z"
)
_DATE_TIME_REPL = "$1$5$8$14,$3$6$9$15,$4$7$10$16,$11$17,$12$18,$13$19,$20"
_EXCEL_EPOCH = date(1899, 12, 30)


def _date_time_parts(col: Column) -> list[Column]:
    parts = F.split(F.regexp_replace(col, _DATE_TIME_RE, _DATE_TIME_REPL), ",")
    return [F.get(parts, i) for i in range(7)]


def _int(text: Column) -> Column:
    return text.try_cast("int")  # "" -> null; the regex has proved everything else is digits


def _time_ok(hh: Column, mi: Column, ss: Column) -> Column:
    # make_timestamp would roll second 60 over into the next minute; a missing part is 0
    zero = F.lit(0)
    return (
        F.coalesce(_int(hh), zero).between(0, 23)
        & F.coalesce(_int(mi), zero).between(0, 59)
        & F.coalesce(_int(ss), zero).between(0, 59)
    )


def parse_date(col: Column) -> Column:
    """Date from any accepted form (a valid time after it is ignored) or an Excel serial day; else null."""
    y, m, d, hh, mi, ss, serial = _date_time_parts(col)
    # year 0000 is no real date (and no Python date either)
    ok = _time_ok(hh, mi, ss) & (y != "0000")
    calendar = F.when(ok, F.try_to_date(F.concat_ws("-", y, m, d), "y-M-d"))
    return F.when(serial != "", F.date_add(F.lit(_EXCEL_EPOCH), _int(serial))).otherwise(calendar)


def parse_timestamp(col: Column) -> Column:
    """Timestamp (session time zone) from a date form plus optional time, or YYYYMMDDHHMMSS; null otherwise."""
    y, m, d, hh, mi, ss, serial = _date_time_parts(col)
    zero = F.lit(0)
    ts = F.try_make_timestamp(
        _int(y), _int(m), _int(d), F.coalesce(_int(hh), zero), F.coalesce(_int(mi), zero), F.coalesce(_int(ss), zero)
    )
    return F.when((serial == "") & (y != "0000") & _time_ok(hh, mi, ss), ts)


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


# Money units (conform rules section 4): a multiplier word and/or a currency word.
_MONEY_UNIT_WORDS = (
    "万元人民币|万人民币|万元|万|元人民币|元|人民币|亿元|亿"
    "|万?美元|万?港元|万?港币|万?欧元|万?日元"
)
# "number|unit" in one pass; anything else (last alternative) becomes "|" -> null amount.
_MONEY_RE = (
    f"(?s)^(?:({_NUMBER}(?:\\.[0-9]+)?) *"
    f"(?:[(（] *({_MONEY_UNIT_WORDS}) *[)）]|({_MONEY_UNIT_WORDS}))?|.*)\\z"
)
_MONEY_MULTIPLIERS = {"万": MONEY_UNITS["万元"], "亿": MONEY_UNITS["亿元"]}
_CURRENCIES = (("美元", "USD"), ("港元", "HKD"), ("港币", "HKD"), ("欧元", "EUR"), ("日元", "JPY"))
_MONEY_TYPE = "decimal(24,6)"


def parse_money(col: Column, unit: str) -> Column:
    """struct<amount decimal(24,6) in the registration's ``unit``, currency> or null when unparseable."""
    if unit not in MONEY_UNITS:
        raise ValueError(f"money unit must be one of {', '.join(MONEY_UNITS)}, not {unit!r}")
    target = MONEY_UNITS[unit]
    parts = F.split(F.regexp_replace(col, _MONEY_RE, "$1|$2$3"), r"\|")
    number = F.translate(F.get(parts, 0), ",", "").try_cast("decimal(28,10)")
    word = F.get(parts, 1)

    written = F.when(word == "", F.lit(target))  # no unit: already in the registration's unit
    for prefix, factor in _MONEY_MULTIPLIERS.items():
        written = written.when(word.startswith(prefix), F.lit(factor))
    written = written.otherwise(F.lit(1))

    # Exact scaling: multiply or divide by a power of ten, each branch cast on its own.
    amount = F.when(written == target, number.try_cast(_MONEY_TYPE))
    for factor in sorted({1, *MONEY_UNITS.values(), *_MONEY_MULTIPLIERS.values()} - {target}):
        scaled = (
            number * F.lit(Decimal(factor // target)) if factor > target else number / F.lit(Decimal(target // factor))
        )
        amount = amount.when(written == factor, scaled.try_cast(_MONEY_TYPE))

    currency = None
    for cur_word, code in _CURRENCIES:
        hit = word.contains(cur_word)
        currency = F.when(hit, code) if currency is None else currency.when(hit, code)
    currency = currency.otherwise("CNY")
    return F.when(amount.isNotNull(), F.struct(amount.alias("amount"), currency.alias("currency")))


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
