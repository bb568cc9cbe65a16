"""Identifier standards (GB 32100-2015, GB 11643-1999, GB 11714-1997, GB/T 2260): constants and pure-Python checks.

The constants here are *the* definitions: the Spark column expressions in
``citylake/core/expressions.py`` are built from the same tables, and a test proves the
two evaluators agree. ``citylake check`` uses this module.

Each check takes an already-normalized value (see :func:`normalize_text`) and
returns a :class:`CheckResult` whose ``reason`` is a code from
:mod:`citylake.core.reasons` or ``None`` when valid. Reasons are tested in a fixed
order (documented per check) so both evaluators give the same single answer.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

# ---- text normalization ------------------------------------------------------------------
# Full-width ASCII variants U+FF01..U+FF5E map to U+0021..U+007E; U+3000 is the ideographic space.
FULLWIDTH = "".join(chr(c) for c in range(0xFF01, 0xFF5F)) + "\u3000"
HALFWIDTH = "".join(chr(c) for c in range(0x21, 0x7F)) + " "
_FULL_TO_HALF = str.maketrans(FULLWIDTH, HALFWIDTH)

# Exports write "nothing here" in many ways; these (after trim, case-insensitive) become null.
NULL_TOKENS = ("", "无", "空", "null", "none", "nan", "—", "——", "-", "--", "/", "n/a", "na", "#n/a", "暂无", "不详")

# Markers of text damaged by a wrong decoding: U+FFFD itself, and the UTF-8 bytes of U+FFFD
# read back as GBK ("锟斤拷"), the most common Chinese mojibake.
ENCODING_DAMAGE_MARKERS = ("\ufffd", "锟斤拷")


def normalize_text(value: str | None) -> str | None:
    """Full-width to half-width, trim, and null tokens to None."""
    if value is None:
        return None
    text = value.translate(_FULL_TO_HALF).strip()
    if text.lower() in NULL_TOKENS:
        return None
    return text


def has_encoding_damage(value: str | None) -> bool:
    return value is not None and any(m in value for m in ENCODING_DAMAGE_MARKERS)


# ---- GB 32100: unified social credit code --------------------------------------------------
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
USCC_PATTERN = r"^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$"
# Masked codes: an asterisk, a run of lower-case x (before upper-casing), or four upper-case X in a row.
USCC_MASK_PATTERN = r"(\*|xx|XXXX)"
CJK_PATTERN = r"[\u3400-\u9fff]"
REGNO15_PATTERN = r"^[0-9]{15}$"


def uscc_check_char(first17: str) -> str:
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, USCC_WEIGHTS))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def regno15_valid(digits: str) -> bool:
    """GS 15-2006 registration number: ISO 7064 MOD 11,10 over 15 digits."""
    p = 10
    for d in digits[:14]:
        s = (p % 11 + int(d)) % 10
        p = 2 * (s or 10)
    return (11 - p % 11) % 10 == int(digits[14])


def regno15_check_digit(first14: str) -> str:
    p = 10
    for d in first14:
        s = (p % 11 + int(d)) % 10
        p = 2 * (s or 10)
    return str((11 - p % 11) % 10)


# ---- GB 11714: organization code -------------------------------------------------------------
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
ORG_PATTERN = r"^[0-9A-Z]{8}[0-9X]$"


def _org_value(c: str) -> int:
    return int(c) if c.isdigit() else ord(c) - ord("A") + 10


def org_check_char(body8: str) -> str:
    v = 11 - sum(_org_value(c) * w for c, w in zip(body8, ORG_WEIGHTS)) % 11
    return "X" if v == 10 else ("0" if v == 11 else str(v))


# ---- GB 11643: citizen identity number ---------------------------------------------------------
CN_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CN_ID_CHECK_CHARS = "10X98765432"  # indexed by sum mod 11
CN_ID_PATTERN = r"^[0-9]{17}[0-9X]$"
CN_ID15_PATTERN = r"^[0-9]{15}$"


def cn_id_check_char(first17: str) -> str:
    return CN_ID_CHECK_CHARS[sum(int(c) * w for c, w in zip(first17, CN_ID_WEIGHTS)) % 11]


def cn_id_from_legacy15(value: str) -> str:
    """Legacy 15-digit number (YYMMDD birth date, no check) to the 18-digit form."""
    body = value[:6] + "19" + value[6:15]
    return body + cn_id_check_char(body)


# ---- mobile numbers ------------------------------------------------------------------------
MOBILE_PATTERN = r"^1[3-9][0-9]{9}$"
# Removed before matching: separators and the +86 / 0086 country prefix.
MOBILE_STRIP_PATTERN = r"[\s\-()]"
MOBILE_PREFIX_PATTERN = r"^(\+86|0086|86)(?=1[3-9][0-9]{9}$)"

# ---- GB/T 2260 --------------------------------------------------------------------------------
DIVISION_PATTERN = r"^[0-9]{6}$"


@dataclass(frozen=True)
class Division:
    code: str
    name: str
    first_edition: str  # the oldest edition (a year, e.g. "1980") holding the code
    last_edition: str  # the newest one; a gap in between is not recorded (see the data file's header)

    @property
    def first_year(self) -> int:
        return int(self.first_edition[:4])

    @property
    def last_year(self) -> int:
        return int(self.last_edition[:4])


@dataclass(frozen=True)
class DivisionEdition:
    edition: str  # a calendar year, e.g. "1980": every code of any published list of that year
    as_of: date  # as-of date of its newest list
    codes: int  # how many codes it holds
    source: str  # the lists merged, e.g. "areacodes:1995 mca:199512" (see the data file's header)


def _data_rows(file_name: str) -> list[dict[str, str]]:
    """Rows of a shipped CSV next to this file, its ``#`` header comment left out."""
    # Next to this file, not importlib.resources.files("citylake"): under pytest the tests/citylake
    # folder can shadow the package name as a namespace package, and the lookup then misses the file.
    text = (Path(__file__).with_name("data") / file_name).read_text(encoding="utf-8")
    return list(csv.DictReader(line for line in text.splitlines() if not line.startswith("#")))


@lru_cache(maxsize=1)
def divisions() -> dict[str, Division]:
    """The shipped GB/T 2260 list: every county-level-and-above code in any edition."""
    rows = _data_rows("gb2260_divisions.csv")
    return {r["code"]: Division(r["code"], r["name"], r["first_edition"], r["last_edition"]) for r in rows}


@lru_cache(maxsize=1)
def division_editions() -> dict[str, DivisionEdition]:
    """The shipped GB/T 2260 editions, oldest first, with their dates and source lists."""
    rows = sorted(_data_rows("gb2260_editions.csv"), key=lambda r: r["edition"])
    return {
        r["edition"]: DivisionEdition(r["edition"], date.fromisoformat(r["date"]), int(r["codes"]), r["source"])
        for r in rows
    }


def latest_division_edition() -> int:
    return max(d.last_year for d in divisions().values())


@lru_cache(maxsize=8)
def accepted_division_codes(retired_window_years: int) -> frozenset[str]:
    """Codes in the latest edition, plus codes retired within the window before it."""
    oldest = latest_division_edition() - retired_window_years
    return frozenset(c for c, d in divisions().items() if d.last_year >= oldest)


@lru_cache(maxsize=1)
def all_division_codes() -> frozenset[str]:
    """Any edition: a citizen ID keeps the address code of its first registration."""
    return frozenset(divisions())


# ---- the checks --------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckResult:
    value: str | None
    valid: bool
    reason: str | None
    normalized: str | None

    def as_dict(self) -> dict:
        return {"value": self.value, "valid": self.valid, "reason": self.reason, "normalized": self.normalized}


def _result(value, reason, normalized) -> CheckResult:
    return CheckResult(value, reason is None, reason, normalized)


def _compact(text: str) -> str:
    return re.sub(r"\s+", "", text)


def check_uscc(value: str) -> CheckResult:
    """Order: masked, text from another column, old 15-digit number, format, check character."""
    text = _compact(normalize_text(value) or "")
    if re.search(USCC_MASK_PATTERN, text):
        return _result(value, "uscc_masked", text)
    if re.search(CJK_PATTERN, text):
        return _result(value, "uscc_text", text)
    upper = text.upper()
    if re.match(REGNO15_PATTERN, upper):
        return _result(value, "uscc_regno15" if regno15_valid(upper) else "uscc_format", upper)
    if not re.match(USCC_PATTERN, upper):
        return _result(value, "uscc_format", upper)
    if uscc_check_char(upper[:17]) != upper[17]:
        return _result(value, "uscc_check", upper)
    return _result(value, None, upper)


def check_org_code(value: str) -> CheckResult:
    text = _compact(normalize_text(value) or "").upper().replace("-", "")
    if not re.match(ORG_PATTERN, text):
        return _result(value, "org_code_format", text)
    if org_check_char(text[:8]) != text[8]:
        return _result(value, "org_code_check", text)
    return _result(value, None, text)


def _birth_ok(yyyymmdd: str, today: date | None = None) -> bool:
    try:
        born = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return False
    return date(1850, 1, 1) <= born <= (today or date.today())


def check_cn_id(value: str, legacy15: str = "quarantine", today: date | None = None) -> CheckResult:
    """Order: legacy 15-digit (converted or refused), format, address code, birth date, check."""
    text = _compact(normalize_text(value) or "").upper()
    if re.match(CN_ID15_PATTERN, text):
        if legacy15 != "convert":
            return _result(value, "cn_id_legacy15", text)
        text = cn_id_from_legacy15(text)
    if not re.match(CN_ID_PATTERN, text):
        return _result(value, "cn_id_format", text)
    if text[:6] not in all_division_codes():
        return _result(value, "cn_id_area", text)
    if not _birth_ok(text[6:14], today):
        return _result(value, "cn_id_birth", text)
    if cn_id_check_char(text[:17]) != text[17]:
        return _result(value, "cn_id_check", text)
    return _result(value, None, text)


def check_division_code(value: str, retired_window_years: int = 5) -> CheckResult:
    text = _compact(normalize_text(value) or "")
    if not re.match(DIVISION_PATTERN, text):
        return _result(value, "division_format", text)
    if text not in accepted_division_codes(retired_window_years):
        return _result(value, "division_unknown", text)
    return _result(value, None, text)


def normalize_mobile(value: str) -> str:
    text = re.sub(MOBILE_STRIP_PATTERN, "", normalize_text(value) or "")
    return re.sub(MOBILE_PREFIX_PATTERN, "", text)


def check_mobile(value: str) -> CheckResult:
    text = normalize_mobile(value)
    if not re.match(MOBILE_PATTERN, text):
        return _result(value, "mobile_format", text)
    return _result(value, None, text)


CHECKERS = {
    "uscc": check_uscc,
    "cn_id": check_cn_id,
    "org_code": check_org_code,
    "division_code": check_division_code,
    "mobile": check_mobile,
}
