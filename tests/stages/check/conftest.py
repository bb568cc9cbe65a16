"""Fixtures for the expectations tests: registrations and small standardized batches written with
pyiceberg into the throw-away lake's standardized table (canonical columns + lineage + commit
markers), shaped as conform writes them (docs/conform-rules.md, docs/zones.md). Writing them needs
no Spark; the check reads them with the shared session (tests/conftest.py ``spark``)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pyarrow as pa
import pytest

from citylake.core import identifiers as ids
from citylake.core import tables, zones
from citylake.core.lake import Lake
from citylake.core.registry import load_registrations

DIVISION = "410102"  # 郑州市中原区, in the latest GB/T 2260 edition


@pytest.fixture(scope="session")
def regs():
    from citylake.core.settings import REPO_ROOT

    return {r.resource: r for r in load_registrations(REPO_ROOT / "registrations")}


def _uscc(i: int) -> str:
    body = f"91410100{i:09d}"
    return body + ids.uscc_check_char(body)


def _cn_id(i: int) -> str:
    born = date(1980, 1, 1) + timedelta(days=i // 1000)
    body = f"{DIVISION}{born:%Y%m%d}{i % 1000:03d}"
    return body + ids.cn_id_check_char(body)


def _org(i: int) -> str:
    body = f"{i:08d}"
    return body + ids.org_check_char(body)


def _value(f, i: int):
    """A valid value of field ``f`` for row ``i`` (unique per row for strings)."""
    if f.check == "uscc":
        return _uscc(i)
    if f.check == "cn_id":
        return _cn_id(i)
    if f.check == "org_code":
        return _org(i)
    if f.check == "division_code":
        return DIVISION
    if f.check == "mobile":
        return f"138{i:08d}"
    if f.check == "codelist":
        return sorted(f.codes)[i % len(f.codes)]
    lo = f.min if f.min is not None else 0
    hi = f.max if f.max is not None else 1e9
    if f.type == "integer":
        return int(min(lo + i % 50, hi))
    if f.type in ("decimal", "money", "double"):
        return Decimal(str(min(lo + i % 50 + 0.5, hi)))
    if f.type == "date":
        return date(2020, 1, 1) + timedelta(days=i % 1000)
    if f.type == "timestamp":
        return datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=i)
    return f"{f.name}-{i}"


_ARROW = {
    "integer": pa.int64(),
    "decimal": pa.decimal128(18, 6),
    "double": pa.float64(),
    "money": pa.decimal128(24, 6),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "boolean": pa.bool_(),
}


def build_rows(reg, n: int, batch_id: str) -> list[dict]:
    received = datetime(2024, 6, 1, 8, 0, tzinfo=UTC)
    rows = []
    for i in range(n):
        row = {}
        for f in reg.fields:
            row[f.name] = _value(f, i)
            if f.type == "money":
                row[f"{f.name}_currency"] = "CNY"
        row.update({"_batch_id": batch_id, "_source_row": i + 2, "_received_at": received})
        rows.append(row)
    return rows


def arrow_schema(reg) -> pa.Schema:
    fields = []
    for f in reg.fields:
        fields.append(pa.field(f.name, _ARROW.get(f.type, pa.string())))
        if f.type == "money":
            fields.append(pa.field(f"{f.name}_currency", pa.string()))
    fields += [
        pa.field("_batch_id", pa.string()),
        pa.field("_source_row", pa.int64()),
        pa.field("_received_at", pa.timestamp("us", tz="UTC")),
    ]
    return pa.schema(fields)


def write_batch(settings, reg, batch_id: str, rows: list[dict], quarantined: int | None = None,
                schema: pa.Schema | None = None) -> None:
    """Rows into the standardized Iceberg table (through pyiceberg, partitioned by batch, as conform
    leaves them) and the commit markers naming the snapshot."""
    from pyiceberg.expressions import EqualTo

    lake = Lake.from_settings(settings)
    schema = schema or arrow_schema(reg)
    # Iceberg stores microseconds; conform's Spark writes them so too.
    schema = pa.schema([
        f.with_type(pa.timestamp("us", tz=f.type.tz)) if pa.types.is_timestamp(f.type) else f for f in schema
    ])
    table = pa.Table.from_pylist(rows, schema=schema)
    catalog = tables.python_catalog(settings)
    catalog.create_namespace_if_not_exists(tables.STANDARDIZED_NAMESPACE)
    ident = tables.standardized_table(reg).tuple
    if not catalog.table_exists(ident):
        created = catalog.create_table(ident, schema=schema)
        created.update_spec().add_identity("_batch_id").commit()
    tbl = catalog.load_table(ident)
    tbl.overwrite(table, overwrite_filter=EqualTo("_batch_id", batch_id))
    lake.write_json(
        zones.standardized_marker(reg.resource, batch_id),
        {"batch_id": batch_id, "rows": len(rows), "columns": [{"name": n} for n in schema.names],
         "snapshot_id": tbl.current_snapshot().snapshot_id, "committed_at": "2024-06-01T08:00:00Z"},
    )
    if quarantined is not None:
        lake.write_json(
            zones.quarantine_marker(reg.resource, batch_id),
            {"batch_id": batch_id, "rows": quarantined, "reasons": {"required:uscc": quarantined},
             "committed_at": "2024-06-01T08:00:00Z"},
        )


@pytest.fixture
def std():
    """The batch-building helpers, for tests that shape a batch by hand."""
    return SimpleNamespace(build_rows=build_rows, arrow_schema=arrow_schema, write_batch=write_batch)


@pytest.fixture
def make_batch(settings):
    """make_batch(reg, n=20, batch_id='b1', mutate=None, quarantined=0, ...) -> batch_id."""

    def _make(reg, n: int = 20, batch_id: str = "b1", mutate=None, quarantined: int | None = 0, **kw):
        rows = build_rows(reg, n, batch_id)
        if mutate:
            mutate(rows)
        write_batch(settings, reg, batch_id, rows, quarantined=quarantined, **kw)
        return batch_id

    return _make
