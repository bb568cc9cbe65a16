"""Valid noise: how a good value is written, in any of the spellings conform must accept.

Mixed date and time formats (Excel serial days in XLSX), full-width digits and letters,
stray spaces, null tokens in optional fields, lower-case check letters, money as free
text (``5,000(万元人民币)``, ``41.2000(万)``, ``120(万美元)``), mobiles with ``+86`` and
dashes, legacy 15-digit citizen IDs where the registration converts them. Every good
identifier written can be checked with :mod:`citylake.core.identifiers` on the exact text.
"""

from __future__ import annotations

import random
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from citylake.core.identifiers import FULLWIDTH, HALFWIDTH, normalize_text
from citylake.core.registry import FieldSpec
from citylake.stages.check.suite import CURRENCIES
from citylake_dev.fakes import wchoice
from citylake_dev.generate.cells import (
    MISSING,
    GenerationError,
    XDate,
    cell_text,
    dec_str,
    excel_serial,
    is_null_text,
    thousands,
)
from citylake_dev.generate.values import CHECKED_KINDS

if TYPE_CHECKING:
    from citylake_dev.generate.values import FileGen

# Null tokens written into optional fields (all in identifiers.NULL_TOKENS).
CSV_NULLS = (("", 40), ("无", 12), ("空", 6), ("NULL", 12), ("—", 12), ("/", 8))
MONEY_NULLS = (("", 30), ("无", 10), ("N/A", 25), ("NULL", 10), ("—", 10), ("/", 5))

_HALF_TO_FULL = str.maketrans(HALFWIDTH, FULLWIDTH)


def fullwidth(text: str) -> str:
    return text.translate(_HALF_TO_FULL)


def noise(text: str, rng: random.Random, p_full: float = 0.03, p_space: float = 0.03) -> str:
    """Full-width ASCII, or stray leading/trailing spaces."""
    r = rng.random()
    if r < p_full:
        text = fullwidth(text)
    elif r < p_full + p_space:
        pad = rng.choice((" ", "  ", "\u3000"))
        where = rng.random()
        text = pad + text if where < 0.4 else (text + pad if where < 0.8 else pad + text + pad)
    return text


def render_good(g: FileGen, rec: dict, allow_missing: bool = True, verify: bool = True) -> list:
    """The cells of a good row."""
    cells = []
    for f, kind in zip(g.fields, g.kinds):
        v = rec[f.name]
        cell = render(g, f, kind, v, allow_missing)
        if verify and v is not None and kind in CHECKED_KINDS:
            verify_good(g, f, kind, cell, known_present=True)
        cells.append(cell)
    return cells


def verify_good(g: FileGen, f: FieldSpec, kind: str, cell, known_present: bool = False) -> None:
    """An identifier meant to be valid is valid, as written."""
    if kind not in CHECKED_KINDS or f.check is None:
        return
    text = cell_text(cell)
    if not known_present and is_null_text(text):
        if f.required:
            raise GenerationError(f"{f.name}: required value written empty")
        return
    reason = g.check(f, text).reason
    if reason is not None:
        raise GenerationError(f"{f.name}: generated good value {text!r} is invalid ({reason})")


def null_cell(g: FileGen, kind: str, allow_missing: bool):
    rng = g.rng
    pairs = MONEY_NULLS if kind == "money" else CSV_NULLS
    if g.fmt == "json":
        r = rng.random()
        if r < 0.4:
            return None
        if r < 0.55 and allow_missing:
            return MISSING
        return wchoice(rng, pairs)
    if g.fmt == "xlsx" and rng.random() < 0.5:
        return None
    return wchoice(rng, pairs)


def render(g: FileGen, f: FieldSpec, kind: str, v, allow_missing: bool = True):
    """The cell for canonical value ``v`` (None: a null of the format), with valid noise."""
    rng = g.rng
    fmt = g.fmt
    if v is None:
        return null_cell(g, kind, allow_missing)
    if kind == "uscc":
        text = v
        if text[-1].isalpha() and rng.random() < 0.25:
            text = text[:-1] + text[-1].lower()
        return noise(text, rng)
    if kind == "cn_id":
        text = v
        if f.legacy15 == "convert" and text[6:8] == "19" and rng.random() < 0.06:
            text = text[:6] + text[8:17]
        elif text[-1] == "X" and rng.random() < 0.3:
            text = text[:-1] + "x"
        return noise(text, rng, 0.02, 0.02)
    if kind == "mobile":
        r = rng.random()
        if r < 0.8:
            text = v
        elif r < 0.86:
            text = f"{v[:3]}-{v[3:7]}-{v[7:]}"
        elif r < 0.91:
            text = f"{v[:3]} {v[3:7]} {v[7:]}"
        elif r < 0.95:
            text = f"+86 {v}"
        elif r < 0.98:
            text = f"+86{v}"
        else:
            text = f"0086{v}"
        return noise(text, rng, 0.02, 0.02)
    if kind == "division":
        if fmt == "xlsx" and rng.random() < 0.4:
            return int(v)
        return noise(v, rng, 0.02, 0.03)
    if kind == "org_code":
        text = f"{v[:8]}-{v[8]}" if rng.random() < 0.5 else v
        return noise(text, rng, 0.02, 0.02)
    if kind in ("gender", "codelist"):
        meaning = (f.codes or {}).get(v)
        if meaning and meaning != v and normalize_text(meaning) == meaning and rng.random() < 0.3:
            text = meaning
        else:
            text = v
        return noise(text, rng, 0.03 if text.isascii() else 0.0, 0.03)
    if kind in ("date", "birth_date"):
        if fmt == "xlsx":
            r = rng.random()
            if r < 0.35:
                return XDate(excel_serial(v))
            if r < 0.65:
                return excel_serial(v)
        return noise(date_text(rng, v), rng, 0.02, 0.03)
    if kind == "timestamp":
        return noise(timestamp_text(rng, v), rng, 0.02, 0.03)
    if kind == "integer":
        if fmt == "xlsx" and rng.random() < 0.8:
            return v
        if fmt == "json" and rng.random() < 0.7:
            return v
        text = thousands(str(v)) if v >= 1000 and rng.random() < 0.3 else str(v)
        return noise(text, rng)
    if kind == "decimal":
        text = dec_str(v)
        if fmt == "xlsx" and rng.random() < 0.7:
            return float(text)
        r = rng.random()
        if "." not in text and r < 0.1:
            text += ".0"
        elif v >= 1000 and r < 0.2:
            text = thousands(text)
        return noise(text, rng)
    if kind == "money":
        if fmt == "xlsx" and rng.random() < 0.5:
            return float(dec_str(v))
        return noise(money_text(rng, f, v), rng)
    if kind == "boolean":
        return "是" if v else "否"
    # free text (names, addresses, stations, codes…)
    return noise(str(v), rng, 0.04, 0.03)


def date_text(rng: random.Random, d: date) -> str:
    r = rng.random()
    if r < 0.35:
        return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"
    if r < 0.50:
        return f"{d.year}/{d.month}/{d.day}"
    if r < 0.58:
        return f"{d.year}/{d.month:02d}/{d.day:02d}"
    if r < 0.72:
        return f"{d.year}年{d.month}月{d.day}日"
    if r < 0.88:
        return f"{d.year:04d}{d.month:02d}{d.day:02d}"
    if r < 0.94:
        return f"{d.year}.{d.month}.{d.day}"
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d} 00:00:00"


def timestamp_text(rng: random.Random, t: datetime) -> str:
    r = rng.random()
    if r < 0.35:
        return t.strftime("%Y-%m-%d %H:%M:%S")
    if r < 0.55:
        return t.strftime("%Y-%m-%d %H:%M")
    if r < 0.70:
        return f"{t.year}/{t.month}/{t.day} {t.hour}:{t.minute:02d}"
    if r < 0.80 and t.minute == 0 and t.second == 0:
        return f"{t.year}年{t.month}月{t.day}日 {t.hour}时"
    if r < 0.90:
        return t.strftime("%Y%m%d%H%M%S")
    return t.strftime("%Y-%m-%dT%H:%M:%S")


# Money as registries write it. Unit words after the number, per field unit (all CNY).
_MONEY_SUFFIXES = {
    "元": ("元", "元人民币", "人民币元", "(元)", "（元）", "(元人民币)", "( 元 )"),
    "万元": ("万元", "万", "万元人民币", "万人民币", "万人民币元", "(万元)", "(万元人民币)", "（万元）", "（万）",
             "(万)", "( 万元 )", "（万人民币）", "万 元"),
    "亿元": ("亿元", "亿", "亿元人民币", "亿人民币元", "(亿元)", "（亿元）", "( 亿元 )"),
}  # fmt: skip
# Foreign currencies of registered capital (weights: how often registries show them), as a Chinese
# name or an ISO code. Only codes the quality check accepts: another would fail the whole batch.
_MONEY_FOREIGN = tuple(
    (pair, w)
    for pair, w in (
        (("美元", "USD"), 30), (("美金", "USD"), 2), (("USD", "USD"), 4), (("港元", "HKD"), 12),
        (("港币", "HKD"), 4), (("香港元", "HKD"), 4), (("HKD", "HKD"), 2), (("欧元", "EUR"), 5),
        (("日元", "JPY"), 4), (("英镑", "GBP"), 2), (("德国马克", "DEM"), 2),
    )
    if pair[1] in CURRENCIES
)  # fmt: skip


def money_text(rng: random.Random, f: FieldSpec, v: Decimal) -> str:
    """An amount in the field's unit as registries write it: separators, unit words bare or in brackets
    (spaces inside, full-width), the currency before or after the number, another unit, a foreign
    currency. Every spelling reads as ``v`` in the field's unit (conform-rules.md section 4)."""
    unit = f.unit or "元"
    text = dec_str(v)
    number = thousands(text) if abs(v) >= 1000 and rng.random() < 0.5 else text
    suffixes = _MONEY_SUFFIXES[unit]
    word = {"元": "", "万元": "万", "亿元": "亿"}[unit]
    r = rng.random()
    if r < 0.22:
        return text
    if r < 0.30:
        return thousands(text) if abs(v) >= 1000 else text
    if r < 0.52:
        return number + rng.choice(suffixes)
    if r < 0.60:
        # trailing zeros as registries pad them (41.2000); never fewer places than v has
        return (f"{v:.4f}" if v == round(v, 4) else f"{v:.6f}") + rng.choice(suffixes)
    if r < 0.67:
        # the currency first; without 万/亿 after it the amount would be read in 元
        cur = rng.choice(("人民币", "人民币", "RMB", "CNY"))
        tail = rng.choice((f"{word}元", word)) if word else rng.choice(("元", ""))
        return f"{cur}{rng.choice(('', ' '))}{number}{tail}"
    if r < 0.80:
        # the same amount in another unit
        if unit == "万元" and v * 10000 == (v * 10000).to_integral():
            return f"{dec_str(v * 10000)}{rng.choice(('元', '元人民币'))}"
        if unit == "元" and v >= 100:
            return f"{dec_str(v / 10000)}{rng.choice(('万元', '万', '(万元)'))}"
        if unit == "万元" and v >= 10000 and (v / 10000) == (v / 10000).quantize(Decimal("0.000001")):
            return f"{dec_str(v / 10000)}亿元"
        if unit == "亿元":
            return f"{dec_str(v * 10000)}万元"
        return text + suffixes[0]
    if unit != "元" and _MONEY_FOREIGN and r < 0.92:
        # registered capital in a foreign currency, in the field's unit of that currency
        name, _ = wchoice(rng, _MONEY_FOREIGN)
        if name.isascii():
            return f"{name}{rng.choice(('', ' '))}{number}{word}"
        forms = (
            f"{number}({word}{name})", f"{number}({word}{name})", f"{number}{word}{name}",
            f"{number}({word}元{name})", f"{number}{word}{name}{'' if name.endswith('元') else '元'}",
            f"{number}({word}{name} )",
            f"{number}（{word}{name}）", f"{name}{number}{word}",
        )  # fmt: skip
        return rng.choice(forms)
    return text + suffixes[0]
