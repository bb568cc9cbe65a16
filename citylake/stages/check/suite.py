"""Registration → Great Expectations suite (the baseline), plus hand-written extras.

The baseline is derived only from ``registrations/<dept>/<resource>.yaml``
(:class:`citylake.core.registry.Registration`); nothing here restates a resource's fields.
Hand-written, usually non-blocking extras live in ``citylake/stages/check/extras/<resource>.json``
(format: ``citylake/stages/check/extras/README.md``) and are merged by :func:`load_extras`.

Every expectation carries ``meta``::

    {"blocking": bool, "source": "registration" | "extras", "kind": str,
     "description_zh": str, "description_en": str}

and ``severity`` ``critical`` (blocking) or ``warning`` (not blocking). A failed blocking
expectation stops promotion of the batch to curated (:mod:`citylake.stages.check.runner`).

What the baseline contains, per registration:

================================  ==========================================  ========
registration                      expectation                                 blocking
================================  ==========================================  ========
fields (+ money ``_currency``,    columns match this set (order-insensitive)  yes
lineage columns)
``quality.min_rows``              table row count ≥ min_rows                  yes
lineage                           ``_batch_id``/``_source_row``/              yes
                                  ``_received_at`` not null, ``_source_row``
                                  unique, ``_batch_id`` = this batch
``required`` / key fields         not null                                    yes
``key``                           unique (one field) / compound unique        yes
``unique``                        unique                                      yes
``check`` uscc/cn_id/org_code/    regex from :mod:`citylake.core.identifiers`       yes
mobile/division_code
``check: division_code``          in the accepted GB/T 2260 codes             yes
``check: codelist``               in the code list                            yes
``type: money``                   ``<field>_currency`` in CNY/USD/HKD/EUR/JPY  yes
``min`` / ``max``                 between                                     yes
``type`` integer/decimal/money/   column type (Spark type kind, see            yes
date/timestamp                    ``TYPE_EXPECTATIONS``)
``type`` date/timestamp           not later than tomorrow (plausibility)      no
================================  ==========================================  ========

Ranges and types are blocking because conform already quarantines such rows: a
violation in the standardized zone means conform is broken, and promotion must stop.

Importing this module is cheap (no Great Expectations import); GE is imported
inside the functions that need it.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from citylake.core import identifiers as ids
from citylake.core.expressions import CURRENCY_CODES
from citylake.core.registry import Registration

if TYPE_CHECKING:  # pragma: no cover
    from great_expectations.core import ExpectationSuite
    from great_expectations.expectations import Expectation

EXTRAS_DIR = Path(__file__).resolve().parent / "extras"
LINEAGE_COLUMNS = ("_batch_id", "_source_row", "_received_at")
# Every currency conform reads from a money text (conform-rules §4).
CURRENCIES = CURRENCY_CODES
BATCH_ID_PARAMETER = "batch_ids"  # suite parameter: the runner passes [batch_id]
# Values in a date/timestamp column later than now + this are implausible (not blocking).
FUTURE_SLACK = timedelta(days=1)

# check -> (regex from citylake.core.identifiers, 中文, English)
CHECK_PATTERNS: dict[str, tuple[str, str, str]] = {
    "uscc": (ids.USCC_PATTERN, "统一社会信用代码格式校验", "USCC format (GB 32100)"),
    "cn_id": (ids.CN_ID_PATTERN, "公民身份号码格式校验", "citizen ID format (GB 11643)"),
    "org_code": (ids.ORG_PATTERN, "组织机构代码格式校验", "organization code format (GB 11714)"),
    "mobile": (ids.MOBILE_PATTERN, "手机号码格式校验", "mobile number format"),
    "division_code": (ids.DIVISION_PATTERN, "行政区划代码格式校验", "division code format (GB/T 2260)"),
}

# Column types of the frame the runner validates (Spark types; dates and timestamps become
# local timestamps there), as ``pyspark.sql.types`` class names: the Spark engine of
# ExpectColumnValuesToBeOfType accepts a column whose type is that class or a subclass, so an
# abstract class names every width of a kind (IntegralType: int, bigint, …; FractionalType:
# decimal(p,s), double, float; DatetimeType: date, timestamp, timestamp_ntz).
TYPE_EXPECTATIONS: dict[str, tuple[str, str, str]] = {
    "integer": ("IntegralType", "字段类型为整数", "column type is integer"),
    "decimal": ("FractionalType", "字段类型为数值", "column type is decimal"),
    "double": ("FractionalType", "字段类型为数值", "column type is decimal"),
    "money": ("FractionalType", "字段类型为金额数值", "column type is an amount"),
    "date": ("DatetimeType", "字段类型为日期", "column type is date"),
    "timestamp": ("DatetimeType", "字段类型为日期时间", "column type is timestamp"),
}

# Descriptions by kind (used in receipts): kind -> (中文, English).
KINDS: dict[str, tuple[str, str]] = {
    "columns": ("字段集合与登记一致", "columns match the registration"),
    "row_count": ("批次行数不少于{n}行", "batch has at least {n} row(s)"),
    "lineage_not_null": ("血缘字段非空", "lineage column is filled"),
    "lineage_batch": ("批次号与本批次一致", "every row belongs to this batch"),
    "lineage_unique": ("来源行号唯一", "source row numbers are unique"),
    "required": ("必填项非空", "required value present"),
    "key_not_null": ("主键非空", "key value present"),
    "key_unique": ("主键唯一", "key is unique"),
    "unique": ("字段值唯一", "values are unique"),
    "check_division_set": ("行政区划代码在GB/T 2260代码表中", "division code in the GB/T 2260 list"),
    "codelist": ("代码值在代码表中", "value in the code list"),
    "currency": ("币种代码有效", "currency code is valid"),
    "range": ("数值在允许范围内", "value within the allowed range"),
    "not_future": ("日期不晚于当前日期（合理性）", "date not in the future (plausibility)"),
    "quarantine_rate": ("隔离率不超过{pct}", "quarantine rate at most {pct}"),
}
for _check, (_re, _zh, _en) in CHECK_PATTERNS.items():
    KINDS[f"check_{_check}"] = (_zh, _en)
for _type, (_t, _zh, _en) in TYPE_EXPECTATIONS.items():
    KINDS[f"type_{_type}"] = (_zh, _en)

# Fallback descriptions for extras that give none, by GE expectation type.
GE_TYPE_ZH: dict[str, str] = {
    "expect_column_pair_values_a_to_be_greater_than_b": "字段间大小关系合理",
    "expect_column_values_to_be_between": "数值在合理范围内",
    "expect_column_mean_to_be_between": "均值在合理范围内",
    "expect_column_median_to_be_between": "中位数在合理范围内",
    "expect_column_quantile_values_to_be_between": "分位数分布合理",
    "expect_column_max_to_be_between": "最大值在合理范围内",
    "expect_column_min_to_be_between": "最小值在合理范围内",
    "expect_column_values_to_be_in_set": "取值在允许集合内",
    "expect_column_values_to_match_regex": "取值格式校验",
    "expect_column_values_to_not_be_null": "字段非空",
    "expect_column_proportion_of_non_null_values_to_be_between": "非空比例合理",
}


class ExtrasError(ValueError):
    """A hand-written extras file is broken; the message names the file and the entry."""

    def __init__(self, path: Path | str, where: str, message: str):
        self.path = str(path)
        self.where = where
        super().__init__(f"{path}: {where}: {message}")


# ---- helpers ---------------------------------------------------------------------------
def _gx():
    """Import Great Expectations lazily (≈3–5 s), with its usage analytics off unless asked for."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    import great_expectations.expectations as gxe

    return gx, gxe


def expected_columns(reg: Registration) -> list[str]:
    """Canonical column names of a standardized batch: fields, money currencies, lineage, and the
    export time when the registration names one (not a lineage column: it may be null)."""
    cols: list[str] = []
    for f in reg.fields:
        cols.append(f.name)
        if f.type == "money":
            cols.append(f"{f.name}_currency")
    return cols + list(LINEAGE_COLUMNS) + (["_exported_at"] if reg.export_time else [])


def _label(reg: Registration, column: str | None) -> tuple[str, str]:
    """(中文 label, English label) of a column: '统一社会信用代码（uscc）', 'uscc'."""
    if column is None:
        return "", ""
    fm = reg.field_map
    if column in fm:
        return f"{fm[column].title}（{column}）", column
    if column.endswith("_currency") and column[: -len("_currency")] in fm:
        return f"{fm[column[: -len('_currency')]].title}币种（{column}）", column
    return column, column


def _meta(kind: str, blocking: bool, zh: str, en: str, source: str = "registration") -> dict:
    return {"blocking": blocking, "source": source, "kind": kind, "description_zh": zh, "description_en": en}


def _describe(reg: Registration, kind: str, columns: list[str] | None, **fmt) -> tuple[str, str]:
    zh, en = KINDS[kind]
    zh, en = zh.format(**fmt), en.format(**fmt)
    if columns:
        labels = [_label(reg, c) for c in columns]
        zh = f"{zh}：" + "、".join(lz for lz, _ in labels)
        en = f"{en}: " + ", ".join(le for _, le in labels)
    return zh, en


def _fmt_num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


# ---- the baseline suite ------------------------------------------------------------------
def build_suite(
    reg: Registration,
    *,
    division_retired_window_years: int = 5,
    now: datetime | None = None,
) -> ExpectationSuite:
    """The baseline suite of a registration (no extras; see :func:`suite_for`)."""
    gx, gxe = _gx()
    out: list = []

    def add(cls, kind: str, blocking: bool, columns: list[str] | None, fmt: dict | None = None, **kwargs):
        zh, en = _describe(reg, kind, columns, **(fmt or {}))
        out.append(
            cls(**kwargs, meta=_meta(kind, blocking, zh, en), severity="critical" if blocking else "warning")
        )

    cols = expected_columns(reg)
    add(gxe.ExpectTableColumnsToMatchSet, "columns", True, None, column_set=cols, exact_match=True)
    add(
        gxe.ExpectTableRowCountToBeBetween, "row_count", True, None,
        fmt={"n": reg.quality.min_rows}, min_value=reg.quality.min_rows,
    )
    # lineage
    for col in LINEAGE_COLUMNS:
        add(gxe.ExpectColumnValuesToNotBeNull, "lineage_not_null", True, [col], column=col)
    add(gxe.ExpectColumnValuesToBeUnique, "lineage_unique", True, ["_source_row"], column="_source_row")
    add(
        gxe.ExpectColumnValuesToBeInSet, "lineage_batch", True, ["_batch_id"],
        column="_batch_id", value_set={"$PARAMETER": BATCH_ID_PARAMETER},
    )
    # presence
    for f in reg.fields:
        if f.required:
            add(gxe.ExpectColumnValuesToNotBeNull, "required", True, [f.name], column=f.name)
        elif f.name in reg.key:
            add(gxe.ExpectColumnValuesToNotBeNull, "key_not_null", True, [f.name], column=f.name)
    # key and uniqueness
    if len(reg.key) == 1:
        add(gxe.ExpectColumnValuesToBeUnique, "key_unique", True, list(reg.key), column=reg.key[0])
    else:
        add(gxe.ExpectCompoundColumnsToBeUnique, "key_unique", True, list(reg.key), column_list=list(reg.key))
    for f in reg.fields:
        if f.unique and reg.key != [f.name]:
            add(gxe.ExpectColumnValuesToBeUnique, "unique", True, [f.name], column=f.name)
    # checks
    for f in reg.fields:
        if f.check in CHECK_PATTERNS:
            add(gxe.ExpectColumnValuesToMatchRegex, f"check_{f.check}", True, [f.name],
                column=f.name, regex=CHECK_PATTERNS[f.check][0])
        if f.check == "division_code":
            codes = sorted(ids.accepted_division_codes(division_retired_window_years))
            add(gxe.ExpectColumnValuesToBeInSet, "check_division_set", True, [f.name],
                column=f.name, value_set=codes)
        if f.check == "codelist":
            add(gxe.ExpectColumnValuesToBeInSet, "codelist", True, [f.name],
                column=f.name, value_set=sorted(f.codes))
        if f.type == "money":
            cur = f"{f.name}_currency"
            add(gxe.ExpectColumnValuesToBeInSet, "currency", True, [cur],
                column=cur, value_set=list(CURRENCIES))
    # ranges
    for f in reg.fields:
        if f.min is not None or f.max is not None:
            lo = "" if f.min is None else _fmt_num(f.min)
            hi = "" if f.max is None else _fmt_num(f.max)
            zh, en = _describe(reg, "range", [f.name])
            zh, en = f"{zh} [{lo}, {hi}]", f"{en} [{lo}, {hi}]"
            out.append(
                gxe.ExpectColumnValuesToBeBetween(
                    column=f.name, min_value=f.min, max_value=f.max,
                    meta=_meta("range", True, zh, en), severity="critical",
                )
            )
    # types
    for f in reg.fields:
        if f.type in TYPE_EXPECTATIONS:
            add(gxe.ExpectColumnValuesToBeOfType, f"type_{f.type}", True, [f.name],
                column=f.name, type_=TYPE_EXPECTATIONS[f.type][0])
    # plausibility (not blocking)
    limit = ((now or datetime.now()) + FUTURE_SLACK).replace(microsecond=0)
    for f in reg.fields:
        if f.type in ("date", "timestamp"):
            add(gxe.ExpectColumnValuesToBeBetween, "not_future", False, [f.name],
                column=f.name, max_value=limit)

    return gx.ExpectationSuite(
        name=f"citylake.{reg.resource}",
        expectations=out,
        meta={"resource": reg.resource, "department": reg.department, "source": "registration"},
    )


# ---- extras ------------------------------------------------------------------------------
_COLUMN_KWARGS = ("column", "column_A", "column_B")
_COLUMN_LIST_KWARGS = ("column_list", "column_set")
_EXTRA_KEYS = {"type", "kwargs", "blocking", "description_zh", "description_en"}


def expectation_columns(kwargs: dict) -> list[str]:
    """The columns an expectation is about (its domain), in kwargs order."""
    out: list[str] = []
    for k in _COLUMN_KWARGS:
        if isinstance(kwargs.get(k), str):
            out.append(kwargs[k])
    for k in _COLUMN_LIST_KWARGS:
        if isinstance(kwargs.get(k), (list, tuple)):
            out.extend(str(c) for c in kwargs[k])
    return out


def _domain(expectation) -> tuple[str, tuple[str, ...]]:
    return expectation.expectation_type, tuple(sorted(expectation_columns(expectation.configuration.kwargs)))


def extras_path(reg: Registration, extras_dir: Path | str | None = None) -> Path:
    return Path(extras_dir or EXTRAS_DIR) / f"{reg.resource}.json"


def load_extras(
    reg: Registration,
    suite: ExpectationSuite | None = None,
    *,
    extras_dir: Path | str | None = None,
) -> list[Expectation]:
    """Read ``citylake/stages/check/extras/<resource>.json`` (if present) and validate it.

    Returns the extra expectations (``meta.source == "extras"``). When ``suite`` is given they
    are also added to it. An extra whose expectation type and columns equal an expectation
    already in the suite (the registration baseline, when ``suite`` is the baseline) is refused:
    extras add rules, they never silently replace or weaken the registration's.
    """
    path = extras_path(reg, extras_dir)
    if not path.exists():
        return []
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ExtrasError(path, "(json)", f"not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ExtrasError(path, "(top level)", "an extras file is a JSON object")
    unknown = set(doc) - {"resource", "description", "expectations"}
    if unknown:
        raise ExtrasError(path, "(top level)", f"unknown key(s): {', '.join(sorted(unknown))}")
    if doc.get("resource") != reg.resource:
        raise ExtrasError(path, "resource", f"{doc.get('resource')!r} does not match {reg.resource!r}")
    items = doc.get("expectations")
    if not isinstance(items, list):
        raise ExtrasError(path, "expectations", "must be a list")

    _gx()  # GE imported and configured before its registry is read
    from great_expectations.expectations.registry import get_expectation_impl

    known_columns = set(expected_columns(reg))
    taken = {_domain(e): e for e in (suite.expectations if suite is not None else [])}
    out = []
    for i, item in enumerate(items):
        where = f"expectations[{i}]"
        if not isinstance(item, dict):
            raise ExtrasError(path, where, "must be an object")
        where = f"expectations[{i}] ({item.get('type')})"
        bad = set(item) - _EXTRA_KEYS
        if bad:
            allowed = ", ".join(sorted(_EXTRA_KEYS))
            raise ExtrasError(path, where, f"unknown key(s): {', '.join(sorted(bad))} (allowed: {allowed})")
        etype, kwargs = item.get("type"), item.get("kwargs", {})
        if not isinstance(etype, str) or not etype.startswith("expect_"):
            raise ExtrasError(path, where, "'type' must name a Great Expectations expectation (expect_…)")
        if not isinstance(kwargs, dict):
            raise ExtrasError(path, where, "'kwargs' must be an object")
        blocking = item.get("blocking", False)
        if not isinstance(blocking, bool):
            raise ExtrasError(path, where, "'blocking' must be true or false")
        for col in expectation_columns(kwargs):
            if col not in known_columns:
                raise ExtrasError(path, where, f"column {col!r} is not a column of {reg.resource}")
        try:
            cls = get_expectation_impl(etype)
        except Exception as exc:  # ExpectationNotFoundError
            raise ExtrasError(path, where, f"unknown expectation type {etype!r}") from exc
        cols = expectation_columns(kwargs)
        zh = item.get("description_zh") or GE_TYPE_ZH.get(etype, f"自定义质量规则（{etype}）")
        if not item.get("description_zh") and cols:
            zh += "：" + "、".join(_label(reg, c)[0] for c in cols)
        en = item.get("description_en") or (etype + (": " + ", ".join(cols) if cols else ""))
        try:
            exp = cls(
                **kwargs,
                meta=_meta(f"extra:{etype}", blocking, zh, en, source="extras"),
                severity="critical" if blocking else "warning",
            )
        except Exception as exc:  # pydantic validation of the kwargs
            raise ExtrasError(path, where, f"invalid kwargs: {exc}".splitlines()[0]) from exc
        dom = _domain(exp)
        if dom in taken:
            other = taken[dom].meta.get("source", "?") if taken[dom].meta else "?"
            raise ExtrasError(
                path, where,
                f"same expectation and columns as one from {other} "
                f"({etype} on {list(dom[1]) or 'the table'}); "
                "extras cannot override it — change the registration instead",
            )
        taken[dom] = exp
        out.append(exp)
    if suite is not None:
        # Not suite.add_expectation(): outside a data context it tries to reach a store. The
        # constructor appends to this list the same way; duplicates were refused above.
        suite.expectations.extend(out)
    return out


def suite_for(
    reg: Registration,
    *,
    division_retired_window_years: int = 5,
    extras_dir: Path | str | None = None,
    now: datetime | None = None,
) -> ExpectationSuite:
    """Baseline suite plus the resource's extras: what the runner validates."""
    suite = build_suite(reg, division_retired_window_years=division_retired_window_years, now=now)
    load_extras(reg, suite, extras_dir=extras_dir)
    return suite


def describe(expectation) -> dict[str, Any]:
    """Blocking flag, source, kind and descriptions of an expectation (from its meta)."""
    meta = dict(expectation.meta or {})
    return {
        "blocking": bool(meta.get("blocking", False)),
        "source": meta.get("source", "unknown"),
        "kind": meta.get("kind", expectation.expectation_type),
        "description_zh": meta.get("description_zh")
        or GE_TYPE_ZH.get(expectation.expectation_type, expectation.expectation_type),
        "description_en": meta.get("description_en") or expectation.expectation_type,
    }
