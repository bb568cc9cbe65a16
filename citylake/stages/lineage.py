"""Lineage: the one statement of which datasets each step reads and writes.

Every job of the lake — a step of a resource's chain (:mod:`citylake.stages.chain`), a table's
maintenance, a build that makes tables from other tables (a base library, 基础库), the directory
publication and the freshness report — is described here by its inputs and outputs, as
OpenLineage datasets (``namespace`` + ``name``, after the OpenLineage naming spec):

==================  =========================================================  =====================
dataset             namespace / name                                           zone
==================  =========================================================  =====================
landing drop        ``file`` / ``<lake>/landing/<dept>/<res>``                 ``landing``
                    (``s3://<bucket>`` / ``<prefix>/landing/…`` on S3)
SQL source          ``postgres://host:port`` / ``db.schema.table`` (mysql,      ``source``
                    sqlite likewise; no credentials)
raw zone            ``…/raw/<dept>/<res>``                                     ``raw``
standardized table  ``…/warehouse/standardized/<res>`` (the table's location,  ``standardized``
                    with its catalog name ``standardized.<res>``)
quarantine          ``…/quarantine/<res>``                                     ``quarantine``
quality results     ``…/quality/<res>``                                        ``quality``
curated table       ``…/warehouse/<dept>/<res>`` (``<dept>.<res>``)            ``curated``
receipts            ``…/receipts/<dept>/<res>``                                ``receipts``
a built table       ``…/warehouse/<ns>/<table>`` (``base.legal_entity``)       ``base`` (or the ns)
the directory       ``file`` / ``$CITYLAKE_HOME/directory``                   ``directory``
==================  =========================================================  =====================

Two users: the Airflow tasks report these datasets to OpenLineage
(:mod:`citylake.drivers.airflow.lineage`: inlets/outlets of the Python tasks, the Spark operator's
``get_openlineage_facets_on_start``), and the directory draws each entry's "来源与去向" section from
the same jobs (:func:`page_lineage`). Tables are named by their location, as OpenLineage's Spark
integration names Iceberg tables, so events from either side meet on the same datasets.

Builds beyond a resource's own chain are :class:`Build` entries (inputs and outputs as table names).
A module that builds tables declares them with one function returning its builds, listed once in
:data:`BUILD_SOURCES` (``"package.module:function"``, called with the settings and the
registrations); the DAG task that runs the build reports :func:`build_datasets` of its entry.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from citylake.core import tables, zones
from citylake.core.registry import Registration
from citylake.core.settings import Settings

# "module:function" names of the functions that return the lake's builds (list[Build]) for
# (settings, registrations). The base libraries are one entry.
BUILD_SOURCES: tuple[str, ...] = ("citylake.stages.lineage:base_library_builds",)
# A base library's registration (registrations/base/) has this source kind: its build describes it.
BASE_KIND = "base"

# What each step reads and writes, by zone ("source" is the landing drop of a file resource and
# the source table of a SQL one). A SQL resource's extract writes raw itself; its ingest only
# takes re-sent files, so it reads no source of its own.
STEP_ZONES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "detect": (("source",), ()),
    "extract": (("source",), ("raw",)),
    "ingest": (("source",), ("raw",)),
    "conform": (("raw",), ("standardized", "quarantine")),
    "check": (("standardized",), ("quality",)),
    # curate promotes only batches the quality gate passed: it reads the gate's results too
    "curate": (("standardized", "quality"), ("curated",)),
    "receipt": (("raw", "quarantine", "quality"), ("receipts",)),
    # compaction and snapshot expiry rewrite the tables in place
    "maintain": (("standardized", "curated"), ("standardized", "curated")),
}

ZONE_TITLES = {
    "source": "来源 / source",
    "landing": "部门报送 / landing drop",
    "raw": "原始区 / raw zone",
    "standardized": "标准化表 / standardized table",
    "quarantine": "隔离区 / quarantine",
    "quality": "质量结果 / quality results",
    "curated": "共享表 / curated table",
    "receipts": "回执 / receipts",
    "directory": "资源目录 / directory",
}


@dataclass(frozen=True)
class DatasetRef:
    """One dataset: its OpenLineage ``namespace`` and ``name``, the ``zone`` it belongs to, a
    ``label`` a reader knows it by (a lake path, a table name, a source table), its catalog name
    when it is a table, and the directory entry (resource or base library) it belongs to."""

    namespace: str
    name: str
    zone: str
    label: str
    table: str | None = None
    owner: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


@dataclass(frozen=True)
class Build:
    """A job that makes tables from other tables: ``inputs`` and ``outputs`` are catalog names
    (``scjg.enterprise_registration`` → ``base.legal_entity``, ``base.legal_entity_conflicts``).
    ``owner`` is the directory entry its outputs belong to (a base library's resource name)."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    owner: str | None = None
    title: str = ""


@dataclass(frozen=True)
class Job:
    """One job of the lake: a step of a resource (``owner``), a build, the publication."""

    step: str
    owner: str | None
    inputs: tuple[DatasetRef, ...]
    outputs: tuple[DatasetRef, ...] = field(default=())


# ---- naming ----------------------------------------------------------------------------------------
def location(uri: str) -> tuple[str, str]:
    """(namespace, name) of a storage location: ``file:///a/b`` → (``file``, ``/a/b``),
    ``s3://bucket/k`` (or ``s3a://``) → (``s3://bucket``, ``k``)."""
    parsed = urlparse(uri)
    scheme = parsed.scheme or "file"
    if scheme == "file":
        return "file", parsed.path if parsed.scheme else str(Path(uri).resolve())
    if scheme in ("s3", "s3a"):
        return f"s3://{parsed.netloc}", parsed.path.lstrip("/")
    return f"{scheme}://{parsed.netloc}", parsed.path.lstrip("/")


def zone_dataset(settings: Settings, path: str, zone: str, owner: str | None = None) -> DatasetRef:
    """A folder of the lake (``path`` relative to the lake root)."""
    namespace, root = location(settings.lake_uri.rstrip("/"))
    name = f"{root.rstrip('/')}/{path}" if root else path
    return DatasetRef(namespace, name, zone, path, owner=owner)


def table_dataset(settings: Settings, ident: str, zone: str | None = None, owner: str | None = None) -> DatasetRef:
    """An Iceberg table by its catalog name ``namespace.table``, named by its location."""
    ns, _, table = ident.partition(".")
    namespace, name = location(f"{tables.warehouse_uri(settings)}/{ns}/{table}")
    return DatasetRef(namespace, name, zone or ns, ident, table=ident, owner=owner)


def source_dataset(settings: Settings, reg: Registration) -> DatasetRef:
    """Where a resource's data comes from: its landing folder, or its SQL source table."""
    if reg.source.kind != "sql":
        return zone_dataset(settings, zones.landing_dir(reg.department, reg.resource), "landing", reg.resource)
    src = reg.source
    table = src.table or f"query:{reg.resource}"
    label = f"{src.conn_id} · {src.table or 'query'}"
    uri = settings.connection_uri(src.conn_id)
    if not uri:  # the connection lives in a secrets backend: name it by its id
        return DatasetRef(f"airflow-connection://{src.conn_id}", table, "source", label, owner=reg.resource)
    namespace, name = sql_location(uri, table)
    return DatasetRef(namespace, name, "source", label, owner=reg.resource)


def sql_location(uri: str, table: str) -> tuple[str, str]:
    """(namespace, name) of a table behind a connection URI, without its credentials:
    postgres ``postgres://host:port`` / ``db.schema.table``, mysql ``mysql://host:port`` /
    ``db.table``, sqlite ``sqlite:////abs/file.db`` / ``table``."""
    parsed = urlparse(uri)
    scheme = parsed.scheme.split("+", 1)[0]
    if scheme == "sqlite":  # the database file as SQLAlchemy writes it (4 slashes: an absolute path)
        return "sqlite:" + uri.split(":", 1)[1].split("?", 1)[0], table
    db = parsed.path.lstrip("/")
    if scheme in ("postgres", "postgresql"):
        qualified = table if "." in table else f"public.{table}"
        return f"postgres://{parsed.hostname or 'localhost'}:{parsed.port or 5432}", f"{db}.{qualified}"
    if scheme == "mysql":
        return f"mysql://{parsed.hostname or 'localhost'}:{parsed.port or 3306}", f"{db}.{table}"
    port = f":{parsed.port}" if parsed.port else ""
    return f"{scheme}://{parsed.hostname or ''}{port}", f"{db}.{table}" if db else table


def zone_of(settings: Settings, reg: Registration, zone: str) -> DatasetRef:
    """The dataset of ``reg`` in ``zone`` (see :data:`STEP_ZONES`)."""
    dept, res = reg.department, reg.resource
    if zone == "source":
        return source_dataset(settings, reg)
    if zone == "raw":
        return zone_dataset(settings, zones.raw_dir(dept, res), zone, res)
    if zone == "quarantine":
        return zone_dataset(settings, zones.quarantine_root(res), zone, res)
    if zone == "quality":
        return zone_dataset(settings, zones.quality_root(res), zone, res)
    if zone == "receipts":
        return zone_dataset(settings, zones.receipts_dir(dept, res), zone, res)
    if zone == "standardized":
        return table_dataset(settings, tables.standardized_table(reg).ident, zone, res)
    if zone == "curated":
        return table_dataset(settings, tables.curated_table(reg).ident, zone, res)
    raise ValueError(f"unknown zone {zone!r}")


def directory_dataset(settings: Settings) -> DatasetRef:
    namespace, name = location(str(settings.directory_dir))
    return DatasetRef(namespace, name, "directory", "directory")


# ---- what each job reads and writes ------------------------------------------------------------
def datasets(step: str, reg: Registration, settings: Settings) -> tuple[list[DatasetRef], list[DatasetRef]]:
    """(inputs, outputs) of one step of one resource (a chain step, or ``maintain``); for a base
    library's registration, of its build."""
    if reg.source.kind == BASE_KIND:
        [build] = [b for b in base_library_builds(settings, None) if b.owner == reg.resource]
        return build_datasets(build, settings)
    if step not in STEP_ZONES:
        raise ValueError(f"unknown step {step!r} (one of {', '.join(STEP_ZONES)})")
    ins, outs = STEP_ZONES[step]
    if step == "ingest" and reg.source.kind == "sql":
        ins = ()
    return [zone_of(settings, reg, z) for z in ins], [zone_of(settings, reg, z) for z in outs]


def build_datasets(build: Build, settings: Settings,
                   owners: dict[str, str] | None = None) -> tuple[list[DatasetRef], list[DatasetRef]]:
    """(inputs, outputs) of a build: its tables. ``owners``: table name → the entry it belongs to."""
    owners = owners or {}
    return ([table_dataset(settings, t, "curated", owners.get(t)) for t in build.inputs],
            [table_dataset(settings, t, None, build.owner) for t in build.outputs])


def builds(settings: Settings, regs: list[Registration]) -> list[Build]:
    """Every build declared through :data:`BUILD_SOURCES`."""
    out: list[Build] = []
    for spec in BUILD_SOURCES:
        module, _, func = spec.partition(":")
        fn: Callable[[Settings, list[Registration]], Iterable[Build]] = getattr(importlib.import_module(module), func)
        out.extend(fn(settings, regs))
    return out


def base_library_builds(settings: Settings, regs: list[Registration] | None) -> list[Build]:
    """The base libraries (基础库, :mod:`citylake.stages.base`): each built from the curated tables of
    the resources marking it, into ``base.<library>`` and ``base.<library>_conflicts``."""
    from citylake.core.registry import load_base_libraries

    regs = None if regs is None else [r for r in regs if r.source.kind != BASE_KIND]
    return [Build("base", tuple(tables.curated_table(s.reg).ident for s in lib.sources),
                  (tables.base_table(lib.reg).ident, tables.base_conflicts_table(lib.reg).ident),
                  owner=lib.name, title=lib.reg.name)
            for lib in load_base_libraries(settings.resources_dir, regs)]


def publication_datasets(settings: Settings, regs: list[Registration],
                         extra: list[Build] | None = None) -> tuple[list[DatasetRef], list[DatasetRef]]:
    """The directory publication (and the freshness report): every curated and built table in,
    the directory out."""
    ins = [zone_of(settings, reg, "curated") for reg in sorted(regs, key=lambda r: r.resource)
           if reg.source.kind != BASE_KIND]
    for b in builds(settings, regs) if extra is None else extra:
        ins += build_datasets(b, settings)[1]
    return ins, [directory_dataset(settings)]


def jobs(settings: Settings, regs: list[Registration], extra: list[Build] | None = None) -> list[Job]:
    """Every job of the lake: each resource's steps, its maintenance, the builds and the publication."""
    from citylake.stages.chain import steps

    out: list[Job] = []
    regs = [r for r in regs if r.source.kind != BASE_KIND]  # described by their builds
    for reg in sorted(regs, key=lambda r: r.resource):
        for step in (*steps(reg), "maintain"):
            ins, outs = datasets(step, reg, settings)
            out.append(Job(step, reg.resource, tuple(ins), tuple(outs)))
    owners = {tables.curated_table(r).ident: r.resource for r in regs}
    for b in builds(settings, regs) if extra is None else extra:
        ins, outs = build_datasets(b, settings, owners)
        out.append(Job(b.name, b.owner, tuple(ins), tuple(outs)))
    ins, outs = publication_datasets(settings, regs, extra)
    out.append(Job("publish", None, tuple(ins), tuple(outs)))
    return out


# ---- the directory's "来源与去向" ------------------------------------------------------------------
def _view(d: DatasetRef, entry: str) -> dict:
    return {"label": d.label, "zone": d.zone, "zone_title": ZONE_TITLES.get(d.zone, d.zone),
            "owner": d.owner, "other": d.owner is not None and d.owner != entry}


def page_lineage(settings: Settings, regs: list[Registration], extra: list[Build] | None = None) -> dict[str, dict]:
    """For each directory entry (resource or built table's owner): where its data comes from —
    the steps that lead to its table, in order, each with what it reads and writes — and what is
    built from it (the builds of other entries reading its tables, with their outputs).

    ``{entry: {"comes_from": [{"step", "inputs", "outputs"}], "builds": [{"step", "owner",
    "inputs", "outputs"}]}}``; a dataset is ``{"label", "zone", "zone_title", "owner", "other"}``
    (``other``: it belongs to another entry, whose page the site links). The publication and a
    table's maintenance describe or keep tables rather than build from them: they are not listed."""
    all_jobs = [j for j in jobs(settings, regs, extra) if j.step not in ("publish", "maintain")]
    producers: dict[tuple[str, str], list[Job]] = {}
    for j in all_jobs:
        for d in j.outputs:
            producers.setdefault(d.key, []).append(j)
    entries = sorted({j.owner for j in all_jobs if j.owner})
    out: dict[str, dict] = {}
    for entry in entries:
        final = [d for j in all_jobs if j.owner == entry for d in j.outputs
                 if d.table and d.zone != "standardized"]
        # walk up from the entry's tables through its own jobs; another entry's dataset ends the walk
        seen_jobs: list[Job] = []
        todo = list(final)
        visited: set[tuple[str, str]] = set()
        while todo:
            d = todo.pop()
            if d.key in visited:
                continue
            visited.add(d.key)
            for j in producers.get(d.key, []):
                if j.owner != entry or j in seen_jobs:
                    continue
                seen_jobs.append(j)
                todo.extend(i for i in j.inputs if i.owner == entry)
        order = [j for j in all_jobs if j in seen_jobs]  # the declared order: the chain's
        final_keys = {d.key for d in final}
        consumers = [j for j in all_jobs if j.owner != entry and any(i.key in final_keys for i in j.inputs)]
        out[entry] = {
            "comes_from": [{"step": j.step, "inputs": [_view(d, entry) for d in j.inputs],
                            "outputs": [_view(d, entry) for d in j.outputs]} for j in order],
            "builds": [{"step": j.step, "owner": j.owner, "inputs": [_view(d, entry) for d in j.inputs],
                        "outputs": [_view(d, entry) for d in j.outputs]} for j in consumers],
        }
    return out

