"""Resource registrations: ``registrations/<dept>/<resource>.yaml``.

One registration drives everything: DAG tasks, the conform mapping,
the baseline expectation suite and the directory entry. This module is the
schema and the loader; a broken file fails with a message naming the file and
the field.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# Guideline data types (政务信息资源目录编制指南, element 8) for each field type.
GUIDELINE_TYPES = {
    "string": ("C", "字符型"),
    "text": ("M", "备注型"),
    "integer": ("I", "整型"),
    "decimal": ("N", "数值型"),
    "double": ("B", "双精度型"),
    "money": ("Y", "货币型"),
    "date": ("D", "日期型"),
    "timestamp": ("T", "日期时间型"),
    "boolean": ("L", "逻辑型"),
}
FIELD_TYPES = tuple(GUIDELINE_TYPES)
CHECKS = ("uscc", "cn_id", "org_code", "division_code", "mobile", "codelist")
CHECK_ALIASES = {"phone": "mobile"}
SENSITIVITIES = ("public", "internal", "personal", "restricted")
MASKS = ("cn_id", "mobile", "name", "address", "bank_account", "year", "full")
UPDATE_CYCLES = ("实时", "每日", "每周", "每月", "每季度", "每半年", "每年", "其他")
SHARE_TYPES = ("无条件共享", "有条件共享", "不予共享")
SHARE_METHOD_CATEGORIES = ("共享平台方式", "邮件方式", "介质方式")
SHARE_METHOD_TYPES = ("数据库", "接口", "文件")
FORMAT_CATEGORIES = ("电子文件", "电子表格", "数据库", "图形图像", "流媒体", "自描述格式", "服务接口", "其他")
MONEY_UNITS = {"元": 1, "万元": 10_000, "亿元": 100_000_000}

NAME_RE = r"^[a-z][a-z0-9_]{1,62}$"
# Table namespaces that are not departments (citylake.core.tables): the standardized zone, reference data.
RESERVED_NAMESPACES = ("standardized", "ref", "base")
# The base libraries (基础库): their registrations live in registrations/base/ (department ``base``,
# ``source: {kind: base}``), and a department resource joins one by marking fields with ``base``.
BASE_NAMESPACE = "base"
BASE_MARKER_RE = r"^[a-z][a-z0-9_]{1,62}(\.[a-z][a-z0-9_]{1,62})?$"


class RegistrationError(ValueError):
    """A registration file is broken; the message names the file and the field."""

    def __init__(self, path: Path | str, where: str, message: str):
        self.path = str(path)
        self.where = where
        super().__init__(f"{path}: {where}: {message}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldSpec(_Strict):
    name: Annotated[str, Field(pattern=NAME_RE)]
    title: str
    aliases: list[str] = []
    # Names this field had before (its table column is renamed on the next run; docs/zones.md).
    formerly: list[Annotated[str, Field(pattern=NAME_RE)]] = []
    type: Literal[FIELD_TYPES]  # type: ignore[valid-type]
    length: int | None = None  # data length in bytes, for the directory
    required: bool = False
    unique: bool = False
    check: Literal[CHECKS] | None = None  # type: ignore[valid-type]
    codes: dict[str, str] | None = None  # codelist: code -> meaning
    sensitivity: Literal[SENSITIVITIES] = "internal"  # type: ignore[valid-type]
    mask: Literal[MASKS] | None = None  # type: ignore[valid-type]
    unit: str | None = None  # money: 元 / 万元 / 亿元; numbers: free text such as μg/m³
    min: float | None = None
    max: float | None = None
    # cn_id only: what to do with legacy 15-digit numbers
    legacy15: Literal["quarantine", "convert"] = "quarantine"
    description: str | None = None
    # Base libraries: ``<library>`` marks this field as the library's key (a USCC for legal_entity,
    # a citizen ID for population); ``<library>.<field>`` gives that field of the library.
    base: Annotated[str, Field(pattern=BASE_MARKER_RE)] | None = None

    @field_validator("check", mode="before")
    @classmethod
    def _check_alias(cls, value):
        return CHECK_ALIASES.get(value, value)

    @model_validator(mode="after")
    def _consistent(self):
        if self.check == "codelist" and not self.codes:
            raise ValueError("check 'codelist' needs a 'codes' mapping")
        if self.codes and self.check != "codelist":
            raise ValueError("'codes' is only used with check 'codelist'")
        if self.type == "money" and self.unit not in MONEY_UNITS:
            raise ValueError(f"money field needs unit one of {sorted(MONEY_UNITS)}")
        if self.sensitivity == "personal" and self.effective_mask is None:
            raise ValueError("personal field needs a 'mask' (cn_id, mobile, name, address, bank_account, year, full)")
        return self

    @property
    def effective_mask(self) -> str | None:
        if self.mask:
            return self.mask
        if self.sensitivity != "personal":
            return None
        return {"cn_id": "cn_id", "mobile": "mobile"}.get(self.check or "")

    @property
    def headers(self) -> list[str]:
        """Every header spelling that maps to this field (title first)."""
        seen, out = set(), []
        for h in [self.title, self.name, *self.aliases]:
            if h not in seen:
                seen.add(h)
                out.append(h)
        return out

    @property
    def guideline_type(self) -> tuple[str, str]:
        return GUIDELINE_TYPES[self.type]


class Classification(_Strict):
    category: Annotated[str, Field(pattern=r"^[1-3]$")]  # 类
    item: Annotated[str, Field(pattern=r"^\d{2}$")]  # 项
    catalog: Annotated[str, Field(pattern=r"^\d{3}$")]  # 目
    detail: Annotated[str, Field(pattern=r"^\d{0,6}$")] = ""  # 细目 (variable length by province)
    business: str | None = None  # 关联业务事项

    @property
    def prefix(self) -> str:
        """前段码: 类 + 项 + 目 + 细目."""
        return f"{self.category}{self.item}{self.catalog}{self.detail}"


class Provider(_Strict):
    name: str
    code: str  # 统一社会信用代码 of the organ, or a local organ code


class FormatSpec(_Strict):
    category: Literal[FORMAT_CATEGORIES]  # type: ignore[valid-type]
    type: str
    description: str | None = None  # 其他类型资源格式描述


class ShareSpec(_Strict):
    type: Literal[SHARE_TYPES]  # type: ignore[valid-type]
    condition: str | None = None  # 有条件共享: condition; 不予共享: legal basis
    method_category: Literal[SHARE_METHOD_CATEGORIES] = "共享平台方式"  # type: ignore[valid-type]
    method_type: Literal[SHARE_METHOD_TYPES] = "接口"  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _condition(self):
        if self.type != "无条件共享" and not self.condition:
            what = "condition" if self.type == "有条件共享" else "legal basis"
            raise ValueError(f"share type {self.type} must state its {what} in 'condition'")
        return self


class OpenSpec(_Strict):
    is_open: bool = False
    condition: str | None = None


class FileSource(_Strict):
    kind: Literal["file"] = "file"
    format: Literal["csv", "xlsx", "xls", "json"]
    pattern: str = "*"
    # Declared; decoding still recognises a UTF-8 BOM and valid UTF-8 (per line), and uses this for the rest.
    encoding: str = "utf-8"
    sheet: str | None = None
    # CSV: None sniffs one of , \t ; | from the header line.
    delimiter: str | None = None
    # CSV/XLS/XLSX: lines above the header (title, export date…). None finds the header as the first
    # row naming a registered column.
    skip_rows: Annotated[int, Field(ge=0)] | None = None
    # JSON: dotted path to the record array of a wrapped response ("data", "result.records").
    record_path: str | None = None

    @field_validator("delimiter")
    @classmethod
    def _one_char(cls, value: str | None) -> str | None:
        if value is not None and len(value) != 1:
            raise ValueError(f"a delimiter is one character, not {value!r}")
        return value

    @field_validator("encoding")
    @classmethod
    def _known_codec(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r}") from None
        return value


class SqlSource(_Strict):
    kind: Literal["sql"]
    conn_id: str
    table: str | None = None
    query: str | None = None
    watermark: str
    # How far before the recorded watermark each extraction reads again, so that rows committed late
    # with an older stamp are still taken (rows already extracted are skipped): a duration such as
    # "90s", "30m", "2h", "1d" or "1h30m" for a date/time watermark, a number for a numeric one.
    lookback: int | float | str | None = None
    format: Literal["csv"] = "csv"
    encoding: str = "utf-8"
    pattern: str = "*.csv"
    delimiter: str = ","
    sheet: None = None
    skip_rows: None = None
    record_path: None = None

    @staticmethod
    def _duration(text: str):
        """A duration such as "1h30m" as a ``timedelta``, or None when ``text`` is not one."""
        from datetime import timedelta

        m = re.fullmatch(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text)
        if not text or m is None:
            return None
        days, hours, minutes, seconds = (int(g or 0) for g in m.groups())
        return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)

    @field_validator("lookback", mode="before")
    @classmethod
    def _lookback(cls, value):
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError(f"lookback must be a duration such as '2h' or a number, not {value!r}")
        if isinstance(value, str):
            if cls._duration(value) is None:
                raise ValueError(f"lookback {value!r} is not a duration: write e.g. 90s, 30m, 2h, 1d or 1h30m")
        elif not 0 <= value < float("inf"):
            raise ValueError(f"lookback must be a number >= 0, not {value!r}")
        return value

    def lookback_window(self):
        """``lookback`` as a ``timedelta`` (a duration), a number, or None."""
        return self._duration(self.lookback) if isinstance(self.lookback, str) else self.lookback

    @model_validator(mode="after")
    def _one_of(self):
        if bool(self.table) == bool(self.query):
            raise ValueError("a sql source names exactly one of 'table' or 'query'")
        return self


class BaseSource(_Strict):
    """A base library's source: the curated tables of every registration marking a field with it."""

    kind: Literal["base"]
    # Resources whose value of an attribute wins when they have one, first first; otherwise the
    # most recently updated source's value wins (citylake.stages.base).
    authority: list[str] = []
    # Attributes whose differing values across sources (after normalising white space and
    # full-width forms) go to the conflicts table.
    compare: list[str] = []
    format: None = None
    pattern: None = None


class QualitySpec(_Strict):
    # A batch whose quarantine rate exceeds this is not promoted to curated.
    max_quarantine_rate: float = 0.5
    min_rows: int = 1


# The digits a file name's export date may have (separators dropped), and how to read them.
_STATED_FORMATS = {8: "%Y%m%d", 10: "%Y%m%d%H", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}


class ExportTime(_Strict):
    """Where a drop states when the department exported it: a field of its rows, or its file name."""

    # A date or timestamp field (its greatest value in a batch is the batch's export time).
    field: str | None = None
    # A regex searched in the dropped file's name (its path under the landing folder) whose group
    # ``date`` holds yyyymmdd, yyyymmddHH, yyyymmddHHMM or yyyymmddHHMMSS; - _ . : / T and spaces
    # in it are ignored. Read in the lake's time zone.
    from_name: str | None = None

    @model_validator(mode="after")
    def _one_of(self):
        if (self.field is None) == (self.from_name is None):
            raise ValueError("export_time names exactly one of 'field' or 'from_name'")
        if self.from_name is not None:
            try:
                groups = re.compile(self.from_name).groupindex
            except re.error as exc:
                raise ValueError(f"from_name {self.from_name!r} is not a regular expression: {exc}") from None
            if "date" not in groups:
                raise ValueError(f"from_name {self.from_name!r} has no group named 'date', e.g. '(?P<date>\\d{{8}})'")
        return self

    def stated_in(self, name: str) -> datetime | None:
        """The export time ``name`` states (local wall time, no zone), or None when it states none."""
        if self.from_name is None:
            return None
        m = re.search(self.from_name, name)
        digits = re.sub(r"[-_.:/T\s]", "", (m.group("date") or "") if m else "")
        if not digits.isdigit() or len(digits) not in _STATED_FORMATS:
            return None
        try:
            return datetime.strptime(digits, _STATED_FORMATS[len(digits)])
        except ValueError:  # not a calendar date, e.g. 20261331
            return None


class Registration(_Strict):
    resource: Annotated[str, Field(pattern=NAME_RE)]
    name: str
    department: Annotated[str, Field(pattern=NAME_RE)]
    department_name: str
    provider: Provider
    classification: Classification
    summary: str
    format: FormatSpec
    update_cycle: Literal[UPDATE_CYCLES]  # type: ignore[valid-type]
    share: ShareSpec
    open: OpenSpec = OpenSpec()
    related_codes: list[str] = []
    publish_date: date | None = None
    source: Annotated[FileSource | SqlSource | BaseSource, Field(discriminator="kind")]
    key: list[str]
    # Which version of a key wins in curated: (when set) the row with the greatest value of this
    # field, then the latest export time, then the most recently received batch.
    version_field: str | None = None
    # What each drop holds: only new and changed records (increment), or the whole table (full: a
    # key the newest snapshot no longer holds is ended in curated).
    snapshot: Literal["increment", "full"] = "increment"
    # When the department exported the drop, if it says: decides between versions of a key after
    # version_field and before the time the batch was received (citylake.stages.curate).
    export_time: ExportTime | None = None
    quality: QualitySpec = QualitySpec()
    fields: list[FieldSpec]

    @model_validator(mode="after")
    def _fields(self):
        names = [f.name for f in self.fields]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"[fields] duplicate field name(s): {', '.join(dupes)}")
        if not self.key:
            raise ValueError("[key] missing key: list the field(s) that identify a record")
        for k in self.key:
            if k not in names:
                raise ValueError(f"[key] key field {k!r} is not among the fields")
        if self.version_field and self.version_field not in names:
            raise ValueError(f"[version_field] {self.version_field!r} is not among the fields")
        if self.version_field and self.field_map[self.version_field].sensitivity in ("personal", "restricted"):
            # curated compares it with the stored row, which holds it masked or not at all
            raise ValueError(f"[version_field] {self.version_field!r} is personal or restricted; it must be kept as is")
        if self.export_time and self.export_time.field:
            ef = self.field_map.get(self.export_time.field)
            if ef is None:
                raise ValueError(f"[export_time.field] {self.export_time.field!r} is not among the fields")
            if ef.type not in ("date", "timestamp"):
                raise ValueError(f"[export_time.field] {ef.name!r} is a {ef.type} field; it must be a date or timestamp")
            if ef.sensitivity in ("personal", "restricted"):
                # curated shares it, unmasked, as _exported_at
                raise ValueError(f"[export_time.field] {ef.name!r} is personal or restricted")
        for f in self.fields:
            revealed = self.reveals(f)
            if revealed:
                raise ValueError(
                    f"[fields ({f.name})] {f.title} shown in full gives back the masked digits of {revealed} (a "
                    f"citizen ID's 7th–14th digits are the birth date): make it 'sensitivity: personal' with "
                    f"'mask: year'")
        if self.source.kind == "base":
            self._base_library()
        elif self.department in RESERVED_NAMESPACES:
            raise ValueError(f"[department] {self.department!r} is a namespace the lake uses itself")
        marked = [f.base for f in self.fields if f.base]
        twice = sorted({m for m in marked if marked.count(m) > 1})
        if twice:
            raise ValueError(f"[fields] base marker(s) given to more than one field: {', '.join(twice)}")
        for lib, marks in self.base_marks.items():
            if "" not in marks:
                raise ValueError(f"[fields ({next(iter(marks.values()))}).base] {lib!r}: no field marks "
                                 f"the library's key (base: {lib})")
        for f in self.fields:
            taken = sorted(set(f.formerly) & set(names))
            if taken:
                raise ValueError(f"[fields ({f.name}).formerly] {', '.join(taken)} is still a field's name")
        headers: dict[str, str] = {}
        for f in self.fields:
            for h in f.headers:
                norm = normalize_header(h)
                if norm in headers and headers[norm] != f.name:
                    raise ValueError(f"[fields ({f.name}).aliases] header {h!r} maps to both {headers[norm]!r} and {f.name!r}")
                headers[norm] = f.name
        return self

    def _base_library(self) -> None:
        if self.department != BASE_NAMESPACE:
            raise ValueError(f"[department] a base library's department is {BASE_NAMESPACE!r}")
        if len(self.key) != 1:
            raise ValueError("[key] a base library has one key field")
        if self.version_field or self.export_time or self.snapshot != "increment":
            raise ValueError("[source] a base library has no version_field, export_time or snapshot")
        for f in self.fields:
            if f.base:
                raise ValueError(f"[fields ({f.name}).base] a base library's own fields are not marked")
        names = set(self.field_map) - set(self.key)
        for attr in self.source.compare:
            if attr not in names:
                raise ValueError(f"[source.compare] {attr!r} is not among the fields (other than the key)")

    # ---- derived ---------------------------------------------------------------------
    @property
    def is_base(self) -> bool:
        return self.source.kind == "base"

    @property
    def base_marks(self) -> dict[str, dict[str, str]]:
        """library -> {library field ('' for its key) -> this registration's field}."""
        out: dict[str, dict[str, str]] = {}
        for f in self.fields:
            if f.base:
                lib, _, attr = f.base.partition(".")
                out.setdefault(lib, {})[attr] = f.name
        return out

    def reveals(self, f: FieldSpec) -> str | None:
        """The masked citizen-ID field whose hidden digits ``f``, shown as it is, would give back
        (a birth date beside a masked ID), or None. Masked values must stay masked against a reader
        who holds the rest of the row, so such a field is masked too (to its year)."""
        masked = f.sensitivity == "personal" and f.effective_mask in ("year", "full")
        if masked or f.type not in ("date", "timestamp", "string"):
            return None
        if not ("birth" in f.name.lower() or "出生" in f.title):
            return None
        ids = [g.name for g in self.fields if g.effective_mask == "cn_id" and g.sensitivity == "personal"]
        return ids[0] if ids else None

    @property
    def field_map(self) -> dict[str, FieldSpec]:
        return {f.name: f for f in self.fields}

    def header_map(self) -> dict[str, str]:
        """normalized header spelling -> canonical field name."""
        return {normalize_header(h): f.name for f in self.fields for h in f.headers}

    @property
    def key_fields(self) -> list[FieldSpec]:
        fm = self.field_map
        return [fm[k] for k in self.key]

    @property
    def asset_uri(self) -> str:
        return f"citylake://curated/{self.resource}"


_HEADER_SPACE = re.compile(r"[\s\u3000]+")


def normalize_header(text: str) -> str:
    """Header spellings differ in spaces, full-width brackets and case."""
    text = text.strip().lstrip("\ufeff")
    text = text.translate(str.maketrans("（）：", "():"))
    return _HEADER_SPACE.sub("", text).lower()


# ---- loading ---------------------------------------------------------------------------
def _where(loc: tuple, raw: dict) -> str:
    """Turn a pydantic error location into 'fields[3] (uscc).check'."""
    parts: list[str] = []
    node = raw
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            if isinstance(node, list) and item < len(node) and isinstance(node[item], dict):
                name = node[item].get("name")
                if name:
                    label += f" ({name})"
            parts.append(label)
            node = node[item] if isinstance(node, list) and item < len(node) else None
        else:
            if item in ("file", "sql") and parts:  # discriminated-union tag
                continue
            parts.append(("." if parts else "") + str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts) or "(top level)"


def load_registration(path: Path | str) -> Registration:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RegistrationError(path, "(yaml)", f"not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise RegistrationError(path, "(top level)", "a registration is a YAML mapping")
    try:
        reg = Registration.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        more = f" (and {len(exc.errors()) - 1} more problem(s))" if len(exc.errors()) > 1 else ""
        where, msg = _where(err["loc"], raw), err["msg"]
        # Whole-model checks name their own location as "[where] message".
        tagged = re.match(r"^(?:Value error, )?\[(.+?)\] (.*)$", msg, re.S)
        if tagged:
            where = tagged.group(1) if where == "(top level)" else f"{where}.{tagged.group(1)}"
            msg = tagged.group(2)
        raise RegistrationError(path, where, msg + more) from None
    if path.parent.name != reg.department:
        raise RegistrationError(
            path, "department", f"{reg.department!r} does not match its folder {path.parent.name!r}"
        )
    if path.stem != reg.resource:
        raise RegistrationError(path, "resource", f"{reg.resource!r} does not match its file name {path.stem!r}")
    return reg


def load_registrations(resources_dir: Path | str) -> list[Registration]:
    """The departments' resources (``<dept>/<resource>.yaml``); base libraries are not among them
    (:func:`load_base_libraries`): they have no landing, batches or chain of steps."""
    resources_dir = Path(resources_dir)
    regs = [load_registration(p) for p in sorted(resources_dir.glob("*/*.yaml"))
            if p.parent.name != BASE_NAMESPACE]
    seen: dict[str, Registration] = {}
    for reg in regs:
        if reg.resource in seen:
            raise RegistrationError(
                resources_dir / reg.department / f"{reg.resource}.yaml",
                "resource",
                f"{reg.resource!r} is also registered by department {seen[reg.resource].department!r}",
            )
        seen[reg.resource] = reg
    return regs


def registrations_by_department(resources_dir: Path | str) -> dict[str, list[Registration]]:
    out: dict[str, list[Registration]] = {}
    for reg in load_registrations(resources_dir):
        out.setdefault(reg.department, []).append(reg)
    return out


def find_registration(resources_dir: Path | str, resource: str) -> Registration:
    """The registration of ``resource``; a LookupError lists the registered names."""
    regs = {r.resource: r for r in load_registrations(resources_dir)}
    if resource not in regs:
        raise LookupError(f"unknown resource {resource!r}; registered: {', '.join(sorted(regs))}")
    return regs[resource]


# ---- base libraries ----------------------------------------------------------------------------
@dataclass(frozen=True)
class BaseSourceSpec:
    """One resource feeding a base library: its registration and which of its fields give the
    library's key and attributes (library field -> its field)."""

    reg: Registration
    key: str
    attributes: dict[str, str]


@dataclass(frozen=True)
class BaseLibrary:
    """A base library (基础库): its registration (``registrations/base/<library>.yaml``) and the
    resources whose registrations mark fields with it, in resource order."""

    reg: Registration
    sources: tuple[BaseSourceSpec, ...]

    @property
    def name(self) -> str:
        return self.reg.resource

    @property
    def key(self) -> str:
        return self.reg.key[0]

    @property
    def attributes(self) -> list[str]:
        return [f.name for f in self.reg.fields if f.name != self.key]


def load_base_libraries(resources_dir: Path | str, regs: list[Registration] | None = None) -> list[BaseLibrary]:
    """Every base library under ``<resources_dir>/base/``, with the resources feeding it. A marker
    naming no library, or a field the library does not have, fails naming the file and the field."""
    resources_dir = Path(resources_dir)
    complete = regs is None  # a caller's subset of the resources may leave an authority out
    regs = load_registrations(resources_dir) if regs is None else regs
    libs = {}
    for path in sorted((resources_dir / BASE_NAMESPACE).glob("*.yaml")):
        reg = load_registration(path)
        if not reg.is_base:
            raise RegistrationError(path, "source.kind", "a registration under base/ is a base library (kind: base)")
        libs[reg.resource] = reg
    taken = {r.resource for r in regs}
    sources: dict[str, list[BaseSourceSpec]] = {name: [] for name in libs}
    for reg in sorted(regs, key=lambda r: r.resource):
        path = resources_dir / reg.department / f"{reg.resource}.yaml"
        for lib, marks in reg.base_marks.items():
            field_name = marks[""]
            if lib not in libs:
                raise RegistrationError(path, f"fields ({field_name}).base",
                                        f"no base library {lib!r} (known: {', '.join(sorted(libs)) or 'none'})")
            library = libs[lib]
            key_spec, own = library.field_map[library.key[0]], reg.field_map[field_name]
            if own.check != key_spec.check:
                raise RegistrationError(path, f"fields ({field_name}).base",
                                        f"{lib}'s key is checked as {key_spec.check}, this field as {own.check}")
            for attr, name in marks.items():
                if attr and (attr not in library.field_map or attr == library.key[0]):
                    raise RegistrationError(path, f"fields ({name}).base",
                                            f"{lib} has no attribute {attr!r} (one of "
                                            f"{', '.join(f.name for f in library.fields if f.name != library.key[0])})")
            sources[lib].append(BaseSourceSpec(reg, field_name, {a: n for a, n in marks.items() if a}))
    for name, lib in libs.items():
        if name in taken:
            raise RegistrationError(resources_dir / BASE_NAMESPACE / f"{name}.yaml", "resource",
                                    f"{name!r} is also a department's resource")
        for resource in lib.source.authority if complete else ():
            if resource not in {s.reg.resource for s in sources[name]}:
                raise RegistrationError(resources_dir / BASE_NAMESPACE / f"{name}.yaml", "source.authority",
                                        f"{resource!r} does not feed {name} (no field marked base: {name})")
    # 关联资源代码: a library's entry points at its sources (the publisher turns names into codes)
    return [BaseLibrary(libs[n].model_copy(update={"related_codes": [
        *(s.reg.resource for s in sources[n]), *(c for c in libs[n].related_codes
                                               if c not in {s.reg.resource for s in sources[n]})]}),
        tuple(sources[n])) for n in sorted(libs)]


def directory_registrations(resources_dir: Path | str) -> list[Registration]:
    """What the directory lists: every department resource, then every base library."""
    regs = load_registrations(resources_dir)
    return regs + [lib.reg for lib in load_base_libraries(resources_dir, regs)]
