"""Masking of personal values: one set of rules, expressed as Python and as Spark columns.

Curate masks curated data with :func:`mask_column` (native Spark expressions, no UDF); the
directory, receipts and the API mask values with :func:`mask_text` / :func:`mask_value` (defensive:
a pipeline bug never puts a personal value on a page). Both read the same tables below and
tests/core/test_masking.py checks they agree. The rules, for a non-null value:

* leading and trailing white space (ASCII and U+3000/U+00A0) is removed first; an empty value
  stays empty (``full`` gives ``****`` for any non-null value);
* ``cn_id`` keeps the first 6 and last 4, ``mobile`` the first 3 and last 4, ``bank_account`` the
  last 4, the rest becomes ``*``; a value shorter than ``_PARTIAL``'s minimum (shorter than a
  well-formed one) becomes all ``*`` of the same length, as a truncated ID would otherwise show
  nearly all its digits;
* ``name`` keeps the surname: two characters for a compound surname when the name is longer
  than two, else one; a one-character name becomes ``*``;
* ``address`` keeps at most three leading GB/T 2260 division names (province, prefecture,
  county / district / banner; longest name first at each position) and replaces the rest with
  ``****``; with no leading division name it is ``****``; an address made only of division
  names is kept as is;
* ``year`` (a date whose full value would give a masked value back: a birth date beside a masked
  citizen ID, whose hidden digits are that date) keeps the first four digits, the year, else
  ``****``;
* ``full`` is ``****``.

Null stays null. Every rule is idempotent: masking a masked value gives the same value.

Keys that stand for a personal key in shared data (``_record_key``) are keyed hashes, HMAC-SHA256
with a secret (:func:`keyed_hash`, :func:`keyed_hash_column`): a plain SHA-256 of a citizen ID is
reversed by hashing the ~40,000 IDs a known address code and birth-date range allow.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from functools import lru_cache
from typing import TYPE_CHECKING

from citylake.core.identifiers import divisions

if TYPE_CHECKING:
    from pyspark.sql import Column

    from citylake.core.registry import FieldSpec, Registration

# 复姓: keep both characters of the surname.
COMPOUND_SURNAMES = frozenset(
    "欧阳 司马 上官 诸葛 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 司空 夏侯 令狐 端木 独孤 南宫 西门 轩辕 "
    "澹台 公冶 宗政 濮阳 太叔 申屠 钟离 闻人 赫连 呼延 万俟 淳于 单于 百里 东郭 羊舌 微生 梁丘 左丘 "
    "第五 拓跋 谷梁 乐正 段干 司寇 巫马 公西 漆雕 壤驷 公良 夹谷 宰父 颛孙 亓官 仉督 子车 鲜于 闾丘".split()
)
FULL = "****"
KINDS = ("cn_id", "mobile", "name", "address", "bank_account", "year", "full")
_YEAR = r"[0-9]{4}"  # the first run of four digits: the year of 1990-05-17, 19900517 or 1990年5月17日

# kind -> (characters kept at the head, at the tail, shortest value masked partially).
_PARTIAL = {
    "cn_id": (6, 4, 15),  # 15: legacy IDs
    "mobile": (3, 4, 11),
    "bank_account": (0, 4, 8),  # at least as much hidden as shown
}

# Stripped before masking. Spelled out (not str.strip() / Java \s, which differ) so both agree.
_SPACE = " \t\n\r\f\v\u3000\u00a0"
_SPACE_CLASS = r"[ \t\n\r\f\x0B\u3000\u00A0]"
_STRIP_RE = rf"^{_SPACE_CLASS}+|{_SPACE_CLASS}+\z"  # Java regex (\z: the very end)

# Address: division names as they appear in the shipped GB/T 2260 list; the generic ones
# (市辖区, 县, …) would match ordinary text or say nothing.
_GENERIC_DIVISION_NAMES = {"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划", "省直辖行政单位"}
_ADDRESS_LEVELS = 3  # province, prefecture, county


@lru_cache(maxsize=1)
def _division_names() -> tuple[frozenset[str], int]:
    names = frozenset(
        d.name for d in divisions().values() if len(d.name) >= 2 and d.name not in _GENERIC_DIVISION_NAMES
    )
    return names, max(len(n) for n in names)


@lru_cache(maxsize=1)
def address_pattern() -> str:
    """The address rule as one regex (Java and Python syntax): group 1 is the kept head, and
    the pattern matches only when something follows it, so replacing with ``$1****`` masks.

    The names form a trie. Names matching at one position are prefixes of one another, so trying
    the longer continuation before stopping (greedy ``?``) finds the longest, as
    :func:`mask_address` does; the atomic group then forbids backtracking to a shorter or fewer
    names to let ``.+`` match. Siblings start with different characters, so their order is free:
    they are split by character range, as a flat alternation of ~3,600 names was ~5x slower.
    """
    trie: dict = {}
    for name in _division_names()[0]:
        node = trie
        for ch in name:
            node = node.setdefault(ch, {})
        node[""] = {}  # a name ends here

    def alternation(branches: list[tuple[str, str]]) -> str:
        if len(branches) <= 8:
            return "|".join(regex for _, regex in branches)
        halves = branches[: len(branches) // 2], branches[len(branches) // 2 :]
        return "|".join(f"(?=[{re.escape(h[0][0])}-{re.escape(h[-1][0])}])(?:{alternation(h)})" for h in halves)

    def subtree(node: dict) -> str:
        branches = [(ch, re.escape(ch) + subtree(child)) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        if "" in node:
            return f"(?:{alternation(branches)})?"
        return branches[0][1] if len(branches) == 1 else f"(?:{alternation(branches)})"

    return rf"^((?>(?:{subtree(trie)}){{0,{_ADDRESS_LEVELS}}}))(?s:.+)"


# ---- Python -----------------------------------------------------------------------------------
def _partial(kind: str, value: str) -> str:
    head, tail, shortest = _PARTIAL[kind]
    n = len(value)
    if n < shortest:
        return "*" * n
    return value[:head] + "*" * (n - head - tail) + value[n - tail :]


def mask_cn_id(value: str) -> str:
    return _partial("cn_id", value.strip(_SPACE))


def mask_mobile(value: str) -> str:
    return _partial("mobile", value.strip(_SPACE))


def mask_bank_account(value: str) -> str:
    return _partial("bank_account", value.strip(_SPACE))


def mask_name(value: str) -> str:
    value = value.strip(_SPACE)
    if len(value) <= 1:
        return "*" * len(value)
    keep = 2 if len(value) > 2 and value[:2] in COMPOUND_SURNAMES else 1
    return value[:keep] + "*" * (len(value) - keep)


def mask_address(value: str) -> str:
    value = value.strip(_SPACE)
    names, longest = _division_names()
    pos = 0
    for _ in range(_ADDRESS_LEVELS):
        for n in range(min(longest, len(value) - pos), 1, -1):
            if value[pos : pos + n] in names:
                pos += n
                break
        else:
            break
    kept = value[:pos]
    return kept if kept == value else kept + FULL


def mask_year(value: str) -> str:
    found = re.search(_YEAR, value)
    return found.group(0) if found else FULL


def mask_full(value: str) -> str:
    return FULL


MASKERS = {
    "cn_id": mask_cn_id,
    "mobile": mask_mobile,
    "name": mask_name,
    "address": mask_address,
    "bank_account": mask_bank_account,
    "year": mask_year,
    "full": mask_full,
}


def mask_text(kind: str, text: str | None) -> str | None:
    """``text`` masked by ``kind`` (one of :data:`KINDS`); None stays None."""
    if kind not in MASKERS:
        raise ValueError(f"unknown mask kind {kind!r}; one of {', '.join(KINDS)}")
    return None if text is None else MASKERS[kind](text)


def mask_kind(field: FieldSpec) -> str | None:
    """How a field is masked when shown: personal fields by their mask kind, restricted fields
    fully unless they name a kind, other fields not at all."""
    if field.sensitivity == "personal":
        return field.effective_mask or "full"
    if field.sensitivity == "restricted":
        return field.mask or "full"
    return None


def mask_value(field: FieldSpec, value):
    """A value of ``field`` as it may be shown: masked text, or the value itself when the field
    is not masked or the value is None."""
    kind = mask_kind(field)
    if kind is None or value is None:
        return value
    return mask_text(kind, str(value))


def masked_observation(reg: Registration, item: dict) -> dict:
    """A quality result (a blocking failure or one expectation's entry: ``column`` and
    ``observed``) as a person may read it: the samples of a personal or restricted column masked
    by its rule, and values withheld where no one field's rule applies (several columns, an
    unknown one, or a table-level result of a resource holding personal data). Adds
    ``column_title``. Receipts and the quality pages show only what this returns."""
    out = dict(item)
    fields = reg.field_map
    cols = [c for c in (item.get("column") or "").split(",") if c]
    specs = [fields.get(c) for c in cols]
    if cols and all(specs):
        out["column_title"] = "、".join(s.title for s in specs)
    observed = dict(item.get("observed") or {})
    masked = [s for s in specs if s is None or mask_kind(s)]
    personal = any(mask_kind(f) for f in reg.fields)
    if not masked and (cols or not personal):
        return out
    if len(specs) == 1 and specs[0] is not None:  # one masked column: mask each value
        spec = specs[0]
        if "unexpected_sample" in observed:
            observed["unexpected_sample"] = [
                mask_value(spec, v) if isinstance(v, (str, int, float)) else None for v in observed["unexpected_sample"]
            ]
        if isinstance(observed.get("observed_value"), str):
            observed["observed_value"] = mask_value(spec, observed["observed_value"])
        elif not isinstance(observed.get("observed_value"), (int, float, type(None))):
            observed.pop("observed_value")
        observed.pop("details", None)
    else:
        for key in ("unexpected_sample", "details"):
            if observed.pop(key, None) is not None:
                observed["values_withheld"] = True
        if not isinstance(observed.get("observed_value"), (int, float, type(None))):
            observed.pop("observed_value")
            observed["values_withheld"] = True
    out["observed"] = observed
    return out


# ---- Spark ------------------------------------------------------------------------------------
def mask_column(kind: str, col: Column) -> Column:
    """The same rule as :func:`mask_text`, as a native Spark expression (string result)."""
    from pyspark.sql import functions as F  # here: `citylake check` and the directory skip pyspark

    if kind not in MASKERS:
        raise ValueError(f"unknown mask kind {kind!r}; one of {', '.join(KINDS)}")
    raw = col.cast("string")
    if kind == "full":
        return F.when(raw.isNull(), F.lit(None).cast("string")).otherwise(F.lit(FULL))
    text = F.regexp_replace(raw, _STRIP_RE, "")
    n = F.length(text)

    def stars(count):
        return F.repeat(F.lit("*"), F.greatest(count, F.lit(0)))

    if kind in _PARTIAL:
        head, tail, shortest = _PARTIAL[kind]
        kept = F.concat(F.substring(text, 1, head), stars(n - head - tail), F.substring(text, -tail, tail))
        masked = F.when(n < shortest, stars(n)).otherwise(kept)
    elif kind == "year":
        masked = F.when(text.rlike(_YEAR), F.regexp_extract(text, f"({_YEAR})", 1)).otherwise(F.lit(FULL))
    elif kind == "name":
        compound = (n > 2) & F.substring(text, 1, 2).isin(*sorted(COMPOUND_SURNAMES))
        keep = F.when(compound, F.lit(2)).otherwise(F.lit(1))
        masked = F.when(n <= 1, stars(n)).otherwise(F.concat(F.substring(text, F.lit(1), keep), stars(n - keep)))
    else:  # address
        masked = F.regexp_replace(text, address_pattern(), "$1" + FULL)  # one regex pass per value
    return F.when(text.isNull(), F.lit(None).cast("string")).otherwise(masked)


# ---- keyed hashes -----------------------------------------------------------------------------
KEY_SEPARATOR = "\u001f"  # between the values of a compound key (a unit separator no value holds)
_BLOCK = 64  # SHA-256's block size, in bytes (RFC 2104)


def keyed_hash(values: list[str | None], secret: bytes) -> str:
    """HMAC-SHA256 (hex) of the key's values joined by :data:`KEY_SEPARATOR`, nulls left out (as
    Spark's ``concat_ws``): the same value :func:`keyed_hash_column` computes."""
    message = KEY_SEPARATOR.join(v for v in values if v is not None).encode("utf-8")
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def key_id(secret: bytes) -> str:
    """A fingerprint of the secret (not the secret): tables record it, so a changed secret is seen."""
    return keyed_hash(["citylake record key"], secret)[:16]


def keyed_hash_column(columns: list[Column], secret: bytes) -> Column:
    """:func:`keyed_hash` as native Spark expressions: HMAC is two SHA-256 passes over the message
    behind the key's inner and outer pads, which are constants here (RFC 2104), so no UDF."""
    from pyspark.sql import functions as F

    key = hashlib.sha256(secret).digest() if len(secret) > _BLOCK else secret
    key = key.ljust(_BLOCK, b"\0")
    inner_pad = bytearray(b ^ 0x36 for b in key)
    outer_pad = bytearray(b ^ 0x5C for b in key)
    message = F.encode(F.concat_ws(KEY_SEPARATOR, *[c.cast("string") for c in columns]), "UTF-8")
    inner = F.unhex(F.sha2(F.concat(F.lit(inner_pad), message), 256))
    return F.sha2(F.concat(F.lit(outer_pad), inner), 256)
