"""Valid canonical values for one export file, field by field, driven by the registration.

:class:`FileGen` holds everything one file needs (its random stream, fields, places, period,
headers and path) and makes the records of the file: Python values (``str``, ``date``,
``Decimal``…) that are all valid. How they are written, with valid noise, is
:mod:`~citylake_dev.generate.noise`; how rows are spoiled, :mod:`~citylake_dev.generate.defects`.
"""

from __future__ import annotations

import math
import random
from datetime import date, datetime, timedelta
from decimal import Decimal

from citylake.core.identifiers import (
    CHECKERS,
    CheckResult,
    check_cn_id,
    check_division_code,
    normalize_text,
    org_check_char,
)
from citylake.core.registry import FieldSpec, Registration
from citylake.core.settings import Settings
from citylake_dev import fakes
from citylake_dev.generate.entities import POLLUTANT_FIELDS, Places, Record
from citylake_dev.generate.naming import file_name, period, pick_headers

TEXT_KINDS = ("person_name", "org_name", "address", "station_name", "text")
CHECKED_KINDS = frozenset(("uscc", "cn_id", "org_code", "division", "mobile"))
_MICRO = Decimal("0.000001")


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


class FileGen:
    """One export file: file ``index`` of ``count`` for a registration, with ``rows`` data rows."""

    def __init__(self, settings: Settings, reg: Registration, seed: int, index: int, count: int, rows: int):
        self.reg = reg
        self.rows = rows
        self.rng = random.Random(f"citylake-generate/{seed}/{reg.department}/{reg.resource}/{index}")
        self.fmt = reg.source.format
        self.encoding = "xlsx" if self.fmt == "xlsx" else (reg.source.encoding or "utf-8")
        self.fields = list(reg.fields)
        self.kinds = [field_kind(f) for f in self.fields]
        self.kind_of = {f.name: k for f, k in zip(self.fields, self.kinds)}
        self.index_of = {f.name: k for k, f in enumerate(self.fields)}
        self.key = list(reg.key)
        self.key_set = set(self.key)
        self.window = settings.division_retired_window_years
        self.damage_marker = "锟斤拷" if self.encoding.lower().replace("-", "").startswith("gb") else "\ufffd"
        self.places = Places(self.window)
        self.codelist_pick = {
            f.name: fakes.Weighted([(c, 1.0 / (k + 1) ** 1.5) for k, c in enumerate(f.codes)])
            for f in self.fields
            if f.codes
        }
        self._bounds_cache: dict[str, tuple[Decimal, Decimal]] = {}

        # what the registration is about
        titles = " ".join(f.title for f in self.fields) + reg.name
        self.has_station = any(k in ("station_code", "station_name") for k in self.kinds)
        self.station_in_key = any(self.kind_of[k] in ("station_code", "station_name") for k in self.key)
        self.series_cycle = len(self.places.stations) if self.station_in_key else 1
        self.has_birth = "birth_date" in self.kinds
        self.enterprise = "企业" in titles or "市场主体" in titles
        self.homes = any(f.sensitivity == "personal" for f in self.fields if self.kind_of[f.name] == "address") or (
            "cn_id" in [self.kind_of[k] for k in self.key]
        )

        # time: the export date follows from the seed; earlier files cover earlier periods
        self.stamp, self.data_end = period(seed, reg.update_cycle, count - 1 - index)
        self.export_at = self.data_end
        # birth dates stay in the past whatever today is
        if self.has_birth:
            first, last = date(1935, 1, 1), date(2020, 12, 31)
        else:
            first, last = date(1950, 1, 1), date(2002, 12, 31)
        self.birth_span = (first.toordinal(), last.toordinal() - first.toordinal() + 1)

        self.headers = pick_headers(self.rng, self.fields)
        self.path, _ = file_name(reg, self.fmt, self.stamp)

    # ---- records -----------------------------------------------------------------------------
    def record(self, i: int) -> dict:
        ctx = Record(self, i)
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

    def check(self, f: FieldSpec, text: str) -> CheckResult:
        """The field's identifier check, with this registration's options."""
        if f.check == "cn_id":
            return check_cn_id(text, legacy15=f.legacy15)
        if f.check == "division_code":
            return check_division_code(text, self.window)
        return CHECKERS[f.check](text)

    # ---- canonical values ---------------------------------------------------------------------
    def value(self, f: FieldSpec, kind: str, ctx: Record):
        """A valid canonical value, or None for an empty optional field."""
        rng = self.rng
        in_key = f.name in self.key_set
        if not f.required and not in_key and not f.unique:
            p_null = 0.12 if kind == "mobile" else 0.05
            if rng.random() < p_null:
                return None
            if kind == "mobile" and ctx._person is not None and ctx._person["birth"].year > 2012:
                return None  # young children have no phone of their own
        v = self.present_value(f, kind, ctx)
        if v is None and (f.required or in_key):
            v = "PM2.5" if kind == "pollutant" else fakes.REMARKS[0]
        return v

    def present_value(self, f: FieldSpec, kind: str, ctx: Record):
        """A valid value, never left empty on purpose (only a pollutant can be None: clean air)."""
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

    def _date(self, f: FieldSpec, ctx: Record) -> date:
        rng = self.rng
        if f.name in self.key_set:
            return self.data_end.date() - timedelta(days=(self.rows - 1 - ctx.i) // self.series_cycle)
        start, end = self._date_range(f)
        span = (end - start).days
        return start + timedelta(days=int(span * rng.random() ** 0.6))

    def _timestamp(self, f: FieldSpec, ctx: Record) -> datetime:
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

    def _integer(self, f: FieldSpec, ctx: Record) -> int:
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

    def _decimal(self, f: FieldSpec, ctx: Record) -> Decimal:
        rng = self.rng
        n, t = f.name.lower(), f.title
        pollutant = POLLUTANT_FIELDS.get(n)
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

    def _money(self, f: FieldSpec, ctx: Record) -> Decimal:
        rng = self.rng
        n, t = f.name.lower(), f.title
        unit = f.unit or "元"
        if "capital" in n or "资本" in t or "出资" in t or "资金" in t:
            wan = fakes.wchoice(
                rng,
                (
                    ("3", 4),
                    ("5", 6),
                    ("10", 12),
                    ("20", 6),
                    ("30", 5),
                    ("50", 10),
                    ("100", 14),
                    ("200", 7),
                    ("300", 5),
                    ("500", 8),
                    ("1000", 8),
                    ("2000", 3),
                    ("3000", 2),
                    ("5000", 3),
                    ("10000", 2),
                    ("50000", 1),
                    ("odd", 6),
                ),
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
