"""Valid canonical values for one export file, field by field, driven by the registration.

:class:`FileGen` holds everything one file needs (its random stream, fields, places, period,
headers and path) and makes the records of the file: Python values (``str``, ``date``,
``Decimal``…) that are all valid. How they are written, with valid noise, is
:mod:`~citylake_dev.generate.noise`; how rows are spoiled, :mod:`~citylake_dev.generate.defects`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from citylake.core.identifiers import (
    CHECKERS,
    CheckResult,
    check_cn_id,
    check_division_code,
    normalize_text,
)
from citylake.core.registry import FieldSpec, Registration
from citylake.core.settings import Settings
from citylake_dev import fakes
from citylake_dev.generate import overlaps
from citylake_dev.generate.cells import GenerationError
from citylake_dev.generate.entities import (
    POLLUTANT_FIELDS,
    USCC_SERIALS,
    Permutation,
    Places,
    Record,
    make_uscc,
    org_check_char,
)
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


@dataclass
class Layout:
    """How one file is laid out beyond its cells; the plain file has the defaults."""

    shape: str | None = None
    delimiter: str = ","
    eol: str = "\n"
    title_rows: list[list[str]] = field(default_factory=list)  # rows above the header, as cells
    title_padded: bool = False  # CSV title rows padded with delimiters to the table's width
    multiline_fields: list[int] = field(default_factory=list)  # cells that may hold line breaks
    multiline_share: float = 0.0
    short_fields: int = 0  # trailing optional fields a row may leave out
    short_share: float = 0.0
    extra_column: tuple[int, int] | None = None  # (position written, field whose header it repeats)
    json_style: str = "lines"  # lines | array | data | result
    json_pretty: bool = False
    stale_dimension: bool = False
    gbk_rows: list[tuple[int, int]] = field(default_factory=list)  # row index ranges tried in GBK
    malformed_ok: bool = True  # a malformed-line defect fits the format
    sheet: str = "Sheet1"


# registered capital in 万元 (weights: how often registries show such round amounts)
_CAPITAL_WAN = (
    ("3", 4), ("5", 6), ("10", 12), ("20", 6), ("30", 5), ("50", 10), ("100", 14), ("200", 7), ("300", 5),
    ("500", 8), ("1000", 8), ("2000", 3), ("3000", 2), ("5000", 3), ("10000", 2), ("50000", 1), ("odd", 6),
)  # fmt: skip


def _young(ctx: Record) -> bool:
    """Young children have no phone of their own."""
    return ctx._person is not None and ctx._person["birth"].year > 2012


class FileGen:
    """One export file: file ``index`` of ``count`` for a registration, with ``rows`` data rows.

    ``rng`` is the file's random stream for file-level choices (headers, layout); :meth:`begin_chunk`
    replaces it with the stream of one chunk of rows, so chunks can be made apart (in parallel)
    and the bytes still depend only on (seed, registration, index, rows).
    """

    def __init__(
        self,
        settings: Settings,
        reg: Registration,
        seed: int,
        index: int,
        count: int,
        rows: int,
        ext: str | None = None,
    ):
        self.reg = reg
        self.rows = rows
        self.index = index
        self.seed = seed
        self.resources_dir = settings.resources_dir
        self.seed_text = f"citylake-generate/{seed}/{reg.department}/{reg.resource}/{index}"
        self.rng = random.Random(self.seed_text)
        # the file format, and the cell model its values are written in (an .xls holds cells like an .xlsx)
        self.file_format = reg.source.format
        self.fmt = "xlsx" if self.file_format in ("xlsx", "xls") else self.file_format
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
        self._field_cache: dict = {}  # per field: what its name and title say it holds (and round amounts)

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
        self.ext = ext
        self.path, _ = file_name(reg, self.file_format, self.stamp, ext)
        self.old_division_share = 0.0  # the old_division_ids shape sets it
        self.bad_fraction: tuple[float, float] | None = None  # share of bad rows; the bad_export shape sets it
        self._plan_serials()
        self._plan_fields()
        self.seen: set | None = set() if self.key_fallback else None  # keys written, when not unique by construction
        # how the file is laid out (the plain file; a shape changes it) and what its registration must say
        self.layout = Layout(sheet=reg.source.sheet or "Sheet1", malformed_ok=self.fmt != "xlsx")
        if self.damage_marker == "锟斤拷":
            self.layout.eol = "\r\n"  # GB exports come from Windows tools
        self.overrides: dict = {}
        self.chunk_rows = rows  # rows per chunk (build sets it): each chunk has its own random stream

    def begin_chunk(self, chunk: int) -> None:
        """Make the rows of chunk ``chunk`` from here on: its own random stream."""
        self.rng = random.Random(f"{self.seed_text}/rows/{chunk}")

    def set_field_order(self, order: list[int]) -> None:
        """Write the fields (and their headers) in this order."""
        self.fields = [self.fields[k] for k in order]
        self.kinds = [self.kinds[k] for k in order]
        self.headers = [self.headers[k] for k in order]
        self.index_of = {f.name: k for k, f in enumerate(self.fields)}
        self._plan_fields()

    def _plan_fields(self) -> None:
        """Per field, once: (name, spec, kind, chance of an empty optional value, filled when made empty,
        maker). The record loop is the hot path of a big file."""
        makers = {
            "uscc": lambda f, ctx: ctx.org()["uscc"],
            "cn_id": lambda f, ctx: ctx.person()["cn_id"],
            "mobile": self._mobile,
            "division": lambda f, ctx: ctx.district()[0],
            "org_code": self._org_code,
            "gender": self._gender,
            "codelist": lambda f, ctx: self.codelist_pick[f.name].pick(self.rng),
            "birth_date": lambda f, ctx: ctx.person()["birth"],
            "date": self._date,
            "timestamp": self._timestamp,
            "integer": self._integer,
            "decimal": self._decimal,
            "money": self._money,
            "boolean": lambda f, ctx: self.rng.random() < 0.7,
            "person_name": lambda f, ctx: ctx.person()["name"],
            "org_name": lambda f, ctx: ctx.org()["name"],
            "address": self._address,
            "station_code": lambda f, ctx: ctx.station()[0],
            "station_name": lambda f, ctx: ctx.station()[1],
            "pollutant": lambda f, ctx: ctx.air()["primary"],
            "cert_no": self._cert_no,
        }
        plan = []
        for f, kind in zip(self.fields, self.kinds):
            in_key = f.name in self.key_set
            nullable = not f.required and not in_key and not f.unique
            p_null = (0.12 if kind == "mobile" else 0.05) if nullable else 0.0
            maker = self._serial_value if f.name in self.serials else makers.get(kind, self._text)
            plan.append((f.name, f, kind, p_null, f.required or in_key, maker))
        self._makers = makers
        self._plan = plan

    # ---- unique keys -----------------------------------------------------------------------------
    def _plan_serials(self) -> None:
        """Make the key (and every unique field) unique by construction: one field carries a bijection
        of the row index. ``key_fallback`` is left True only when no field can, and then build keeps
        the keys already written (memory grows with the rows)."""
        self.org_serial: Permutation | None = None
        self.person_serial: Permutation | None = None
        self.serials: dict[str, tuple[Permutation, int]] = {}  # field -> (bijection, digits)
        self.key_fallback = False
        # a date or time in the key is already one per row (per station): see _date / _timestamp
        key_by_row = any(self.kind_of[k] in ("date", "timestamp") for k in self.key)
        need = [] if key_by_row else [next((k for k in self.key if self._serial_able(k)), None)]
        need += [f.name for f in self.fields if f.unique and f.name not in need]
        for name in need:
            if name is None or not self._serial_able(name):
                self.key_fallback = True
                continue
            self._add_serial(name)

    def _serial_able(self, name: str) -> bool:
        kind = self.kind_of[name]
        if kind in ("uscc", "cn_id", "org_code", "mobile", "cert_no"):
            return True
        if kind == "text":
            return self._text_is_code(self.fields[self.index_of[name]])
        if kind == "integer":
            lo, hi = self._bounds(self.fields[self.index_of[name]], -1e18, 1e18)
            return math.floor(hi) - math.ceil(lo) + 1 >= self.rows
        return False

    def _add_serial(self, name: str) -> None:
        f, kind = self.fields[self.index_of[name]], self.kind_of[name]
        key = f"{self.seed_text}/serial/{name}"
        digits = 0
        if kind == "uscc":
            perm = self.org_serial = Permutation(USCC_SERIALS, key)
        elif kind == "cn_id":
            perm = self.person_serial = Permutation(self.birth_span[1] * 1000, key)  # (birth date, sequence)
        elif kind in ("org_code", "mobile"):
            perm, digits = Permutation(10**8, key), 8
        elif kind == "integer":
            lo, hi = self._bounds(f, -1e18, 1e18)
            perm = Permutation(math.floor(hi) - math.ceil(lo) + 1, key)
        else:  # certificate and code numbers: wide enough for every row
            digits = max(7 if kind == "cert_no" else 6, len(str(self.rows - 1)))
            perm = Permutation(10**digits, key)
        if kind not in ("uscc", "cn_id"):
            self.serials[name] = (perm, digits)
        if self.rows > perm.n:
            raise GenerationError(f"{self.reg.resource}: {self.rows} rows but only {perm.n} unique {name} values")

    @staticmethod
    def _text_is_code(f: FieldSpec) -> bool:
        return "编号" in f.title or "代码" in f.title or "号" in f.title

    # ---- records -----------------------------------------------------------------------------
    def record(self, i: int) -> dict:
        ctx = Record(self, i)
        rand = self.rng.random
        rec = {}
        for name, f, kind, p_null, filled, maker in self._plan:
            if p_null and (rand() < p_null or (kind == "mobile" and _young(ctx))):
                rec[name] = None
                continue
            v = maker(f, ctx)
            if v is None and filled:
                v = "PM2.5" if kind == "pollutant" else fakes.REMARKS[0]
            rec[name] = v
        return rec

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
        """A valid canonical value, or None for an empty optional field (as :meth:`record` makes it)."""
        in_key = f.name in self.key_set
        if not f.required and not in_key and not f.unique:
            if self.rng.random() < (0.12 if kind == "mobile" else 0.05) or (kind == "mobile" and _young(ctx)):
                return None
        v = self.present_value(f, kind, ctx)
        if v is None and (f.required or in_key):
            v = "PM2.5" if kind == "pollutant" else fakes.REMARKS[0]
        return v

    def present_value(self, f: FieldSpec, kind: str, ctx: Record):
        """A valid value, never left empty on purpose (only a pollutant can be None: clean air)."""
        if f.name in self.serials:
            return self._serial_value(f, ctx)
        return self._makers.get(kind, self._text)(f, ctx)

    def _mobile(self, f: FieldSpec, ctx: Record) -> str:
        rng = self.rng
        return rng.choice(fakes.MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"

    def _org_code(self, f: FieldSpec, ctx: Record) -> str:
        body = f"{self.rng.randrange(10**8):08d}"
        return body + org_check_char(body)

    def _gender(self, f: FieldSpec, ctx: Record) -> str:
        want = {"M": "男", "F": "女"}.get(ctx.person()["gender"])
        codes = f.codes or {}
        for code, meaning in codes.items():
            if meaning == want:
                return code
        others = [c for c, m in codes.items() if m not in ("男", "女")]
        return others[0] if others else next(iter(codes))

    def _address(self, f: FieldSpec, ctx: Record) -> str:
        shared = overlaps.shared_unit(self, ctx.i, make_uscc)
        if shared is not None:
            return shared["address"]
        code, name = ctx.district()
        return fakes.street_address(self.rng, code, name, "home" if self.homes else "office")

    def _cert_no(self, f: FieldSpec, ctx: Record) -> str:
        rng = self.rng
        city = self._cert_city(ctx)
        year = rng.randint(2016, max(2016, self.data_end.year))
        return f"豫（{year}）{city}不动产权第{rng.randrange(10**7):07d}号"

    def _text(self, f: FieldSpec, ctx: Record) -> str:
        rng = self.rng
        limit = f.length or 400
        if self._text_is_code(f):
            return f"ZZ{rng.randrange(10**6):06d}"[: max(limit, 4)]
        for remark in rng.sample(fakes.REMARKS, len(fakes.REMARKS)):
            if len(remark.encode("utf-8")) <= limit:
                return remark
        return "A"

    def _serial_value(self, f: FieldSpec, ctx: Record):
        kind = self.kind_of[f.name]
        perm, digits = self.serials[f.name]
        n = perm(ctx.i)
        if kind == "org_code":
            body = f"{n:08d}"
            return body + org_check_char(body)
        if kind == "mobile":
            return self.rng.choice(fakes.MOBILE_PREFIXES) + f"{n:08d}"
        if kind == "integer":
            return math.ceil(self._bounds(f, -1e18, 1e18)[0]) + n
        if kind == "cert_no":
            city = self._cert_city(ctx)
            year = self.rng.randint(2016, max(2016, self.data_end.year))
            return f"豫（{year}）{city}不动产权第{n:0{digits}d}号"
        return f"ZZ{n:0{digits}d}"

    def _cert_city(self, ctx: Record) -> str:
        name = ctx.district()[1]
        if name.endswith("县") or (name.endswith("市") and not name.startswith("郑州")):
            return name
        return "郑州市"

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
        if f.name in self.key_set:
            return self.data_end.date() - timedelta(days=(self.rows - 1 - ctx.i) // self.series_cycle)
        hit = self._field_cache.get(f.name)
        if hit is None:
            start, end = self._date_range(f)
            hit = self._field_cache[f.name] = (start.toordinal(), (end - start).days)
        start, span = hit
        return date.fromordinal(start + int(span * self.rng.random() ** 0.6))

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
        what = self._field_cache.get(f.name)
        if what is None:
            n, t = f.name.lower(), f.title
            what = self._field_cache[f.name] = (
                "aqi" if n == "aqi" or "AQI" in t or "空气质量指数" in t
                else "count" if "count" in n or "人数" in t or "数量" in t or "num" in n
                else "other"
            )  # fmt: skip
        if what == "aqi":
            v = ctx.air()["aqi"]
        elif what == "count":
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
        what = self._field_cache.get(f.name)
        if what is None:
            n, t = f.name.lower(), f.title
            what = self._field_cache[f.name] = (
                ("pollutant", POLLUTANT_FIELDS[n]) if n in POLLUTANT_FIELDS
                else ("area", None) if "area" in n or "面积" in t
                else ("other", None)
            )  # fmt: skip
        pollutant = what[1]
        if pollutant:
            v = Decimal(str(ctx.air()["values"][pollutant]))
            if pollutant != "CO" and rng.random() < 0.15:
                v += Decimal(rng.randrange(1, 10)) / 10
        elif what[0] == "area":
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
        capital = self._field_cache.get(f.name)
        if capital is None:
            n, t = f.name.lower(), f.title
            capital = self._field_cache[f.name] = "capital" in n or "资本" in t or "出资" in t or "资金" in t
        if capital:
            wan = fakes.wchoice(rng, _CAPITAL_WAN)
            if wan != "odd":  # a round amount: the same few values again and again
                v = self._field_cache.get((f.name, wan))
                if v is None:
                    v = self._field_cache[(f.name, wan)] = self._in_unit(f, Decimal(wan) * 10000, bounded=False)
                lo, hi = self._dec_bounds(f)
                return v if lo <= v <= hi else self._in_bounds(f)
            yuan = Decimal(str(round(rng.uniform(1, 3000), 2))) * 10000
        elif ctx.count is not None:
            yuan = Decimal(str(round(ctx.count * rng.uniform(420, 2400), 2)))
        else:
            yuan = Decimal(str(round(rng.lognormvariate(math.log(50000), 1.2), 2)))
        return self._in_unit(f, yuan)

    def _in_unit(self, f: FieldSpec, yuan: Decimal, bounded: bool = True) -> Decimal:
        """An amount in yuan in the field's unit; ``bounded``: within the field's min and max."""
        factor = {"元": 1, "万元": 10_000, "亿元": 100_000_000}[f.unit or "元"]
        v = (yuan / factor).quantize(_MICRO)
        lo, hi = self._dec_bounds(f)
        return self._in_bounds(f) if bounded and not lo <= v <= hi else v

    def _in_bounds(self, f: FieldSpec) -> Decimal:
        lo, hi = self._dec_bounds(f)
        return Decimal(str(round(self.rng.uniform(float(lo), float(hi)), 2)))

    def _dec_bounds(self, f: FieldSpec) -> tuple[Decimal, Decimal]:
        hit = self._bounds_cache.get(f.name)
        if hit is None:
            lo = Decimal(str(f.min)) if f.min is not None else Decimal("-1e15")
            hi = Decimal(str(f.max)) if f.max is not None else Decimal("1e15")
            hit = self._bounds_cache[f.name] = (lo, hi)
        return hit
