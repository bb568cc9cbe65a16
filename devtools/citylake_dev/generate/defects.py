"""Bad rows: 8–15 % of each file (60–70 % in the bad_export shape), each with *exactly one* defect, so its reason is unambiguous.

Invalid check characters, unknown division codes, old registration numbers, masked codes,
shifted text, bad IDs and mobiles, emptied required fields, unparseable dates/numbers/money,
out-of-range numbers, values outside the code list, exact duplicate rows, duplicate keys,
encoding damage, rows with an extra or missing column, malformed lines. Reasons are the
strings the conform job writes (``docs/conform-rules.md``); every bad identifier is checked
to fail with exactly the intended reason.
"""

from __future__ import annotations

import json
import math
import random
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from citylake.core.identifiers import USCC_ALPHABET, cn_id_check_char, normalize_text, regno15_check_digit
from citylake.core.registry import FieldSpec
from citylake_dev import fakes
from citylake_dev.generate.cells import GenerationError, RawLine, cell_text, dec_str, is_null_text
from citylake_dev.generate.entities import Record, make_uscc
from citylake_dev.generate.noise import render, render_good, verify_good
from citylake_dev.generate.values import TEXT_KINDS
from citylake_dev.generate.writers import csv_line, json_obj, parse_csv_line

if TYPE_CHECKING:
    from citylake_dev.generate.values import FileGen

BAD_FRACTION = (0.08, 0.15)


# ---- which rows are bad, and how ----------------------------------------------------------------
def bad_count(rng: random.Random, rows: int, fraction: tuple[float, float] = BAD_FRACTION) -> int:
    if rows < 2:
        return 0
    lo = max(1, math.ceil(rows * fraction[0]))
    hi = max(lo, math.floor(rows * fraction[1]))
    return min(rows - 1, rng.randint(lo, hi))


def plan(g: FileGen, start: int, stop: int) -> dict[int, tuple[str, str | None]]:
    """Row index -> (reason code, field or None) for the rows ``start`` to ``stop`` (one chunk).
    Row 0 stays good; each defect kind the registration allows appears at least once in a chunk
    when it has enough bad rows."""
    rng = g.rng
    first_row = max(start, 1)
    n_bad = min(bad_count(rng, stop - start, g.bad_fraction or BAD_FRACTION), max(0, stop - first_row))
    positions = sorted(rng.sample(range(first_row, stop), n_bad)) if n_bad else []
    catalogue = defect_kinds(g)
    first = rng.sample(catalogue, min(len(catalogue), n_bad))
    rest = rng.choices(catalogue, [w for _, _, w in catalogue], k=n_bad - len(first))
    chosen = [(code, fname) for code, fname, _ in first + rest]
    rng.shuffle(chosen)
    return dict(zip(positions, chosen))


def defect_kinds(g: FileGen) -> list[tuple[str, str | None, float]]:
    """(reason code, field or None, weight) of every defect the registration and format allow."""
    kinds: list[tuple[str, str | None, float]] = []
    required = [f for f in g.fields if f.required]
    for f, kind in zip(g.fields, g.kinds):
        n = f.name
        if kind == "uscc":
            kinds += [("uscc_check", n, 1.0), ("uscc_regno15", n, 0.6), ("uscc_masked", n, 0.5),
                      ("uscc_text", n, 0.5), ("uscc_format", n, 0.4)]
        elif kind == "cn_id":
            kinds += [("cn_id_check", n, 1.0), ("cn_id_area", n, 0.6), ("cn_id_birth", n, 0.6),
                      ("cn_id_format", n, 0.4)]
            if f.legacy15 != "convert":
                kinds.append(("cn_id_legacy15", n, 0.4))
        elif kind == "division":
            kinds += [("division_unknown", n, 1.0), ("division_format", n, 0.4)]
        elif kind == "mobile" and f.check == "mobile":
            kinds.append(("mobile_format", n, 1.0))
        elif kind == "org_code":
            kinds += [("org_code_check", n, 1.0), ("org_code_format", n, 0.4)]
        elif kind in ("gender", "codelist"):
            if not_in_codelist_values(f):
                kinds.append(("not_in_codelist", n, 0.8))
        elif kind in ("date", "birth_date"):
            kinds.append(("bad_date", n, 0.8))
        elif kind == "timestamp":
            kinds.append(("bad_timestamp", n, 0.8))
        elif kind in ("integer", "decimal"):
            kinds.append(("bad_number", n, 0.5))
        elif kind == "money":
            kinds.append(("bad_money", n, 0.8))
        if kind in ("integer", "decimal", "money") and (f.min is not None or f.max is not None):
            kinds.append(("out_of_range", n, 0.5))
    for f in required:
        kinds.append(("required", f.name, max(0.25, 2.0 / len(required))))
    kinds += [("duplicate_row", None, 1.2), ("duplicate_key", None, 1.2)]
    if damage_field(g) is not None:
        kinds.append(("encoding_damage", None, 0.8))
    if g.fmt in ("csv", "xlsx"):
        kinds.append(("column_count", None, 0.8))
    if g.fmt in ("csv", "json") and g.layout.malformed_ok:
        kinds.append(("malformed_line", None, 0.5))
    return kinds


def damage_field(g: FileGen) -> FieldSpec | None:
    """Where encoding damage goes: the longest free-text field without a check, outside the key."""
    best = None
    for f, kind in zip(g.fields, g.kinds):
        if kind not in TEXT_KINDS or f.check is not None or f.name in g.key_set or f.unique:
            continue
        score = ((f.length or 100), 0 if f.required else 1)
        if best is None or score > best[0]:
            best = (score, f)
    return best[1] if best else None


def not_in_codelist_values(f: FieldSpec) -> list[str]:
    codes = f.codes or {}
    known = [*codes.keys(), *codes.values()]
    out = []
    for cand in ("仓储", "正常", "未知", "待定", "99", "Z9", "其它类型", "暂停"):
        if is_null_text(cand):
            continue
        if any(cand in k or k in cand for k in known):
            continue
        out.append(cand)
    return out


# ---- bad rows ---------------------------------------------------------------------------------------
def defect_row(g: FileGen, code: str, fname: str | None, rec: dict, i: int, verify: bool = True) -> list | RawLine:
    """Row ``i`` made from record ``rec`` with the single defect ``code`` (not the duplicates);
    ``verify`` checks its good identifiers too (the bad one is always checked)."""
    cells = render_good(g, rec, verify=verify)
    if code == "encoding_damage":
        f = damage_field(g)
        k = g.index_of[f.name]
        base = rec[f.name]
        if base is None:
            base = g.present_value(f, g.kinds[k], Record(g, i)) or fakes.REMARKS[0]
        cells[k] = damage(g, str(base))
        return cells
    if code == "column_count":
        return column_count_row(g, cells)
    if code == "malformed_line":
        return malformed_row(g, cells)
    k = g.index_of[fname]
    f, kind = g.fields[k], g.kinds[k]
    text = bad_value(g, code, f, kind, rec)
    verify_bad(g, code, f, kind, text)
    cells[k] = text
    return cells


def duplicate_key_row(g: FileGen, src_cells: list, other: dict) -> list | None:
    """Same key as an earlier good row, one or two other values taken from record ``other``
    (all still valid); None when no value would differ."""
    rng = g.rng
    candidates = [k for k, f in enumerate(g.fields) if f.name not in g.key_set and not f.unique]
    rng.shuffle(candidates)
    row = list(src_cells)
    changed = 0
    for k in candidates:
        f, kind = g.fields[k], g.kinds[k]
        new_value = other[f.name]
        if new_value is None:
            continue
        cell = render(g, f, kind, new_value)
        verify_good(g, f, kind, cell)
        new_text = normalize_text(cell_text(cell))
        old_text = normalize_text(cell_text(row[k]))
        if new_text is None or new_text == old_text:
            continue
        row[k] = cell
        changed += 1
        if changed >= rng.randint(1, 2):
            break
    return row if changed else None


def column_count_row(g: FileGen, cells: list) -> list:
    """A cell too many, sometimes after an empty one. Never one too few: a short row is padded
    (its trailing empty cells were left out), in CSV as in XLSX."""
    rng = g.rng
    extra = rng.choice(("备注：数据补录", "待核实", "已迁出", "见附件", "1"))
    if g.fmt == "xlsx":
        return list(cells) + ([None] if rng.random() < 0.3 else []) + [extra]
    row = list(cells) + ([""] if rng.random() < 0.3 else []) + [extra]
    delimiter = g.layout.delimiter
    parsed = parse_csv_line(csv_line([str(c) for c in row], delimiter), delimiter)
    if parsed is None or len(parsed) == len(g.headers):
        raise GenerationError(f"column-count row does not change the field count: {row!r}")
    return row


def malformed_row(g: FileGen, cells: list) -> RawLine:
    """A line that does not parse: an unclosed quote (CSV), or not a JSON object. In a JSON array
    the element must stay JSON (a truncated object would break the whole document): not an object."""
    rng = g.rng
    if g.fmt == "csv":
        d = g.layout.delimiter
        head = csv_line([str(c) for c in cells[:-1]], d)
        line = f'{head}{d}"{cells[-1]}' if len(cells) > 1 else f'"{cells[-1]}'
        if '"' in str(cells[-1]) or parse_csv_line(line, d) is not None:
            raise GenerationError(f"malformed CSV line parses: {line!r}")
        return RawLine(line)
    # JSON: a truncated object (JSON Lines only), or something that is not an object
    obj = json_obj(g, cells, full=True)
    text = json.dumps(obj, ensure_ascii=False)
    r = rng.random()
    if g.layout.json_style != "lines":
        r = 0.6 + r * 0.4
    if r < 0.6:
        line = text[: rng.randint(max(2, len(text) // 3), len(text) - 2)]
    elif r < 0.85:
        line = json.dumps([cell_text(c) for c in cells], ensure_ascii=False)
    else:
        line = json.dumps(rng.choice(("数据截止", "EOF", "接口返回异常")), ensure_ascii=False)
    try:
        parsed = json.loads(line)
    except ValueError:
        return RawLine(line)
    if isinstance(parsed, dict):
        raise GenerationError(f"malformed JSON line is an object: {line!r}")
    return RawLine(line)


def damage(g: FileGen, text: str) -> str:
    """Text as a wrong decoding leaves it: U+FFFD, or 锟斤拷 in GB-encoded files."""
    rng = g.rng
    marker = g.damage_marker
    chars = list(text)
    cjk = [k for k, c in enumerate(chars) if "\u3400" <= c <= "\u9fff"]
    if marker == "\ufffd":
        picks = sorted(rng.sample(cjk, min(len(cjk), rng.randint(1, 3)))) if cjk else []
        for k in picks:
            chars[k] = "\ufffd"
        out = "".join(chars) if picks else text + "\ufffd"
    else:
        pos = cjk[rng.randrange(len(cjk))] if cjk else len(text)
        out = text[:pos] + "锟斤拷" * rng.randint(1, 2) + text[pos + 2:]
    if "\ufffd" not in out and "锟斤拷" not in out:
        out += marker
    return out


# ---- bad values -------------------------------------------------------------------------------------
def bad_value(g: FileGen, code: str, f: FieldSpec, kind: str, rec: dict):
    """Text for field ``f`` that gets exactly ``<code>:<field>`` under conform-rules.md."""
    rng = g.rng
    v = rec[f.name]
    if code == "required":
        if g.fmt == "json":
            return rng.choice((None, "", "NULL", "无", " "))
        if g.fmt == "xlsx":
            return rng.choice((None, None, "无", "NULL", "/"))
        return rng.choice(("", "", " ", "无", "NULL", "—", "/", "空"))
    if code == "uscc_check":
        good = v or make_uscc(rng, g.places)
        wrong = rng.choice([c for c in USCC_ALPHABET if c != good[17]])
        return good[:17] + wrong
    if code == "uscc_regno15":
        first14 = rng.choice(("410100", "410105", "410102", "410103", "410104")) + rng.choice("0123") + "".join(
            rng.choice("0123456789") for _ in range(7)
        )
        return first14 + regno15_check_digit(first14)
    if code == "uscc_masked":
        good = v or make_uscc(rng, g.places)
        r = rng.random()
        if r < 0.5:
            return good[:6] + "*" * 8 + good[14:]
        if r < 0.8:
            return good[:8] + "*" * 10
        return good[:8] + "xxxxxxxxxx"
    if code == "uscc_text":
        for name, k in g.kind_of.items():
            if k in ("org_name", "address") and rec.get(name):
                return str(rec[name])
        return fakes.enterprise_name(rng, g.places.pick_district(rng)[1])
    if code == "uscc_format":
        good = v or make_uscc(rng, g.places)
        r = rng.random()
        if r < 0.4:
            pos = rng.randrange(8, 17)
            return good[:pos] + rng.choice("IOSVZ") + good[pos + 1:]
        if r < 0.7:
            pos = rng.randrange(9, 17)
            return good[:pos] + good[pos + 1:]  # 17 characters
        return good + rng.choice("0123456789")  # 19 characters
    if code.startswith("cn_id_"):
        return bad_cn_id(g, code, v or Record(g, 0).person()["cn_id"])
    if code == "division_unknown":
        return rng.choice(g.places.unknown_division)
    if code == "division_format":
        r = rng.random()
        if r < 0.5:
            return g.places.division_names[v or g.places.districts[0]].replace("郑州市", "")
        if r < 0.75:
            return (v or g.places.districts[0])[:5]
        return (v or g.places.districts[0]) + rng.choice("0123456789")
    if code == "mobile_format":
        good = v or "13812345678"
        r = rng.random()
        if r < 0.3:
            return f"0371-{rng.randrange(10**7, 10**8)}"
        if r < 0.55:
            return good[:-1]
        if r < 0.8:
            return good + rng.choice("0123456789")
        return "12" + good[2:]
    if code == "org_code_check":
        good = v
        wrong = rng.choice([c for c in "0123456789X" if c != good[8]])
        return good[:8] + wrong
    if code == "org_code_format":
        return v[:7] + "-" + v[8]
    if code == "not_in_codelist":
        return rng.choice(not_in_codelist_values(f))
    if code == "bad_date":
        y = v.year if isinstance(v, date) else 2021
        if rng.random() < 0.25:
            # a bare year: no day, and too short for an Excel serial day (numbers in XLSX and JSON)
            if g.fmt in ("xlsx", "json") and rng.random() < 0.5:
                return y
            full = f"{y}".translate(str.maketrans("0123456789", "０１２３４５６７８９"))
            return rng.choice((f"{y}", f"{y}", f"{y}.0", f" {y} ", full))
        return rng.choice(
            (f"{y}-02-30", f"{y}/13/5", f"{y}年2月30日", f"{y}0230", "待补录", f"{y}-00-12", f"{y}年")
        )
    if code == "bad_timestamp":
        t = v if isinstance(v, datetime) else g.data_end
        return rng.choice(
            (f"{t.year}-02-30 {t.hour:02d}:00:00", f"{t.month}月{t.day}日{t.hour}时", "待定", f"{t.hour}:00")
        )
    if code == "bad_number":
        base = str(v) if v is not None else "35"
        if kind == "integer":
            return rng.choice((f"{base}.5", f"约{base}", f"{base}人", "若干"))
        return rng.choice((f"{dec_str(Decimal(base))}.1.2", f"约{base}", f"<{base}", "未检出"))
    if code == "bad_money":
        word = {"元": "元", "万元": "万", "亿元": "亿"}[f.unit or "元"]
        base = dec_str(v) if v is not None else "500"
        return rng.choice(("五百万元", f"约{base}{word}", "壹仟万元整", "壹万贰仟元", f"{base}{word}左右"))
    if code == "out_of_range":
        if f.min is not None and (f.max is None or rng.random() < 0.5):
            below = Decimal(str(f.min)) - Decimal(rng.randrange(1, 100))
            text = dec_str(below)
        else:
            above = Decimal(str(f.max)) + Decimal(rng.randrange(1, 1000))
            text = dec_str(above)
        if kind == "integer":
            text = str(int(Decimal(text)))
        return text
    raise GenerationError(f"no bad value for {code}")


def bad_cn_id(g: FileGen, code: str, good: str) -> str:
    rng = g.rng
    if code == "cn_id_check":
        wrong = rng.choice([c for c in "0123456789X" if c != good[17]])
        return good[:17] + wrong
    if code == "cn_id_area":
        body = rng.choice(g.places.unknown_area) + good[6:17]
        return body + cn_id_check_char(body)
    if code == "cn_id_birth":
        y = good[6:10]
        birth = rng.choice((f"{y}1305", f"{y}0230", f"{y}0432", f"{y}0015", "20991231"))
        body = good[:6] + birth + good[14:17]
        return body + cn_id_check_char(body)
    if code == "cn_id_format":
        r = rng.random()
        if r < 0.4:
            return good[:17]
        if r < 0.7:
            pos = rng.randrange(6, 17)
            return good[:pos] + rng.choice("OIA") + good[pos + 1:]
        return good + rng.choice("0123456789")
    if code == "cn_id_legacy15":
        if good[6:8] == "19":
            return good[:6] + good[8:17]
        return good[:6] + f"{rng.randrange(40, 99):02d}" + good[10:17]
    raise GenerationError(f"no bad citizen ID for {code}")


def verify_bad(g: FileGen, code: str, f: FieldSpec, kind: str, value) -> None:
    """Bad values: an identifier fails with exactly the intended reason; nothing is a null token
    unless it is meant to be empty."""
    text = cell_text(value)
    if code == "required":
        if not is_null_text(text):
            raise GenerationError(f"{f.name}: 'required' value {text!r} is not empty")
        return
    if is_null_text(text):
        raise GenerationError(f"{f.name}: bad value {text!r} for {code} reads as empty")
    if g.encoding != "xlsx":
        text.encode(g.encoding)
    if code == "bad_date":
        # a number is read as a date when it is a 5-digit Excel serial day (optional .0…)
        head, _, tail = normalize_text(text).partition(".")
        if head.isascii() and head.isdigit() and len(head) == 5 and set(tail) <= {"0"}:
            raise GenerationError(f"{f.name}: bad date {text!r} reads as an Excel serial day")
    if f.check in ("uscc", "cn_id", "org_code", "division_code", "mobile"):
        got = g.check(f, text).reason
        if got != code:
            raise GenerationError(f"{f.name}: bad value {text!r} gives {got!r}, meant {code!r}")
