"""Run a resource's suite on one standardized batch and write the quality zone.

``check_batch`` reads the batch from the standardized Iceberg table through pyiceberg (the snapshot
its commit marker names), validates it with Great Expectations 1.x (ephemeral context,
pandas datasource, whole-dataframe batch), evaluates the batch-level quarantine gate, and
writes ``quality/<resource>/batch_id=<id>/result.json`` (our summary, below),
``validation.json`` (the raw GE validation result) and, last, the short quality marker
that the batch ledger reads (:mod:`citylake.core.zones`).

result.json::

    {batch_id, resource, suite, success,
     blocking_failures: [{expectation, column, description_zh, description_en,
                          observed: {unexpected_count, unexpected_percent, unexpected_sample,
                                     source_rows | observed_value, details | error}}],
     pass_rate, evaluated, successful, rows, quarantined, quarantine_rate, max_quarantine_rate,
     checked_at, summary_zh, summary_en, great_expectations_version,
     results: [{expectation_type, column, kwargs, blocking, source, description_zh,
                description_en, success, unexpected_count, unexpected_percent, observed?}]}

``column`` is the column, "a,b" for a compound key, null for table-level expectations.
``kwargs`` leave out GE's batch id and abbreviate long value sets (``{count, first}``); the full
configuration is in validation.json.

``success`` is false when any blocking expectation (or the quarantine gate) failed; such a
batch must not be promoted to curated. ``pass_rate`` = successful / evaluated over every
expectation, blocking or not, including the gate.

Arrow → pandas mapping used for validation (the suite's type expectations rely on it):
integers → nullable ``Int64``; decimals (and money) → ``float64``; dates → ``datetime64``;
time-zone-aware timestamps → naive ``datetime64`` in Asia/Shanghai; everything else as pyarrow
converts it (strings → ``object``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from citylake.core import tables, zones
from citylake.core.lake import Lake
from citylake.core.ledger import QUALITY_OF
from citylake.core.registry import Registration
from citylake.core.settings import Settings
from citylake.stages.check.suite import BATCH_ID_PARAMETER, KINDS, _gx, describe, expectation_columns, suite_for

LOCAL_TZ = "Asia/Shanghai"
GATE_TYPE = "citylake_quarantine_rate_at_most"
OBSERVED_SAMPLE = 10  # unexpected values (and their _source_row) kept per failed expectation
# What the ledger needs of a result (the quality marker); the rest stays in result.json.
MARKER_KEYS = (
    "batch_id",
    "success",
    "pass_rate",
    "evaluated",
    "successful",
    "rows",
    "quarantined",
    "blocking_failures",
    "checked_at",
    "summary_zh",
    "summary_en",
    QUALITY_OF,  # the standardized commit this result judged: re-conforming makes it stale
)


# ---- reading -----------------------------------------------------------------------------
def read_standardized(settings: Settings, reg: Registration, batch_id: str, marker: dict | None = None):
    """The standardized batch as one Arrow table, read through pyiceberg from the table snapshot
    its commit marker names (so the rows judged are the rows that commit wrote), with the columns
    the batch was written with."""
    from pyiceberg.expressions import EqualTo

    lake = Lake.from_settings(settings)
    marker = marker or lake.read_json_or(zones.standardized_marker(reg.resource, batch_id))
    if marker is None:
        raise FileNotFoundError(f"standardized batch {reg.resource}/{batch_id} is not committed in {lake.uri}")
    table = tables.load_table(settings, tables.standardized_table(reg))
    if table is None:
        raise FileNotFoundError(f"standardized table {tables.standardized_table(reg).ident} is missing")
    names = [c["name"] for c in marker.get("columns") or []]
    have = {f.name for f in table.schema().fields}
    scan = table.scan(
        row_filter=EqualTo("_batch_id", batch_id),
        selected_fields=tuple(n for n in names if n in have) or ("*",),
        snapshot_id=marker.get("snapshot_id"),
    )
    return scan.to_arrow()


def to_frame(table):
    """Arrow → pandas with the mapping the suite's type expectations expect (module docstring)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    cols = {}
    for name, col in zip(table.column_names, table.columns):
        t = col.type
        if pa.types.is_decimal(t):
            col = pc.cast(col, pa.float64())
        elif pa.types.is_date(t):
            col = pc.cast(col, pa.timestamp("ms"))
        cols[name] = col
    df = pa.table(cols).to_pandas(
        types_mapper=lambda t: pd.Int64Dtype() if pa.types.is_integer(t) else None,
    )
    for name in df.columns:
        if isinstance(df[name].dtype, pd.DatetimeTZDtype):
            df[name] = df[name].dt.tz_convert(LOCAL_TZ).dt.tz_localize(None)
    return df


def quarantined_rows(lake: Lake, reg: Registration, batch_id: str) -> int:
    marker = lake.read_json_or(zones.quarantine_marker(reg.resource, batch_id))
    return int((marker or {}).get("rows") or 0)


# ---- validating --------------------------------------------------------------------------
def validate_frame(df, suite, batch_id: str):
    """Validate a pandas frame with an ephemeral GE context; returns (GE result, expectations in
    suite order with the ids GE gave them)."""
    import copy

    gx, _ = _gx()
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    # In memory, no data-docs site, no progress bars on stderr.
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    batch_def = (
        context.data_sources.add_pandas("citylake")
        .add_dataframe_asset(name="standardized")
        .add_batch_definition_whole_dataframe("batch")
    )
    batch = batch_def.get_batch(batch_parameters={"dataframe": df})
    own = context.suites.add(
        gx.ExpectationSuite(
            name=suite.name,
            expectations=[copy.copy(e) for e in suite.expectations],
            meta=dict(suite.meta or {}),
        )
    )
    # SUMMARY: counts plus a sample of unexpected values; with the lineage column present, GE
    # also reports each sampled value's _source_row, so a receipt can point at the file's lines.
    result_format: dict = {"result_format": "SUMMARY", "partial_unexpected_count": OBSERVED_SAMPLE}
    if "_source_row" in df.columns:
        result_format["unexpected_index_column_names"] = ["_source_row"]
    result = batch.validate(own, result_format=result_format, expectation_parameters={BATCH_ID_PARAMETER: [batch_id]})
    return result, own.expectations


def _exception_message(res_json: dict) -> str | None:
    info = res_json.get("exception_info") or {}
    if info.get("raised_exception"):
        return info.get("exception_message")
    for value in info.values():  # keyed by metric id when a metric failed
        if isinstance(value, dict) and value.get("exception_message"):
            return value["exception_message"]
    return None


def _observed(res_json: dict) -> dict:
    result = res_json.get("result") or {}
    error = _exception_message(res_json)
    out: dict[str, Any] = {}
    if error:
        out["error"] = error.strip().splitlines()[-1][:500]
    if "observed_value" in result:
        out["observed_value"] = result["observed_value"]
    if result.get("details"):
        out["details"] = result["details"]
    if "unexpected_count" in result:
        out["unexpected_count"] = result["unexpected_count"]
        out["unexpected_percent"] = result.get("unexpected_percent")
        out["unexpected_sample"] = (result.get("partial_unexpected_list") or [])[:OBSERVED_SAMPLE]
        index = result.get("partial_unexpected_index_list") or []
        rows = [r.get("_source_row") for r in index if isinstance(r, dict)]
        if rows:
            out["source_rows"] = rows[:OBSERVED_SAMPLE]
    return out


def _column(kwargs: dict) -> str | None:
    cols = expectation_columns(kwargs)
    if not cols or "column_set" in kwargs:
        return None
    return ",".join(cols)


def _public_kwargs(kwargs: dict) -> dict:
    """kwargs for result.json: without GE's batch id, long value sets abbreviated."""
    out = {}
    for k, v in kwargs.items():
        if k == "batch_id":
            continue
        if k == "value_set" and isinstance(v, list) and len(v) > 50:
            v = {"count": len(v), "first": v[:5]}
        out[k] = v
    return out


# ---- the stage function ------------------------------------------------------------------
def check_batch(
    settings: Settings,
    reg: Registration,
    batch_id: str,
    quarantined: int | None = None,
) -> dict:
    """Validate one standardized batch; write quality/<resource>/batch_id=<id>/result.json and
    validation.json; return the result.json content."""
    lake = Lake.from_settings(settings)
    gx, _ = _gx()
    # Read before the rows: if the batch is conformed again meanwhile, this result names the older
    # commit and the ledger will not count it.
    marker = lake.read_json_or(zones.standardized_marker(reg.resource, batch_id)) or {}
    judged = marker.get("committed_at")
    table = read_standardized(settings, reg, batch_id, marker or None)
    rows = table.num_rows
    if quarantined is None:
        quarantined = quarantined_rows(lake, reg, batch_id)
    df = to_frame(table)
    suite = suite_for(reg, division_retired_window_years=settings.division_retired_window_years)
    validation, expectations = validate_frame(df, suite, batch_id)
    vjson = validation.to_json_dict()

    by_id = {r["expectation_config"].get("id"): r for r in vjson["results"]}
    results: list[dict] = []
    blocking_failures: list[dict] = []
    for exp in expectations:  # suite order
        res = by_id.get(exp.id)
        if res is None:  # not evaluated (should not happen)
            continue
        d = describe(exp)
        kwargs = _public_kwargs(res["expectation_config"].get("kwargs", {}))
        result = res.get("result") or {}
        entry = {
            "expectation_type": exp.expectation_type,
            "column": _column(kwargs),
            "kwargs": kwargs,
            "blocking": d["blocking"],
            "source": d["source"],
            "description_zh": d["description_zh"],
            "description_en": d["description_en"],
            "success": bool(res["success"]),
            "unexpected_count": result.get("unexpected_count"),
            "unexpected_percent": result.get("unexpected_percent"),
        }
        if not entry["success"]:
            entry["observed"] = _observed(res)
        results.append(entry)

    # batch-level quarantine gate (blocking)
    total = rows + quarantined
    rate = round(quarantined / total, 6) if total else 0.0
    limit = reg.quality.max_quarantine_rate
    pct = f"{limit:.0%}" if (limit * 100).is_integer() else f"{limit * 100:g}%"
    gate = {
        "expectation_type": GATE_TYPE,
        "column": None,
        "kwargs": {"max_quarantine_rate": limit},
        "blocking": True,
        "source": "registration",
        "description_zh": KINDS["quarantine_rate"][0].format(pct=pct),
        "description_en": KINDS["quarantine_rate"][1].format(pct=pct),
        "success": rate <= limit,
        "unexpected_count": quarantined,
        "unexpected_percent": round(rate * 100, 4),
    }
    if not gate["success"]:
        gate["observed"] = {"observed_value": rate, "quarantined": quarantined, "received": total}
    results.append(gate)

    for r in results:
        if r["blocking"] and not r["success"]:
            blocking_failures.append(
                {
                    "expectation": r["expectation_type"],
                    "column": r["column"],
                    "description_zh": r["description_zh"],
                    "description_en": r["description_en"],
                    "observed": r.get("observed", {}),
                }
            )
    evaluated = len(results)
    successful = sum(1 for r in results if r["success"])
    success = not blocking_failures
    if success:
        summary_zh = f"质量校验通过（{successful}/{evaluated} 项规则通过）"
        summary_en = f"quality check passed ({successful}/{evaluated} rules passed)"
    else:
        summary_zh = "质量校验未通过，本批次不入库：" + "；".join(f["description_zh"] for f in blocking_failures)
        summary_en = "quality check failed, batch not promoted: " + "; ".join(
            f["description_en"] for f in blocking_failures
        )

    out = {
        "batch_id": batch_id,
        "resource": reg.resource,
        "suite": suite.name,
        "success": success,
        "blocking_failures": blocking_failures,
        "pass_rate": round(successful / evaluated, 4) if evaluated else 0.0,
        "evaluated": evaluated,
        "successful": successful,
        "rows": rows,
        "quarantined": quarantined,
        "quarantine_rate": rate,
        "max_quarantine_rate": limit,
        "checked_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "summary_zh": summary_zh,
        "summary_en": summary_en,
        "great_expectations_version": gx.__version__,
        QUALITY_OF: judged,
        "results": results,
    }
    out = json.loads(json.dumps(out, ensure_ascii=False, default=str))  # plain JSON types only
    lake.write_json(zones.quality_validation_path(reg.resource, batch_id), vjson)
    lake.write_json(zones.quality_result_path(reg.resource, batch_id), out)
    # The short marker is written last: the ledger reads it instead of the large result.
    lake.write_json(zones.quality_marker(reg.resource, batch_id), {k: out[k] for k in MARKER_KEYS})
    return out


def read_result(settings: Settings, reg: Registration, batch_id: str) -> dict | None:
    """The stored result.json of a batch, or None when it was not checked yet."""
    lake = Lake.from_settings(settings)
    return lake.read_json_or(zones.quality_result_path(reg.resource, batch_id))
