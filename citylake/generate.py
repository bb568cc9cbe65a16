"""`citylake generate`: realistic, dirty departmental exports for every registration.

For each registration this writes ``files_per_resource`` export files into the lake's
landing zone (``landing/<dept>/<resource>/<file>``), in the registration's format and
encoding, and records in a truth file how many rows of each file were made bad, by the
exact reason string the conform job writes (``docs/conform-rules.md``).

Everything is driven by the registration: the field list, types, checks, code lists,
header aliases, money unit, min/max and key. Field names and titles only pick a more
realistic value generator (names, companies, addresses, stations, pollutants…); an
unknown field still gets plausible values of its type.

Two kinds of dirt:

* **valid noise**, which conform must accept: header spellings from the aliases, mixed
  date and time formats (Excel serial days in XLSX), full-width digits and letters, stray
  spaces, null tokens in optional fields, lower-case check letters, money as free text
  (``5,000(万元人民币)``, ``41.2000(万)``, ``120(万美元)``), mobiles with ``+86`` and dashes,
  legacy 15-digit citizen IDs where the registration converts them;
* **bad rows**, 8–15 % of each file, each with *exactly one* defect, so its reason is
  unambiguous: invalid check characters, unknown division codes, old registration
  numbers, masked codes, shifted text, bad IDs and mobiles, emptied required fields,
  unparseable dates/numbers/money, out-of-range numbers, values outside the code list,
  exact duplicate rows, duplicate keys, encoding damage, rows with an extra or missing
  column, malformed lines.

Output is deterministic: the same seed gives the same bytes (the ingest stage relies on
checksums to recognise a file dropped twice). Every identifier written is checked with
:mod:`citylake.identifiers` on the exact text written: good ones must be valid, bad ones
must fail with the intended reason.

Truth file: ``$CITYLAKE_HOME/generated/truth.json`` (outside the lake, never ingested)::

    {"seed": 20261121, "rows": 200, "files_per_resource": 1, "files": {
       "landing/scjg/enterprise_registration/企业登记信息_20261120.csv": {
          "resource": "enterprise_registration", "department": "scjg", "format": "csv",
          "encoding": "gbk", "rows": 200, "good": 178,
          "bad": {"uscc_check:uscc": 3, "duplicate_row": 2, …},
          "sha256": "…", "size": 41234, "headers": ["统一社会信用代码", …]}}}

``rows`` counts every data row written (malformed lines included); ``bad`` counts rows
per reason (one reason per bad row); ``good = rows - sum(bad)``. Entries of earlier runs
are kept while their landing file is unchanged.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import multiprocessing
import os
import random
import re
import zipfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from fnmatch import fnmatch
from pathlib import Path
from xml.sax.saxutils import escape as _xml_escape

from . import fakes
from .identifiers import (
    CN_ID15_PATTERN,
    CN_ID_PATTERN,
    FULLWIDTH,
    HALFWIDTH,
    USCC_ALPHABET,
    accepted_division_codes,
    all_division_codes,
    check_cn_id,
    check_division_code,
    check_mobile,
    check_org_code,
    check_uscc,
    cn_id_check_char,
    cn_id_from_legacy15,
    divisions,
    latest_division_edition,
    normalize_text,
    org_check_char,
    regno15_check_digit,
    uscc_check_char,
)
from .lake import Lake, landing_dir
from .reasons import reason as reason_string
from .registry import FieldSpec, Registration, load_registrations
from .settings import Settings

DEFAULT_ROWS = 200
DEFAULT_SEED = 20261121
BAD_FRACTION = (0.08, 0.15)
PARALLEL_MIN_ROWS = 60_000
VERIFY_ALL_ROWS = 20_000
TRUTH_RELPATH = Path("generated") / "truth.json"
EXCEL_EPOCH = date(1899, 12, 30)
_MICRO = Decimal("0.000001")

# Null tokens written into optional fields (all in identifiers.NULL_TOKENS).
CSV_NULLS = (("", 40), ("无", 12), ("空", 6), ("NULL", 12), ("—", 12), ("/", 8))
MONEY_NULLS = (("", 30), ("无", 10), ("N/A", 25), ("NULL", 10), ("—", 10), ("/", 5))

_HALF_TO_FULL = str.maketrans(HALFWIDTH, FULLWIDTH)


class GenerationError(RuntimeError):
    """The generator produced a value that does not mean what it was meant to mean (a bug)."""


class _Missing:
    """A JSON key left out of an object (conform reads it as empty)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()


@dataclass(frozen=True)
class XDate:
    """An XLSX cell holding an Excel serial day with a date number format."""

    serial: int

    @property
    def text(self) -> str:
        return (EXCEL_EPOCH + timedelta(days=self.serial)).isoformat()


@dataclass
class RawLine:
    """A line written as is (a malformed CSV or JSON line)."""

    text: str


# ---- small helpers ------------------------------------------------------------------------
_WEIGHTED: dict[int, tuple] = {}


def _wchoice(rng: random.Random, pairs) -> str:
    """Weighted pick from a constant tuple of (value, weight) pairs."""
    hit = _WEIGHTED.get(id(pairs))
    if hit is None or hit[0] is not pairs:
        hit = _WEIGHTED[id(pairs)] = (pairs, fakes.Weighted(pairs))
    return hit[1].pick(rng)


def _fullwidth(text: str) -> str:
    return text.translate(_HALF_TO_FULL)


def _noise(text: str, rng: random.Random, p_full: float = 0.03, p_space: float = 0.03) -> str:
    """Valid noise: full-width ASCII, stray leading/trailing spaces."""
    r = rng.random()
    if r < p_full:
        text = _fullwidth(text)
    elif r < p_full + p_space:
        pad = rng.choice((" ", "  ", "\u3000"))
        where = rng.random()
        text = pad + text if where < 0.4 else (text + pad if where < 0.8 else pad + text + pad)
    return text


def cell_text(cell) -> str:
    """The text conform reads from a cell (decode rules: numbers become text, dates YYYY-MM-DD)."""
    if cell is None or cell is MISSING:
        return ""
    if isinstance(cell, XDate):
        return cell.text
    if isinstance(cell, float):
        return repr(cell)
    return str(cell)


def _is_null_text(text: str) -> bool:
    return normalize_text(text) is None


def _excel_serial(d: date) -> int:
    return (d - EXCEL_EPOCH).days


def _dec_str(value: Decimal) -> str:
    """Plain decimal text without exponent or needless trailing zeros."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def _thousands(text: str) -> str:
    sign = "-" if text.startswith("-") else ""
    body = text.lstrip("-")
    whole, _, frac = body.partition(".")
    grouped = f"{int(whole):,}"
    return sign + grouped + ("." + frac if frac else "")


def _cjk(text: str) -> bool:
    return any("\u3400" <= c <= "\u9fff" for c in text)


# ---- field kinds --------------------------------------------------------------------------
def field_kind(field: FieldSpec) -> str:
    """Pick a value generator from the field's check, type, name and title."""
    n, t = field.name.lower(), field.title
    if field.check in ("uscc", "cn_id", "mobile", "org_code"):
        return field.check
    if field.check == "division_code":
        return "division"
    if field.check == "codelist":
        meanings = set((field.codes or {}).values())
        if ("gender" in n or "sex" in n or "性别" in t) and {"男", "女"} <= meanings:
            return "gender"
        return "codelist"
    if field.type == "date":
        return "birth_date" if ("birth" in n or "出生" in t) else "date"
    if field.type == "timestamp":
        return "timestamp"
    if field.type == "boolean":
        return "boolean"
    if field.type == "money":
        return "money"
    if field.type == "integer":
        return "integer"
    if field.type in ("decimal", "double"):
        return "decimal"
    # string / text
    if "station" in n or "点位" in t or "站点" in t:
        return "station_name" if ("name" in n or "名称" in t) else "station_code"
    if "pollutant" in n or "污染物" in t:
        return "pollutant"
    if "cert" in n or "证书号" in t or "权证号" in t:
        return "cert_no"
    if any(k in n for k in ("address", "location", "addr")) or any(
        k in t for k in ("地址", "住址", "住所", "坐落", "场所")
    ):
        return "address"
    if n in ("name", "person_name", "owner_name", "legal_rep", "contact") or any(
        k in t for k in ("姓名", "权利人", "法定代表人", "负责人", "联系人", "产权人")
    ):
        return "person_name"
    if "名称" in t or n.endswith("_name"):
        return "org_name"
    if "phone" in n or "mobile" in n or "电话" in t or "手机" in t:
        return "mobile"
    return "text"


TEXT_KINDS = ("person_name", "org_name", "address", "station_name", "text")
CHECKED_KINDS = frozenset(("uscc", "cn_id", "org_code", "division", "mobile"))
_SPACES = re.compile(r"\s+")


_CN_ID15 = re.compile(CN_ID15_PATTERN)
_CN_ID18 = re.compile(CN_ID_PATTERN)
_EARLIEST_BIRTH = date(1850, 1, 1)


def _cn_id_reason(value: str, legacy15: str, areas: frozenset, today: date) -> str | None:
    """Same order and primitives as :func:`citylake.identifiers.check_cn_id`."""
    text = _SPACES.sub("", normalize_text(value) or "").upper()
    if _CN_ID15.match(text):
        if legacy15 != "convert":
            return "cn_id_legacy15"
        text = cn_id_from_legacy15(text)
    if not _CN_ID18.match(text):
        return "cn_id_format"
    if text[:6] not in areas:
        return "cn_id_area"
    try:
        born = date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        return "cn_id_birth"
    if not _EARLIEST_BIRTH <= born <= today:
        return "cn_id_birth"
    if cn_id_check_char(text[:17]) != text[17]:
        return "cn_id_check"
    return None
IDENTIFIER_CHECKS = {
    "uscc": check_uscc,
    "org_code": check_org_code,
    "division": check_division_code,
    "mobile": check_mobile,
}

# ---- air quality (HJ 633-2012 hourly IAQI breakpoints) -------------------------------------
_IAQI = (0, 50, 100, 150, 200, 300, 400, 500)
_BREAKPOINTS = {
    "PM2.5": (0, 35, 75, 115, 150, 250, 350, 500),
    "PM10": (0, 50, 150, 250, 350, 420, 500, 600),
    "SO2": (0, 150, 500, 650, 800, 1600, 2100, 2620),
    "NO2": (0, 100, 200, 700, 1200, 2340, 3090, 3840),
    "CO": (0, 5, 10, 35, 60, 90, 120, 150),
    "O3": (0, 160, 200, 300, 400, 800, 1000, 1200),
}


def _iaqi(pollutant: str, conc: float) -> float:
    bp = _BREAKPOINTS[pollutant]
    for k in range(1, len(bp)):
        if conc <= bp[k]:
            return (_IAQI[k] - _IAQI[k - 1]) / (bp[k] - bp[k - 1]) * (conc - bp[k - 1]) + _IAQI[k - 1]
    return 500.0


_POLLUTANT_FIELDS = {
    "pm25": "PM2.5", "pm2_5": "PM2.5", "pm10": "PM10", "so2": "SO2", "no2": "NO2", "co": "CO", "o3": "O3",
}


# ---- per-record context (correlated values) -------------------------------------------------
class _Ctx:
    """Lazily made entities shared by the fields of one record (person, organization, place…)."""

    __slots__ = ("g", "rng", "i", "_district", "_person", "_org", "_station", "_air", "count")

    def __init__(self, g: "_FileGen", i: int):
        self.g, self.rng, self.i = g, g.rng, i
        self._district = self._person = self._org = self._station = self._air = None
        self.count = None

    def district(self) -> tuple[str, str]:
        if self._district is None:
            if self.g.has_station:
                code = self.station()[2]
                self._district = (code, self.g.division_names[code])
            else:
                self._district = self.g.pick_district()
        return self._district

    def station(self) -> tuple[str, str, str]:
        if self._station is None:
            stations = self.g.stations
            if self.g.station_in_key:
                self._station = stations[self.i % len(stations)]
            else:
                self._station = self.rng.choice(stations)
        return self._station

    def person(self) -> dict:
        if self._person is None:
            self._person = self.g.make_person(self)
        return self._person

    def org(self) -> dict:
        if self._org is None:
            self._org = self.g.make_org(self)
        return self._org

    def air(self) -> dict:
        if self._air is None:
            self._air = self.g.make_air()
        return self._air


# ---- one file -----------------------------------------------------------------------------
class _FileGen:
    def __init__(self, settings: Settings, reg: Registration, seed: int, index: int, count: int, rows: int):
        self.settings = settings
        self.reg = reg
        self.rows = rows
        self.rng = random.Random(f"citylake-generate/{seed}/{reg.department}/{reg.resource}/{index}")
        self.fmt = reg.source.format
        self.encoding = "xlsx" if self.fmt == "xlsx" else (reg.source.encoding or "utf-8")
        self.fields = list(reg.fields)
        self.kinds = [field_kind(f) for f in self.fields]
        self.kind_of = {f.name: k for f, k in zip(self.fields, self.kinds)}
        self.key = list(reg.key)
        self.key_set = set(self.key)
        self.window = settings.division_retired_window_years
        self.damage_marker = "锟斤拷" if self.encoding.lower().replace("-", "").startswith("gb") else "\ufffd"

        # places
        latest = str(latest_division_edition())
        divs = divisions()
        self.division_names = {c: d.name for c, d in divs.items()}
        current = sorted(
            c for c, d in divs.items() if c.startswith("4101") and not c.endswith("00") and d.last_edition == latest
        )
        accepted = accepted_division_codes(self.window)
        current = [c for c in current if c in accepted]
        if not current:
            raise GenerationError("the shipped GB/T 2260 list has no current Zhengzhou (4101xx) county codes")
        self.districts = current
        self.district_pick = fakes.Weighted([(c, fakes.DISTRICT_WEIGHTS.get(c, 2)) for c in current])
        self.codelist_pick = {
            f.name: fakes.Weighted([(c, 1.0 / (k + 1) ** 1.5) for k, c in enumerate(f.codes)])
            for f in self.fields
            if f.codes
        }
        self.all_areas = all_division_codes()  # computed once: the identifiers function builds a new set per call
        self.cn_id_checked = 0
        self.today = date.today()
        self._division_memo: dict[str, tuple] = {}
        self._bounds_cache: dict[str, tuple[Decimal, Decimal]] = {}
        every = all_division_codes()
        # Citizen-ID address codes come from the civil (MCA) editions: the 2023 statistical
        # codes for development zones (4101 71..73) never appear on identity cards.
        civil = sorted(c for c in every if not c.endswith("00") and divs[c].first_edition[:4] < latest)
        self.henan_areas = [c for c in civil if c.startswith("41")]
        self.other_areas = [c for c in civil if not c.startswith("41")]
        self.zz_areas = [c for c in civil if c in set(current)] or self.henan_areas
        self.zz_area_set = frozenset(self.zz_areas)
        self.unknown_division = sorted(
            f"4101{n:02d}" for n in range(100) if f"4101{n:02d}" not in every and n not in (0,)
        )
        self.unknown_area = sorted(
            f"41{p:02d}{n:02d}" for p in range(1, 18) for n in range(50, 100) if f"41{p:02d}{n:02d}" not in every
        )
        self.stations = [s for s in fakes.STATIONS if s[2] in accepted] or [
            (f"ZZ{c}", f"{self.division_names[c]}监测站", c) for c in current
        ]

        # what the registration is about
        titles = " ".join(f.title for f in self.fields) + reg.name
        self.has_station = any(k in ("station_code", "station_name") for k in self.kinds)
        self.station_in_key = any(self.kind_of[k] in ("station_code", "station_name") for k in self.key)
        self.series_cycle = len(self.stations) if self.station_in_key else 1
        self.has_birth = "birth_date" in self.kinds
        self.enterprise = "企业" in titles or "市场主体" in titles
        self.homes = any(f.sensitivity == "personal" for f in self.fields if self.kind_of[f.name] == "address") or (
            "cn_id" in [self.kind_of[k] for k in self.key]
        )

        # time: the export date follows from the seed (a seed like 20261121 means "exported that day")
        self.cycle = reg.update_cycle
        self.stamp, self.data_end = self._period(seed, count - 1 - index)
        self.export_at = self.data_end
        # birth dates stay in the past whatever today is
        if self.has_birth:
            first, last = date(1935, 1, 1), date(2020, 12, 31)
        else:
            first, last = date(1950, 1, 1), date(2002, 12, 31)
        self.birth_span = (first.toordinal(), last.toordinal() - first.toordinal() + 1)

        self.headers = self._pick_headers()
        self.path, self.filename = self._file_name(seed, index)

    # ---- time and naming --------------------------------------------------------------------
    def _base_day(self, seed: int) -> date:
        text = str(seed)
        if len(text) == 8:
            try:
                return date(int(text[:4]), int(text[4:6]), int(text[6:8])) - timedelta(days=1)
            except ValueError:
                pass
        return date(2026, 1, 1) + timedelta(days=seed % 365)

    def _period(self, seed: int, back: int) -> tuple[str, datetime]:
        """(file-name stamp, end of the period the file covers), ``back`` periods before the latest."""
        base = self._base_day(seed)
        cycle = self.cycle
        if cycle == "实时":
            end = datetime.combine(base, time(10)) - timedelta(hours=back)
            return end.strftime("%Y%m%d%H"), end
        if cycle not in ("每月", "每季度", "每半年", "每年"):
            day = base - timedelta(days=(7 if cycle == "每周" else 1) * back)
            return day.strftime("%Y%m%d"), datetime.combine(day, time(23))
        months = {"每月": 1, "每季度": 3, "每半年": 6, "每年": 12}[cycle]
        period = (base.year * 12 + base.month - 1) // months - 1 - back  # the last complete period
        y, m0 = divmod(period * months, 12)
        ny, nm0 = divmod(period * months + months, 12)
        end = date(ny, nm0 + 1, 1) - timedelta(days=1)
        stamp = {1: f"{y}{m0 + 1:02d}", 3: f"{y}Q{m0 // 3 + 1}", 6: f"{y}H{m0 // 6 + 1}", 12: f"{y}"}[months]
        return stamp, datetime.combine(end, time(23))

    def _file_name(self, seed: int, index: int) -> tuple[str, str]:
        reg = self.reg
        stamp = self.stamp
        tail = reg.resource.split("_")[-1]
        pattern = reg.source.pattern or "*"
        if self.fmt == "csv":
            clean = "".join(c for c in reg.name if c not in "（）()[]【】/\\:*?\"<>| ")
            name = f"{clean}_{stamp}.csv"
        elif self.fmt == "xlsx":
            name = f"{reg.department}_{tail}_{stamp}.xlsx"
        else:
            name = f"{tail}_{stamp}.jsonl"
            if not fnmatch(name, pattern):
                name = f"{tail}_{stamp}.json"
        if not fnmatch(name, pattern):
            name = f"{reg.resource}_{stamp}.{ 'jsonl' if self.fmt == 'json' else self.fmt}"
        if not fnmatch(name, pattern) and "*" in pattern:
            name = pattern.replace("*", stamp, 1).replace("*", "").replace("?", "0")
        return Lake.join(landing_dir(reg.department, reg.resource), name), name

    def _pick_headers(self) -> list[str]:
        out = []
        for f in self.fields:
            aliases = [h for h in f.headers if h not in (f.title, f.name)]
            r = self.rng.random()
            if r < 0.45 or (not aliases and r < 0.9):
                h = f.title
            elif r < 0.55 or not aliases:
                h = f.name  # the canonical name, as some systems export it
            else:
                h = self.rng.choice(aliases)
            if "(" in h and self.rng.random() < 0.3:
                h = h.replace("(", "（").replace(")", "）")
            out.append(h)
        return out

    # ---- entities ----------------------------------------------------------------------------
    def pick_district(self) -> tuple[str, str]:
        code = self.district_pick.pick(self.rng)
        return code, self.division_names[code]

    def make_person(self, ctx: _Ctx) -> dict:
        rng = self.rng
        r = rng.random()
        gender = "U" if r < 0.002 else ("M" if r < 0.51 else "F")
        start, span = self.birth_span
        birth = date.fromordinal(start + rng.randrange(span))
        r = rng.random()
        if self.has_birth and r < 0.7:
            area = ctx.district()[0]
            if area not in self.zz_area_set:
                area = rng.choice(self.zz_areas)
        elif r < 0.85:
            area = rng.choice(self.henan_areas)
        elif r < 0.93:
            area = rng.choice(self.zz_areas)
        else:
            area = rng.choice(self.other_areas)
        seq = rng.randrange(100)  # first two digits of the sequence
        last = rng.randrange(5) * 2 + (1 if gender == "M" else 0) if gender != "U" else rng.randrange(10)
        body = f"{area}{birth.year}{birth.month:02d}{birth.day:02d}{seq:02d}{last}"
        cn_id = body + cn_id_check_char(body)
        name = fakes.person_name(rng, male=(gender != "F"))
        return {"gender": gender, "birth": birth, "cn_id": cn_id, "name": name}

    def make_org(self, ctx: _Ctx) -> dict:
        rng = self.rng
        if self.enterprise:
            kind = _wchoice(rng, (("91", 80), ("92", 15), ("93", 5)))
        else:
            kind = _wchoice(rng, (("91", 70), ("12", 14), ("11", 8), ("51", 5), ("92", 3)))
        code, dname = ctx.district()
        if kind == "91":
            name = fakes.enterprise_name(rng, dname)
        elif kind == "92":
            name = fakes.individual_business_name(rng, dname, fakes.person_name(rng, True)[0])
        elif kind == "93":
            name = fakes.cooperative_name(rng, dname)
        elif kind == "12":
            name = fakes.institution_name(rng, dname)
        elif kind == "11":
            name = fakes.organ_name(rng, dname)
        else:
            name = fakes.social_org_name(rng)
        return {"kind": kind, "name": name, "uscc": self.make_uscc(kind, code)}

    def make_uscc(self, kind: str | None = None, district: str | None = None) -> str:
        rng = self.rng
        kind = kind or "91"
        district = district or self.pick_district()[0]
        region = "410100" if rng.random() < 0.5 else district
        for _ in range(50):
            if kind[0] == "9" and rng.random() < 0.8:
                body = "MA" + rng.choice(("44", "45", "46", "47", "3X", "40", "9G", "9K")) + "".join(
                    rng.choices(USCC_ALPHABET, k=4)
                )
            else:
                body = f"{rng.randrange(10**8):08d}"
            first17 = f"{kind}{region}{body}{org_check_char(body)}"
            code = first17 + uscc_check_char(first17)
            if "XXXX" not in code:
                return code
        raise GenerationError("could not make a USCC")

    def make_air(self) -> dict:
        rng = self.rng
        pm25 = min(480.0, max(3.0, rng.lognormvariate(math.log(48), 0.6)))
        pm10 = min(590.0, pm25 * rng.uniform(1.3, 2.1))
        so2 = rng.uniform(3, 35)
        no2 = rng.uniform(8, 95)
        o3 = max(2.0, rng.lognormvariate(math.log(70), 0.55))
        o3 = min(o3, 380.0)
        co = rng.uniform(0.3, 2.4)
        values = {
            "PM2.5": round(pm25), "PM10": round(pm10), "SO2": round(so2), "NO2": round(no2), "O3": round(o3),
            "CO": round(co, 1),
        }
        iaqi = {p: _iaqi(p, v) for p, v in values.items()}
        primary = max(iaqi, key=lambda p: iaqi[p])
        aqi = min(500, math.ceil(iaqi[primary]))
        return {"values": values, "aqi": aqi, "primary": primary if aqi > 50 else None}

    # ---- canonical values ---------------------------------------------------------------------
    def value(self, f: FieldSpec, kind: str, ctx: _Ctx):
        """A valid canonical value, or None for an empty optional field."""
        rng = self.rng
        in_key = f.name in self.key_set
        if not f.required and not in_key and not f.unique:
            p_null = 0.12 if kind == "mobile" else 0.05
            if rng.random() < p_null:
                return None
            if kind == "mobile" and ctx._person is not None and ctx._person["birth"].year > 2012:
                return None  # young children have no phone of their own
        v = self._value(f, kind, ctx)
        if v is None and (f.required or in_key):
            v = self._fallback(f, kind)
        return v

    def _fallback(self, f: FieldSpec, kind: str):
        if kind == "pollutant":
            return "PM2.5"
        return fakes.REMARKS[0]

    def _value(self, f: FieldSpec, kind: str, ctx: _Ctx):
        rng = self.rng
        if kind == "uscc":
            return ctx.org()["uscc"]
        if kind == "cn_id":
            return ctx.person()["cn_id"]
        if kind == "mobile":
            return rng.choice(fakes.MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
        if kind == "division":
            return ctx.district()[0]
        if kind == "org_code":
            body = f"{rng.randrange(10**8):08d}"
            return body + org_check_char(body)
        if kind == "gender":
            g = ctx.person()["gender"]
            want = {"M": "男", "F": "女"}.get(g)
            codes = f.codes or {}
            for code, meaning in codes.items():
                if meaning == want:
                    return code
            others = [c for c, m in codes.items() if m not in ("男", "女")]
            return others[0] if others else next(iter(codes))
        if kind == "codelist":
            return self.codelist_pick[f.name].pick(rng)
        if kind == "birth_date":
            return ctx.person()["birth"]
        if kind == "date":
            return self._date(f, ctx)
        if kind == "timestamp":
            return self._timestamp(f, ctx)
        if kind == "integer":
            return self._integer(f, ctx)
        if kind == "decimal":
            return self._decimal(f, ctx)
        if kind == "money":
            return self._money(f, ctx)
        if kind == "boolean":
            return rng.random() < 0.7
        if kind == "person_name":
            return ctx.person()["name"]
        if kind == "org_name":
            return ctx.org()["name"]
        if kind == "address":
            code, name = ctx.district()
            return fakes.street_address(rng, code, name, "home" if self.homes else "office")
        if kind == "station_code":
            return ctx.station()[0]
        if kind == "station_name":
            return ctx.station()[1]
        if kind == "pollutant":
            return ctx.air()["primary"]
        if kind == "cert_no":
            code, name = ctx.district()
            city = name if name.endswith("市") and not name.startswith("郑州") else "郑州市"
            if name.endswith("县"):
                city = name
            year = rng.randint(2016, max(2016, self.data_end.year))
            return f"豫（{year}）{city}不动产权第{rng.randrange(10**7):07d}号"
        # text
        limit = f.length or 400
        t = f.title
        if "编号" in t or "代码" in t or "号" in t:
            return f"ZZ{rng.randrange(10**6):06d}"[: max(limit, 4)]
        for remark in rng.sample(fakes.REMARKS, len(fakes.REMARKS)):
            if len(remark.encode("utf-8")) <= limit:
                return remark
        return "A"

    def _date_range(self, f: FieldSpec) -> tuple[date, date]:
        n, t = f.name.lower(), f.title
        end = self.data_end.date()
        if any(k in n for k in ("establish", "found", "open")) or any(k in t for k in ("成立", "设立", "开户", "建缴")):
            start = date(1995, 1, 1)
        elif "登簿" in t or "registered" in n:
            start = date(2016, 1, 1)
        else:
            start = date(2005, 1, 1)
        return start, max(start, end)

    def _date(self, f: FieldSpec, ctx: _Ctx) -> date:
        rng = self.rng
        if f.name in self.key_set:
            return self.data_end.date() - timedelta(days=(self.rows - 1 - ctx.i) // self.series_cycle)
        start, end = self._date_range(f)
        span = (end - start).days
        return start + timedelta(days=int(span * rng.random() ** 0.6))

    def _timestamp(self, f: FieldSpec, ctx: _Ctx) -> datetime:
        rng = self.rng
        end = self.data_end.replace(minute=0, second=0, microsecond=0)
        if f.name in self.key_set:
            return end - timedelta(hours=(self.rows - 1 - ctx.i) // self.series_cycle)
        return end - timedelta(minutes=rng.randrange(30 * 24 * 60))

    def _bounds(self, f: FieldSpec, lo: float, hi: float) -> tuple[float, float]:
        if f.min is not None:
            lo = max(lo, f.min)
            hi = max(hi, lo)
        if f.max is not None:
            hi = min(hi, f.max)
            lo = min(lo, hi)
        return lo, hi

    def _integer(self, f: FieldSpec, ctx: _Ctx) -> int:
        rng = self.rng
        n, t = f.name.lower(), f.title
        if n == "aqi" or "AQI" in t or "空气质量指数" in t:
            v = ctx.air()["aqi"]
        elif "count" in n or "人数" in t or "数量" in t or "num" in n:
            v = int(min(20000, max(1, rng.lognormvariate(math.log(18), 1.3))))
            ctx.count = v
        else:
            lo, hi = self._bounds(f, 0, 1000)
            v = rng.randint(math.ceil(lo), math.floor(hi))
        lo, hi = self._bounds(f, -1e18, 1e18)
        if not lo <= v <= hi:
            v = rng.randint(math.ceil(lo), math.floor(hi))
        return v

    def _decimal(self, f: FieldSpec, ctx: _Ctx) -> Decimal:
        rng = self.rng
        n, t = f.name.lower(), f.title
        pollutant = _POLLUTANT_FIELDS.get(n)
        if pollutant:
            v = Decimal(str(ctx.air()["values"][pollutant]))
            if pollutant != "CO" and rng.random() < 0.15:
                v += Decimal(rng.randrange(1, 10)) / 10
        elif "area" in n or "面积" in t:
            v = Decimal(str(round(min(600.0, max(18.0, rng.lognormvariate(math.log(95), 0.45))), 2)))
        else:
            lo, hi = self._bounds(f, 0, 1000)
            v = Decimal(str(round(rng.uniform(lo, hi), 2)))
        lo, hi = self._dec_bounds(f)
        if not lo <= v <= hi:
            v = Decimal(str(round(rng.uniform(float(lo), float(hi)), 2)))
            v = min(max(v, lo), hi)
        return v

    def _money(self, f: FieldSpec, ctx: _Ctx) -> Decimal:
        rng = self.rng
        n, t = f.name.lower(), f.title
        unit = f.unit or "元"
        if "capital" in n or "资本" in t or "出资" in t or "资金" in t:
            wan = _wchoice(
                rng,
                (("3", 4), ("5", 6), ("10", 12), ("20", 6), ("30", 5), ("50", 10), ("100", 14), ("200", 7), ("300", 5),
                 ("500", 8), ("1000", 8), ("2000", 3), ("3000", 2), ("5000", 3), ("10000", 2), ("50000", 1), ("odd", 6)),
            )
            yuan = Decimal(wan) * 10000 if wan != "odd" else Decimal(str(round(rng.uniform(1, 3000), 2))) * 10000
        elif ctx.count is not None:
            yuan = Decimal(str(round(ctx.count * rng.uniform(420, 2400), 2)))
        else:
            yuan = Decimal(str(round(rng.lognormvariate(math.log(50000), 1.2), 2)))
        factor = {"元": 1, "万元": 10_000, "亿元": 100_000_000}[unit]
        v = (yuan / factor).quantize(_MICRO)
        lo, hi = self._dec_bounds(f)
        if not lo <= v <= hi:
            v = Decimal(str(round(rng.uniform(float(lo), float(hi)), 2)))
        return v

    def _dec_bounds(self, f: FieldSpec) -> tuple[Decimal, Decimal]:
        hit = self._bounds_cache.get(f.name)
        if hit is None:
            lo = Decimal(str(f.min)) if f.min is not None else Decimal("-1e15")
            hi = Decimal(str(f.max)) if f.max is not None else Decimal("1e15")
            hit = self._bounds_cache[f.name] = (lo, hi)
        return hit

    # ---- records -----------------------------------------------------------------------------
    def record(self, i: int) -> dict:
        ctx = _Ctx(self, i)
        return {f.name: self.value(f, k, ctx) for f, k in zip(self.fields, self.kinds)}

    def key_signature(self, rec: dict) -> tuple:
        out = []
        for name in self.key:
            v = rec[name]
            if isinstance(v, (date, datetime, Decimal, bool, int)):
                out.append(v)
            else:
                text = normalize_text(str(v)) if v is not None else None
                kind = self.kind_of[name]
                out.append(text.upper() if text and kind in ("uscc", "cn_id", "org_code") else text)
        return tuple(out)

    def unique_signatures(self, rec: dict) -> list[tuple]:
        sigs = [("key",) + self.key_signature(rec)]
        for f in self.fields:
            if f.unique and f.name not in self.key_set and rec[f.name] is not None:
                sigs.append((f.name, normalize_text(str(rec[f.name]))))
        return sigs

    # ---- rendering (valid noise) ------------------------------------------------------------------
    def null_cell(self, f: FieldSpec, kind: str, allow_missing: bool):
        rng = self.rng
        pairs = MONEY_NULLS if kind == "money" else CSV_NULLS
        if self.fmt == "json":
            r = rng.random()
            if r < 0.4:
                return None
            if r < 0.55 and allow_missing:
                return MISSING
            return _wchoice(rng, pairs)
        if self.fmt == "xlsx" and rng.random() < 0.5:
            return None
        return _wchoice(rng, pairs)

    def render(self, f: FieldSpec, kind: str, v, allow_missing: bool = True):
        rng = self.rng
        fmt = self.fmt
        if v is None:
            return self.null_cell(f, kind, allow_missing)
        if kind == "uscc":
            text = v
            if text[-1].isalpha() and rng.random() < 0.25:
                text = text[:-1] + text[-1].lower()
            return _noise(text, rng)
        if kind == "cn_id":
            text = v
            if f.legacy15 == "convert" and text[6:8] == "19" and rng.random() < 0.06:
                text = text[:6] + text[8:17]
            elif text[-1] == "X" and rng.random() < 0.3:
                text = text[:-1] + "x"
            return _noise(text, rng, 0.02, 0.02)
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
            return _noise(text, rng, 0.02, 0.02)
        if kind == "division":
            if fmt == "xlsx" and rng.random() < 0.4:
                return int(v)
            return _noise(v, rng, 0.02, 0.03)
        if kind == "org_code":
            text = f"{v[:8]}-{v[8]}" if rng.random() < 0.5 else v
            return _noise(text, rng, 0.02, 0.02)
        if kind in ("gender", "codelist"):
            meaning = (f.codes or {}).get(v)
            if meaning and meaning != v and normalize_text(meaning) == meaning and rng.random() < 0.3:
                text = meaning
            else:
                text = v
            return _noise(text, rng, 0.03 if text.isascii() else 0.0, 0.03)
        if kind in ("date", "birth_date"):
            if fmt == "xlsx":
                r = rng.random()
                if r < 0.35:
                    return XDate(_excel_serial(v))
                if r < 0.65:
                    return _excel_serial(v)
            return _noise(self._date_text(v), rng, 0.02, 0.03)
        if kind == "timestamp":
            return _noise(self._timestamp_text(v), rng, 0.02, 0.03)
        if kind == "integer":
            if fmt == "xlsx" and rng.random() < 0.8:
                return v
            if fmt == "json" and rng.random() < 0.7:
                return v
            text = _thousands(str(v)) if v >= 1000 and rng.random() < 0.3 else str(v)
            return _noise(text, rng)
        if kind == "decimal":
            text = _dec_str(v)
            if fmt == "xlsx" and rng.random() < 0.7:
                return float(text)
            r = rng.random()
            if "." not in text and r < 0.1:
                text += ".0"
            elif v >= 1000 and r < 0.2:
                text = _thousands(text)
            return _noise(text, rng)
        if kind == "money":
            if fmt == "xlsx" and rng.random() < 0.5:
                return float(_dec_str(v))
            return _noise(self._money_text(f, v), rng)
        if kind == "boolean":
            return "是" if v else "否"
        # free text (names, addresses, stations, codes…)
        return _noise(str(v), rng, 0.04, 0.03)

    def _date_text(self, d: date) -> str:
        r = self.rng.random()
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

    def _timestamp_text(self, t: datetime) -> str:
        r = self.rng.random()
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

    def _money_text(self, f: FieldSpec, v: Decimal) -> str:
        rng = self.rng
        unit = f.unit or "元"
        text = _dec_str(v)
        r = rng.random()
        if r < 0.25:
            return text
        if r < 0.35:
            return _thousands(text) if abs(v) >= 1000 else text
        suffixes = {
            "元": ("元", "元人民币", "(元)", "（元）", "(元人民币)"),
            "万元": ("万元", "万", "万元人民币", "万人民币", "(万元)", "(万元人民币)", "（万元）", "（万）", "(万)"),
            "亿元": ("亿元", "亿", "(亿元)", "（亿元）"),
        }[unit]
        if r < 0.60:
            number = _thousands(text) if abs(v) >= 1000 and rng.random() < 0.5 else text
            return number + rng.choice(suffixes)
        if r < 0.70:
            return f"{v:.4f}" + rng.choice(suffixes)
        if r < 0.85:
            # the same amount in another unit
            if unit == "万元" and v * 10000 == (v * 10000).to_integral():
                return f"{_dec_str(v * 10000)}元"
            if unit == "元" and v >= 100:
                return f"{_dec_str(v / 10000)}万元"
            if unit == "万元" and v >= 10000 and (v / 10000) == (v / 10000).quantize(Decimal("0.000001")):
                return f"{_dec_str(v / 10000)}亿元"
            return text + suffixes[0]
        if unit == "万元" and r < 0.93:
            return f"{text}(万美元)" if rng.random() < 0.7 else f"{text}万港元"
        return text + suffixes[0]

    # ---- checks on what is written --------------------------------------------------------------
    def verify_good(self, f: FieldSpec, kind: str, cell, known_present: bool = False) -> None:
        if kind not in CHECKED_KINDS or f.check is None:
            return
        text = cell_text(cell)
        if not known_present and _is_null_text(text):
            if f.required:
                raise GenerationError(f"{f.name}: required value written empty")
            return
        reason = self.good_reason(f, text)
        if reason is not None:
            raise GenerationError(f"{f.name}: generated good value {text!r} is invalid ({reason})")

    def check(self, f: FieldSpec, text: str):
        if f.check == "cn_id":
            return check_cn_id(text, legacy15=f.legacy15)
        return self._check_other(f, text)

    def good_reason(self, f: FieldSpec, text: str) -> str | None:
        """The reason (None when valid) for a value meant to be valid.

        Citizen IDs go through a re-statement of :func:`check_cn_id` built from the same
        primitives, because ``all_division_codes()`` rebuilds a 4,000-code set on every call
        (0.2 ms); the first values of each file are also checked with the real function,
        and the tests check all of them."""
        if f.check == "division_code":
            hit = self._division_memo.get(text)
            if hit is None:
                hit = self._division_memo[text] = (self.check(f, text).reason,)
            return hit[0]
        if f.check != "cn_id":
            return self.check(f, text).reason
        reason = _cn_id_reason(text, f.legacy15, self.all_areas, self.today)
        if self.cn_id_checked < 300:
            self.cn_id_checked += 1
            real = check_cn_id(text, legacy15=f.legacy15).reason
            if real != reason:
                raise GenerationError(f"fast citizen-ID check disagrees on {text!r}: {reason} vs {real}")
        return reason

    def _check_other(self, f: FieldSpec, text: str):
        if f.check == "division_code":
            return check_division_code(text, self.window)
        return {"uscc": check_uscc, "org_code": check_org_code, "mobile": check_mobile}[f.check](text)

    def render_good(self, rec: dict, allow_missing: bool = True, verify: bool = True) -> list:
        cells = []
        for f, kind in zip(self.fields, self.kinds):
            v = rec[f.name]
            cell = self.render(f, kind, v, allow_missing)
            if verify and v is not None and kind in CHECKED_KINDS:
                self.verify_good(f, kind, cell, known_present=True)
            cells.append(cell)
        return cells

    # ---- defects -----------------------------------------------------------------------------------
    def defect_kinds(self) -> list[tuple[str, str | None, float]]:
        kinds: list[tuple[str, str | None, float]] = []
        required = [f for f in self.fields if f.required]
        for f, kind in zip(self.fields, self.kinds):
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
                if self.not_in_codelist_values(f):
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
        if self.damage_field() is not None:
            kinds.append(("encoding_damage", None, 0.8))
        if self.fmt in ("csv", "xlsx"):
            kinds.append(("column_count", None, 0.8))
        if self.fmt in ("csv", "json"):
            kinds.append(("malformed_line", None, 0.5))
        return kinds

    def damage_field(self) -> FieldSpec | None:
        best = None
        for f, kind in zip(self.fields, self.kinds):
            if kind not in TEXT_KINDS or f.check is not None or f.name in self.key_set or f.unique:
                continue
            score = ((f.length or 100), 0 if f.required else 1)
            if best is None or score > best[0]:
                best = (score, f)
        return best[1] if best else None

    def not_in_codelist_values(self, f: FieldSpec) -> list[str]:
        codes = f.codes or {}
        known = [*codes.keys(), *codes.values()]
        out = []
        for cand in ("仓储", "正常", "未知", "待定", "99", "Z9", "其它类型", "暂停"):
            if _is_null_text(cand):
                continue
            if any(cand in k or k in cand for k in known):
                continue
            out.append(cand)
        return out

    def bad_value(self, code: str, f: FieldSpec, kind: str, rec: dict):
        """Text for field ``f`` that gets exactly ``<code>:<field>`` under conform-rules.md."""
        rng = self.rng
        v = rec[f.name]
        if code == "required":
            if self.fmt == "json":
                return rng.choice((None, "", "NULL", "无", " "))
            if self.fmt == "xlsx":
                return rng.choice((None, None, "无", "NULL", "/"))
            return rng.choice(("", "", " ", "无", "NULL", "—", "/", "空"))
        if code == "uscc_check":
            good = v or self.make_uscc()
            wrong = rng.choice([c for c in USCC_ALPHABET if c != good[17]])
            return good[:17] + wrong
        if code == "uscc_regno15":
            first14 = rng.choice(("410100", "410105", "410102", "410103", "410104")) + rng.choice("0123") + "".join(
                rng.choice("0123456789") for _ in range(7)
            )
            return first14 + regno15_check_digit(first14)
        if code == "uscc_masked":
            good = v or self.make_uscc()
            r = rng.random()
            if r < 0.5:
                return good[:6] + "*" * 8 + good[14:]
            if r < 0.8:
                return good[:8] + "*" * 10
            return good[:8] + "xxxxxxxxxx"
        if code == "uscc_text":
            for name, k in self.kind_of.items():
                if k in ("org_name", "address") and rec.get(name):
                    return str(rec[name])
            return fakes.enterprise_name(rng, self.pick_district()[1])
        if code == "uscc_format":
            good = v or self.make_uscc()
            r = rng.random()
            if r < 0.4:
                pos = rng.randrange(8, 17)
                return good[:pos] + rng.choice("IOSVZ") + good[pos + 1:]
            if r < 0.7:
                pos = rng.randrange(9, 17)
                return good[:pos] + good[pos + 1:]  # 17 characters
            return good + rng.choice("0123456789")  # 19 characters
        if code.startswith("cn_id_"):
            return self._bad_cn_id(code, v or self.make_person(_Ctx(self, 0))["cn_id"])
        if code == "division_unknown":
            return rng.choice(self.unknown_division)
        if code == "division_format":
            r = rng.random()
            if r < 0.5:
                return self.division_names[v or self.districts[0]].replace("郑州市", "")
            if r < 0.75:
                return (v or self.districts[0])[:5]
            return (v or self.districts[0]) + rng.choice("0123456789")
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
            return rng.choice(self.not_in_codelist_values(f))
        if code == "bad_date":
            y = v.year if isinstance(v, date) else 2021
            return rng.choice(
                (f"{y}-02-30", f"{y}/13/5", f"{y}年2月30日", f"{y}0230", "待补录", f"{y}-00-12", f"{y}年")
            )
        if code == "bad_timestamp":
            t = v if isinstance(v, datetime) else self.data_end
            return rng.choice(
                (f"{t.year}-02-30 {t.hour:02d}:00:00", f"{t.month}月{t.day}日{t.hour}时", "待定", f"{t.hour}:00")
            )
        if code == "bad_number":
            base = str(v) if v is not None else "35"
            if kind == "integer":
                return rng.choice((f"{base}.5", f"约{base}", f"{base}人", "若干"))
            return rng.choice((f"{_dec_str(Decimal(base))}.1.2", f"约{base}", f"<{base}", "未检出"))
        if code == "bad_money":
            word = {"元": "元", "万元": "万", "亿元": "亿"}[f.unit or "元"]
            base = _dec_str(v) if v is not None else "500"
            return rng.choice(("五百万元", f"约{base}{word}", "壹仟万元整", "壹万贰仟元", f"{base}{word}左右"))
        if code == "out_of_range":
            if f.min is not None and (f.max is None or rng.random() < 0.5):
                below = Decimal(str(f.min)) - Decimal(rng.randrange(1, 100))
                text = _dec_str(below)
            else:
                above = Decimal(str(f.max)) + Decimal(rng.randrange(1, 1000))
                text = _dec_str(above)
            if kind == "integer":
                text = str(int(Decimal(text)))
            return text
        raise GenerationError(f"no bad value for {code}")

    def _bad_cn_id(self, code: str, good: str) -> str:
        rng = self.rng
        if code == "cn_id_check":
            wrong = rng.choice([c for c in "0123456789X" if c != good[17]])
            return good[:17] + wrong
        if code == "cn_id_area":
            body = rng.choice(self.unknown_area) + good[6:17]
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

    def damage(self, text: str) -> str:
        rng = self.rng
        marker = self.damage_marker
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


# ---- serialization ------------------------------------------------------------------------------
def _csv_line(cells: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(cells)
    return buf.getvalue()


def _parse_csv_line(line: str) -> list[str] | None:
    try:
        rows = list(csv.reader([line], strict=True))
    except csv.Error:
        return None
    return rows[0] if rows else []


def _col(n: int) -> str:
    out = ""
    n += 1
    while n:
        n, r = divmod(n - 1, 26)
        out = chr(65 + r) + out
    return out


_NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
_RNS = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'


def xlsx_bytes(sheet: str, rows: list[list], created: datetime, creator: str) -> bytes:
    """A minimal, deterministic XLSX workbook: inline strings, numbers, and date cells (style 1)."""
    width = max((len(r) for r in rows), default=1)
    parts = []
    cols = [_col(k) for k in range(width)]
    for r, row in enumerate(rows, start=1):
        cells = []
        for k, cell in enumerate(row):
            if cell is None or cell is MISSING or cell == "":
                continue
            ref = f"{cols[k]}{r}"
            if isinstance(cell, XDate):
                cells.append(f'<c r="{ref}" s="1"><v>{cell.serial}</v></c>')
            elif isinstance(cell, bool):
                cells.append(f'<c r="{ref}" t="b"><v>{int(cell)}</v></c>')
            elif isinstance(cell, int):
                cells.append(f'<c r="{ref}"><v>{cell}</v></c>')
            elif isinstance(cell, float):
                cells.append(f'<c r="{ref}"><v>{cell!r}</v></c>')
            else:
                cells.append(f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{_xml_escape(str(cell))}</t></is></c>')
        parts.append(f'<row r="{r}">{"".join(cells)}</row>')
    dim = f"A1:{_col(width - 1)}{max(len(rows), 1)}"
    sheet_xml = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet {_NS} {_RNS}>'
        f'<dimension ref="{dim}"/><sheetData>{"".join(parts)}</sheetData></worksheet>'
    )
    when = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    files = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
            '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
            '</Types>'
        ),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
            '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/>'
            '</Relationships>'
        ),
        "docProps/core.xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            f'<dc:creator>{_xml_escape(creator)}</dc:creator>'
            f'<dcterms:created xsi:type="dcterms:W3CDTF">{when}</dcterms:created>'
            f'<dcterms:modified xsi:type="dcterms:W3CDTF">{when}</dcterms:modified>'
            '</cp:coreProperties>'
        ),
        "xl/workbook.xml": (
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<workbook {_NS} {_RNS}>'
            f'<sheets><sheet name="{_xml_escape(sheet)}" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
            '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>'
            '</Relationships>'
        ),
        "xl/styles.xml": (
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<styleSheet {_NS}>'
            '<fonts count="1"><font><sz val="11"/><name val="宋体"/><family val="3"/><charset val="134"/></font></fonts>'
            '<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>'
            '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
            '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
            '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
            '<xf numFmtId="14" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
            '<cellStyles count="1"><cellStyle name="常规" xfId="0" builtinId="0"/></cellStyles>'
            '</styleSheet>'
        ),
        "xl/worksheets/sheet1.xml": sheet_xml,
    }
    buf = io.BytesIO()
    stamp = (created.year, created.month, created.day, created.hour, created.minute, created.second)
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 0
            info.external_attr = 0
            zf.writestr(info, text.encode("utf-8"), compresslevel=6)
    return buf.getvalue()


# ---- building one file ----------------------------------------------------------------------------
def _bad_count(rng: random.Random, rows: int) -> int:
    if rows < 2:
        return 0
    lo = max(1, math.ceil(rows * BAD_FRACTION[0]))
    hi = max(lo, math.floor(rows * BAD_FRACTION[1]))
    return min(rows - 1, rng.randint(lo, hi))


def _build_file(settings: Settings, reg: Registration, seed: int, index: int, count: int, rows: int):
    g = _FileGen(settings, reg, seed, index, count, rows)
    rng = g.rng
    fields, kinds = g.fields, g.kinds
    field_index = {f.name: k for k, f in enumerate(fields)}

    # 1. base records, unique by key (and by unique fields)
    records: list[dict] = []
    seen: set = set()
    for i in range(rows):
        for _attempt in range(200):
            rec = g.record(i)
            sigs = g.unique_signatures(rec)
            if not any(s in seen for s in sigs):
                break
        else:
            raise GenerationError(f"{reg.resource}: could not make a record with a unique key at row {i}")
        seen.update(sigs)
        records.append(rec)

    # 2. which rows are bad, and how
    n_bad = _bad_count(rng, rows)
    positions = sorted(rng.sample(range(1, rows), n_bad)) if n_bad else []
    catalogue = g.defect_kinds()
    first = rng.sample(catalogue, min(len(catalogue), n_bad))
    rest = rng.choices(catalogue, [w for _, _, w in catalogue], k=n_bad - len(first))
    plan = [(code, fname) for code, fname, _ in first + rest]
    rng.shuffle(plan)
    assignment = dict(zip(positions, plan))
    fallback = ("column_count", None) if g.fmt in ("csv", "xlsx") else ("malformed_line", None)

    # 3. rows
    out_rows: list = []  # list of cells, or RawLine
    good_cells: dict[int, list] = {}
    good_done: list[int] = []
    used_sources: set[int] = set()
    bad: dict[str, int] = {}
    damage_field = g.damage_field()

    def pick_source(p: int) -> int | None:
        for _ in range(30):
            if not good_done:
                return None
            j = good_done[rng.randrange(len(good_done))]
            if j not in used_sources:
                return j
        candidates = [j for j in good_done if j not in used_sources]
        return rng.choice(candidates) if candidates else None

    for i in range(rows):
        rec = records[i]
        if i not in assignment:
            # Every good identifier of the first VERIFY_ALL_ROWS rows is checked with citylake.identifiers
            # (the tests re-check every row of every file they generate); beyond that, every 8th row.
            cells = g.render_good(rec, allow_missing=(i > 0), verify=(i < VERIFY_ALL_ROWS or i % 8 == 0))
            out_rows.append(cells)
            good_cells[i] = cells
            good_done.append(i)
            continue
        code, fname = assignment[i]
        row = None
        if code == "duplicate_row":
            j = pick_source(i)
            if j is not None:
                used_sources.add(j)
                row = list(good_cells[j])
        elif code == "duplicate_key":
            j = pick_source(i)
            if j is not None:
                row = _duplicate_key_row(g, records[j], good_cells[j], rec)
                if row is not None:
                    used_sources.add(j)
        if code in ("duplicate_row", "duplicate_key") and row is None:
            code, fname = fallback
        if row is None:
            cells = g.render_good(rec)
            if code == "encoding_damage":
                k = field_index[damage_field.name]
                base = rec[damage_field.name]
                if base is None:
                    base = g._value(damage_field, kinds[k], _Ctx(g, i)) or fakes.REMARKS[0]
                cells[k] = g.damage(str(base))
                row = cells
            elif code == "column_count":
                row = _column_count_row(g, cells)
            elif code == "malformed_line":
                row = _malformed_row(g, cells)
            else:
                k = field_index[fname]
                f = fields[k]
                text = g.bad_value(code, f, kinds[k], rec)
                _verify_bad(g, code, f, kinds[k], text)
                cells[k] = text
                row = cells
        out_rows.append(row)
        key = reason_string(code, fname)
        bad[key] = bad.get(key, 0) + 1

    # 4. bytes
    if g.fmt == "csv":
        data = _csv_bytes(g, out_rows)
    elif g.fmt == "xlsx":
        sheet = reg.source.sheet or "Sheet1"
        data = xlsx_bytes(sheet, [list(g.headers)] + out_rows, g.export_at, reg.department_name)
    else:
        data = _json_bytes(g, out_rows)

    entry = {
        "resource": reg.resource,
        "department": reg.department,
        "format": g.fmt,
        "encoding": g.encoding,
        "rows": rows,
        "good": rows - sum(bad.values()),
        "bad": dict(sorted(bad.items())),
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "headers": list(g.headers),
    }
    return g.path, data, entry


def _duplicate_key_row(g: _FileGen, src: dict, src_cells: list, other: dict) -> list | None:
    """Same key as an earlier good row, some other values differ (all still valid)."""
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
        cell = g.render(f, kind, new_value)
        g.verify_good(f, kind, cell)
        new_text = normalize_text(cell_text(cell))
        old_text = normalize_text(cell_text(row[k]))
        if new_text is None or new_text == old_text:
            continue
        row[k] = cell
        changed += 1
        if changed >= rng.randint(1, 2):
            break
    return row if changed else None


def _column_count_row(g: _FileGen, cells: list):
    rng = g.rng
    extra = rng.choice(("备注：数据补录", "待核实", "已迁出", "见附件", "1"))
    if g.fmt == "xlsx":
        return list(cells) + ([None] if rng.random() < 0.3 else []) + [extra]
    if rng.random() < 0.5:
        row = list(cells) + [extra if rng.random() < 0.7 else ""]
    else:
        row = list(cells)[:-1]
    parsed = _parse_csv_line(_csv_line([str(c) for c in row]))
    if parsed is None or len(parsed) == len(g.headers):
        raise GenerationError(f"column-count row does not change the field count: {row!r}")
    return row


def _malformed_row(g: _FileGen, cells: list) -> RawLine:
    rng = g.rng
    if g.fmt == "csv":
        head = _csv_line([str(c) for c in cells[:-1]])
        line = f'{head},"{cells[-1]}' if len(cells) > 1 else f'"{cells[-1]}'
        if '"' in str(cells[-1]) or _parse_csv_line(line) is not None:
            raise GenerationError(f"malformed CSV line parses: {line!r}")
        return RawLine(line)
    # JSON Lines: a truncated object, or something that is not an object
    obj = _json_obj(g, cells, full=True)
    text = json.dumps(obj, ensure_ascii=False)
    r = rng.random()
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


def _verify_bad(g: _FileGen, code: str, f: FieldSpec, kind: str, value) -> None:
    """Bad values: an identifier fails with exactly the intended reason; nothing is a null token
    unless it is meant to be empty."""
    text = cell_text(value)
    if code == "required":
        if not _is_null_text(text):
            raise GenerationError(f"{f.name}: 'required' value {text!r} is not empty")
        return
    if _is_null_text(text):
        raise GenerationError(f"{f.name}: bad value {text!r} for {code} reads as empty")
    if g.encoding != "xlsx":
        text.encode(g.encoding)
    if f.check in ("uscc", "cn_id", "org_code", "division_code", "mobile"):
        got = g.check(f, text).reason
        if got != code:
            raise GenerationError(f"{f.name}: bad value {text!r} gives {got!r}, meant {code!r}")


def _csv_bytes(g: _FileGen, rows: list) -> bytes:
    eol = "\r\n" if g.damage_marker == "锟斤拷" else "\n"
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator=eol)
    writer.writerow(g.headers)
    for row in rows:
        if isinstance(row, RawLine):
            buf.write(row.text + eol)
        else:
            writer.writerow(row)
    text = buf.getvalue()
    try:
        data = text.encode(g.encoding)
    except UnicodeEncodeError as exc:
        raise GenerationError(f"{g.path}: text not encodable in {g.encoding}: {exc}") from None
    if g.encoding.lower().replace("-", "").startswith("gb") and not text.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            raise GenerationError(f"{g.path}: {g.encoding} bytes also decode as UTF-8")
    return data


def _json_obj(g: _FileGen, cells: list, full: bool = False) -> dict:
    obj = {}
    for h, cell in zip(g.headers, cells):
        if cell is MISSING:
            if full:
                obj[h] = None
            continue
        obj[h] = cell
    return obj


def _json_bytes(g: _FileGen, rows: list) -> bytes:
    lines = []
    for row in rows:
        if isinstance(row, RawLine):
            lines.append(row.text)
        else:
            lines.append(json.dumps(_json_obj(g, row), ensure_ascii=False))
    text = "\n".join(lines) + "\n"
    encoding = g.encoding if g.encoding.lower() not in ("xlsx",) else "utf-8"
    return text.encode(encoding)


# ---- public API -----------------------------------------------------------------------------------
def truth_path(settings: Settings) -> Path:
    return settings.home / TRUTH_RELPATH


def generate(
    settings: Settings,
    registrations: list[Registration],
    rows: int,
    seed: int,
    files_per_resource: int = 1,
    workers: int | None = None,
) -> dict:
    """Write dirty sample exports for every registration into the landing zone; return the truth.

    The return value is this run's truth (``{"seed", "rows", "files_per_resource", "files"}``);
    the same is merged into ``$CITYLAKE_HOME/generated/truth.json``. Each file depends only on
    (seed, registration, file index, rows), so big runs build files in parallel processes
    (``workers``: default one per CPU, up to 4, when there are at least
    ``PARALLEL_MIN_ROWS`` rows in all; 1 means in this process). The bytes are the same either way.
    """
    if rows < 1:
        raise ValueError("rows must be at least 1")
    if files_per_resource < 1:
        raise ValueError("files_per_resource must be at least 1")
    lake = Lake.from_settings(settings)
    jobs = [(reg, index) for reg in registrations for index in range(files_per_resource)]
    if workers is None:
        workers = min(len(jobs), os.cpu_count() or 1, 4) if rows * len(jobs) >= PARALLEL_MIN_ROWS else 1
    files: dict[str, dict] = {}

    def keep(path: str, data: bytes, entry: dict) -> None:
        if path in files:
            raise GenerationError(f"two files named {path}")
        lake.write_bytes(path, data)
        files[path] = entry

    if workers > 1 and len(jobs) > 1:
        # spawn, not fork: the caller may hold threads (Spark's JVM gateway, Airflow).
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = [
                pool.submit(_build_file, settings, reg, seed, index, files_per_resource, rows) for reg, index in jobs
            ]
            for future in futures:
                keep(*future.result())
    else:
        for reg, index in jobs:
            keep(*_build_file(settings, reg, seed, index, files_per_resource, rows))
    truth = {"seed": seed, "rows": rows, "files_per_resource": files_per_resource, "files": files}
    _write_truth(settings, lake, truth)
    return truth


def _write_truth(settings: Settings, lake: Lake, truth: dict) -> None:
    target = truth_path(settings)
    merged = dict(truth["files"])
    if target.exists():
        try:
            previous = json.loads(target.read_text(encoding="utf-8")).get("files", {})
        except (ValueError, OSError):
            previous = {}
        for path, entry in previous.items():
            if path in merged or not isinstance(entry, dict):
                continue
            try:
                digest, _ = lake.sha256(path)
            except (OSError, FileNotFoundError):
                continue
            if digest == entry.get("sha256"):
                merged[path] = entry
    out = dict(truth)
    out["files"] = dict(sorted(merged.items()))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, ensure_ascii=False, indent=2), encoding="utf-8")
    tmp.replace(target)


# ---- CLI ---------------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help=f"data rows per file (default {DEFAULT_ROWS})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    parser.add_argument(
        "--resource", action="append", default=[], metavar="RESOURCE",
        help="only this resource (repeatable; default: every registered file resource)",
    )
    parser.add_argument(
        "--files-per-resource", type=int, default=1, metavar="K", help="export files per resource (default 1)"
    )


def run(args: argparse.Namespace) -> int:
    import sys

    settings = Settings.from_env()
    regs = load_registrations(settings.resources_dir)
    if args.resource:
        by_name = {r.resource: r for r in regs}
        unknown = [r for r in args.resource if r not in by_name]
        if unknown:
            known = ", ".join(sorted(by_name))
            print(f"unknown resource(s): {', '.join(unknown)}; registered: {known}", file=sys.stderr)
            return 2
        regs = [by_name[r] for r in dict.fromkeys(args.resource)]
    if args.rows < 1 or args.files_per_resource < 1:
        print("--rows and --files-per-resource must be at least 1", file=sys.stderr)
        return 2
    truth = generate(settings, regs, rows=args.rows, seed=args.seed, files_per_resource=args.files_per_resource)
    for path, entry in truth["files"].items():
        n_bad = sum(entry["bad"].values())
        reasons = ", ".join(f"{k}={v}" for k, v in entry["bad"].items())
        print(f"{path}: {entry['rows']} rows, {n_bad} bad ({reasons})")
    print(f"truth: {truth_path(settings)}")
    return 0
