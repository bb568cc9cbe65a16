"""Publish the government data-resource directory (政务数据资源目录).

``publish(settings)`` is one publication, a new version of the directory:

1. read the registrations and the live facts of every resource from the lake;
2. bring the directory database to the newest schema (Alembic) and, in one transaction, give new
   resources their code, update departments and entries (an entry whose elements changed gets a new
   entry version and a ``modified`` change; new and retired resources give ``added`` / ``removed``),
   record the publication with a snapshot and the facts of every entry;
3. write the exports and the pages — ``directory.xlsx``, ``directory.json``, ``directory.csv``,
   ``open-dcat.jsonld`` and ``site/`` (with ``site/templates/``, the drop template of every file-drop
   resource, and ``site/q/``, each resource's quality page, both linked from its internal page) —
   under ``settings.directory_dir``, and, when the lake is on S3, also under ``directory/`` in the
   lake. Both go through :class:`citylake.core.lake.Lake`.

Publishing again with nothing changed records a publication with no changes and keeps every code.
``diff(settings)`` lists what the latest publication changed against the one before it
(``pending=True``: what publishing now would change).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from citylake.core import tables
from citylake.core.lake import Lake
from citylake.core.registry import Registration, directory_registrations
from citylake.core.settings import Settings
from citylake.stages import drop_template
from citylake.stages.lineage import page_lineage
from citylake.stages.publish import exports, migrations
from citylake.stages.publish.codes import assign_codes
from citylake.stages.publish.entries import build_snapshot, content_hash, element_changes
from citylake.stages.publish.facts import ResourceFacts, collect_facts, sample_rows
from citylake.stages.publish.models import (
    Change,
    Department,
    Entry,
    EntryFacts,
    EntryItem,
    Publication,
    PublicationEntry,
    ResourceCode,
)
from citylake.stages.publish.quality import quality_history
from citylake.stages.publish.site import render_site

CHINA = ZoneInfo("Asia/Shanghai")
LAKE_PREFIX = "directory"
OUTPUT_FILES = {
    "xlsx": "directory.xlsx",
    "json": "directory.json",
    "csv": "directory.csv",
    "dcat": "open-dcat.jsonld",
    "site": "site/index.html",
    "open_site": "site/open/index.html",
}
ADVISORY_LOCK = 7_720_231  # PostgreSQL: one publication at a time


@dataclass(frozen=True)
class EntryChange:
    kind: str  # added / modified / removed
    resource: str
    code: str
    name: str
    details: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "resource": self.resource, "code": self.code, "name": self.name,
                "details": self.details}

    def describe(self) -> str:
        label = {"added": "新增", "modified": "变更", "removed": "撤销"}[self.kind]
        head = f"{label} {self.code} {self.name} ({self.resource})"
        lines = [head]
        for d in self.details:
            lines.append(f"    {d['element']}: {_short(d['old'])} → {_short(d['new'])}")
        return "\n".join(lines)


def _short(value, limit: int = 60) -> str:
    text_ = "—" if value in (None, "", []) else str(value)
    return text_ if len(text_) <= limit else text_[: limit - 1] + "…"


@dataclass
class PublicationResult:
    version: int
    published_at: datetime
    entries: list[dict]  # snapshots, by code
    codes: dict[str, str]  # resource -> code
    new_codes: list[str]  # resources that got their code in this publication
    changes: list[EntryChange]
    facts: dict[str, ResourceFacts]
    outputs: dict[str, str]  # name -> local path, and 'lake:<name>' -> lake URI when the lake is S3
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return len(self.changes)


# ---- database helpers ------------------------------------------------------------------------
def directory_engine(settings: Settings) -> Engine:
    migrations.prepare_sqlite(settings.directory_url)
    return create_engine(settings.directory_url)


def _utc(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _related(reg: Registration, codes: dict[str, str]) -> list[str]:
    """关联资源代码: a registration may name related resources by resource name or by code."""
    return [codes.get(r, r) for r in reg.related_codes]


def _apply_entry(entry: Entry, snap: dict, dept: Department, now: datetime) -> None:
    c = snap["classification"]
    entry.department = dept
    entry.category, entry.item, entry.catalog, entry.detail = c["category"], c["item"], c["catalog"], c["detail"]
    entry.business = c["business"]
    entry.name = snap["name"]
    entry.provider_name, entry.provider_code = snap["provider"]["name"], snap["provider"]["code"]
    entry.summary = snap["summary"]
    entry.format_category = snap["format"]["category"]
    entry.format_type = snap["format"]["type"]
    entry.format_description = snap["format"]["description"]
    entry.share_type = snap["share"]["type"]
    entry.share_condition = snap["share"]["condition"]
    entry.share_method_category = snap["share"]["method_category"]
    entry.share_method_type = snap["share"]["method_type"]
    entry.is_open = snap["open"]["is_open"]
    entry.open_condition = snap["open"]["condition"]
    entry.update_cycle = snap["update_cycle"]
    entry.publish_date = date.fromisoformat(snap["publish_date"])
    entry.related_codes = list(snap["related_codes"])
    entry.updated_at = now
    entry.retired_at = None
    # update information items in place (a delete-then-insert of the same field would collide)
    existing = {item.field: item for item in entry.items}
    items = []
    for pos, i in enumerate(snap["items"], start=1):
        item = existing.get(i["field"]) or EntryItem(field=i["field"])
        item.position, item.item_name = pos, i["item_name"]
        item.data_type, item.data_type_name, item.data_length = i["data_type"], i["data_type_name"], i["data_length"]
        item.sensitivity, item.required, item.is_key = i["sensitivity"], i["required"], i["key"]
        item.unit, item.description = i["unit"], i["description"]
        items.append(item)
    entry.items = items


def _latest_snapshots(session: Session) -> dict[str, dict]:
    latest = session.scalar(select(Publication).order_by(Publication.version.desc()).limit(1))
    if latest is None:
        return {}
    return {pe.resource: pe.snapshot for pe in latest.entries}


def drop_templates(regs: list[Registration]) -> tuple[dict[str, dict[str, bytes]], list[str]]:
    """resource -> {file name: bytes} for every file-drop resource, and warnings for those whose
    template cannot be built (the page then links none; the publication goes on)."""
    out: dict[str, dict[str, bytes]] = {}
    warnings: list[str] = []
    for reg in regs:
        if reg.source.kind != "file":
            continue
        try:
            out[reg.resource] = drop_template.files(reg)
        except ValueError as exc:
            warnings.append(f"{reg.resource}: no drop template: {exc}")
    return out, warnings


def _label_tables(settings: Settings, regs: list[Registration], codes: dict[str, str]) -> list[str]:
    """Write each resource's directory code (目录代码) into its curated table's properties, so an
    engine that lists the table sees which directory entry it is. Returns warnings."""
    from pyiceberg.exceptions import CommitFailedException

    out = []
    for reg in regs:
        table = tables.load_table(settings, tables.curated_table(reg))
        code = codes.get(reg.resource)
        if table is None or not code or table.properties.get(tables.DIRECTORY_CODE) == code:
            continue
        try:
            with table.transaction() as tx:
                tx.set_properties({tables.DIRECTORY_CODE: code})
        except CommitFailedException as exc:  # a curate committed meanwhile: labelled next time
            out.append(f"{reg.resource}: directory code not written to the table this time ({exc})")
    return out


# ---- publish ---------------------------------------------------------------------------------
def publish(settings: Settings, registrations: list[Registration] | None = None, *,
            now: datetime | None = None, base_url: str | None = None) -> PublicationResult:
    """One publication of the directory; see the module docstring."""
    now = _utc(now) or datetime.now(UTC)
    # the departments' resources and the base libraries (a base library's entry is 基础信息资源)
    regs = registrations if registrations is not None else directory_registrations(settings.resources_dir)
    lake = Lake.from_settings(settings)
    facts = {
        reg.resource: collect_facts(lake, reg, now=now, table=tables.table_facts(settings, tables.curated_table(reg)))
        for reg in regs
    }
    samples = {}
    for reg in regs:
        try:
            samples[reg.resource] = sample_rows(settings, reg)
        except (OSError, ValueError):
            samples[reg.resource] = ([], [])
    templates, template_warnings = drop_templates(regs)
    quality = {reg.resource: quality_history(lake, reg) for reg in regs}

    migrations.upgrade(settings.directory_url)
    engine = directory_engine(settings)
    warnings: list[str] = list(template_warnings)
    try:
        with Session(engine) as session, session.begin():
            if engine.dialect.name == "postgresql":
                session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ADVISORY_LOCK})
            assigned = assign_codes(session, regs, now)
            warnings += [a.warning for a in assigned.values() if a.warning]
            all_codes = {rc.resource: rc.code for rc in session.scalars(select(ResourceCode))}
            previous = _latest_snapshots(session)

            departments = {d.slug: d for d in session.scalars(select(Department))}
            for reg in regs:
                d = departments.get(reg.department)
                if d is None:
                    d = departments[reg.department] = Department(slug=reg.department)
                    session.add(d)
                d.name, d.provider_name, d.provider_code = reg.department_name, reg.provider.name, reg.provider.code

            entries = {e.resource: e for e in session.scalars(select(Entry))}
            today = now.astimezone(CHINA).date()
            changes: list[EntryChange] = []
            snapshots: dict[str, dict] = {}
            for reg in regs:
                code = all_codes[reg.resource]
                entry = entries.get(reg.resource)
                publish_date = reg.publish_date or (entry.publish_date if entry is not None else today)
                snap = build_snapshot(reg, code, publish_date, _related(reg, all_codes))
                h = content_hash(snap)
                snapshots[reg.resource] = snap
                if entry is None:
                    entry = Entry(resource=reg.resource, code=code, version=1, content_hash=h,
                                  first_published_at=now)
                    _apply_entry(entry, snap, departments[reg.department], now)
                    session.add(entry)
                    entries[reg.resource] = entry
                    changes.append(EntryChange("added", reg.resource, code, reg.name))
                elif entry.retired_at is not None:
                    entry.version += 1
                    entry.content_hash = h
                    _apply_entry(entry, snap, departments[reg.department], now)
                    changes.append(EntryChange("added", reg.resource, code, reg.name,
                                               [{"element": "retired", "old": True, "new": False}]))
                elif entry.content_hash != h:
                    details = element_changes(previous.get(reg.resource) or {}, snap)
                    entry.version += 1
                    entry.content_hash = h
                    _apply_entry(entry, snap, departments[reg.department], now)
                    changes.append(EntryChange("modified", reg.resource, code, reg.name, details))
            active = {reg.resource for reg in regs}
            for resource, entry in entries.items():
                if resource not in active and entry.retired_at is None:
                    entry.retired_at = now
                    changes.append(EntryChange("removed", resource, entry.code, entry.name))
            changes.sort(key=lambda c: (c.code, c.kind))

            version = (session.scalar(select(func.max(Publication.version))) or 0) + 1
            pub = Publication(version=version, published_at=now, entry_count=len(regs),
                              changed_count=len(changes), lake_uri=settings.lake_uri, outputs={})
            session.add(pub)
            for reg in regs:
                entry = entries[reg.resource]
                pub.entries.append(PublicationEntry(
                    resource=reg.resource, code=entry.code, entry_version=entry.version,
                    content_hash=entry.content_hash, snapshot=snapshots[reg.resource],
                ))
                f = facts[reg.resource]
                session.add(EntryFacts(
                    publication=pub, resource=reg.resource, has_data=f.has_data, row_count=f.row_count,
                    last_updated_at=f.last_updated_at, last_received_at=f.last_received_at,
                    batches_received=f.batches_received, quality_latest_pass_rate=f.quality_latest_pass_rate,
                    quality_recent_pass_rate=f.quality_recent_pass_rate, quarantine_rate=f.quarantine_rate,
                    freshness=f.freshness, drift=bool(f.drift), facts=f.to_dict(),
                ))
            for ch in changes:
                pub.changes.append(Change(resource=ch.resource, code=ch.code, kind=ch.kind, details=ch.details))
            session.flush()

            for reg in regs:
                if reg.open.is_open and reg.share.type == "不予共享":
                    warnings.append(f"{reg.resource}: marked open but 不予共享; it is not published as open")
                for msg in facts[reg.resource].drift:
                    warnings.append(f"{reg.resource}: {msg}")

            pub_meta = {"version": version, "published_at": now.isoformat(), "entry_count": len(regs),
                        "changed_count": len(changes)}
            entry_list = sorted(snapshots.values(), key=lambda s: s["code"])
            chain_regs = [r for r in regs if not r.is_base]  # base libraries: their builds (BUILD_SOURCES)
            outputs = write_outputs(settings, entry_list, pub_meta,
                                    {r: f.to_dict() for r, f in facts.items()}, samples, base_url,
                                    templates=templates, quality=quality, lineage=page_lineage(settings, chain_regs))
            pub.outputs = outputs
    finally:
        engine.dispose()
    warnings += _label_tables(settings, regs, all_codes)
    return PublicationResult(
        version=version, published_at=now, entries=entry_list,
        codes={r: all_codes[r] for r in sorted(active)},
        new_codes=sorted(a.resource for a in assigned.values() if a.new),
        changes=changes, facts=facts, outputs=outputs, warnings=warnings,
    )


# ---- outputs -----------------------------------------------------------------------------
def _base_url(settings: Settings, base_url: str | None) -> str:
    if base_url:
        return base_url if base_url.endswith("/") else base_url + "/"
    return settings.directory_link("")


def render_outputs(entries: list[dict], publication: dict, facts: dict[str, dict],
                   samples: dict[str, tuple[list, list]], base: str,
                   templates: dict[str, dict[str, bytes]] | None = None,
                   quality: dict[str, dict] | None = None, lineage: dict[str, dict] | None = None,
                   service_url: str = "") -> dict[str, bytes]:
    """Every output file of a publication: relative path -> bytes (``templates``: see
    :func:`drop_templates`; ``quality``: resource -> its quality history; ``lineage``:
    :func:`citylake.stages.lineage.page_lineage`; ``service_url``: the data service's public base URL,
    which the DCAT export's downloads and data services point at, see :func:`exports.open_dcat`)."""
    files = {
        OUTPUT_FILES["xlsx"]: exports.xlsx_bytes(entries, publication),
        OUTPUT_FILES["json"]: exports.json_bytes(entries, publication, facts),
        OUTPUT_FILES["csv"]: exports.csv_bytes(entries),
        OUTPUT_FILES["dcat"]: exports.dcat_bytes(entries, publication, base,
                                                 lambda resource: f"{base}site/open/r/{resource}.html", service_url),
    }
    for rel, data in render_site(entries, facts, samples, publication, templates, quality, lineage).items():
        files[f"site/{rel}"] = data
    return files


def output_sinks(settings: Settings) -> list[tuple[Lake, str, str]]:
    """Where outputs go: (lake, prefix inside it, label). The local directory folder always; the
    lake's ``directory/`` too when the lake is on S3."""
    sinks = [(Lake(str(settings.directory_dir)), "", "local")]
    lake = Lake.from_settings(settings)
    if lake.scheme == "s3":
        sinks.append((lake, LAKE_PREFIX, "lake"))
    return sinks


def write_outputs(settings: Settings, entries: list[dict], publication: dict, facts: dict[str, dict],
                  samples: dict[str, tuple[list, list]], base_url: str | None = None, *,
                  templates: dict[str, dict[str, bytes]] | None = None,
                  quality: dict[str, dict] | None = None, lineage: dict[str, dict] | None = None) -> dict[str, str]:
    files = render_outputs(entries, publication, facts, samples, _base_url(settings, base_url), templates,
                           quality, lineage, service_url=settings.service_url)
    outputs: dict[str, str] = {}
    for lake, prefix, label in output_sinks(settings):
        for rel, data in files.items():
            lake.write_bytes(Lake.join(prefix, rel), data)
        # pages (and drop templates) of resources no longer registered
        for f in lake.list_files(Lake.join(prefix, "site")):
            rel = f.path[len(Lake.join(prefix)) + 1:] if prefix else f.path
            if rel not in files:
                lake.delete(f.path)
        for name, rel in OUTPUT_FILES.items():
            where = (str(settings.directory_dir / rel) if label == "local"
                     else f"{lake.uri}/{Lake.join(prefix, rel)}")
            outputs[name if label == "local" else f"lake:{name}"] = where
    outputs["database"] = _redact(settings.directory_url)
    return outputs


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# ---- diff --------------------------------------------------------------------------------
def changes_between(old: dict[str, dict], new: dict[str, dict]) -> list[EntryChange]:
    """Changes from one set of entry snapshots (resource -> snapshot) to another."""
    out = []
    for resource in sorted(set(old) | set(new), key=lambda r: (new.get(r) or old.get(r))["code"]):
        a, b = old.get(resource), new.get(resource)
        if a is None:
            out.append(EntryChange("added", resource, b["code"], b["name"]))
        elif b is None:
            out.append(EntryChange("removed", resource, a["code"], a["name"]))
        else:
            details = element_changes(a, b)
            if details:
                out.append(EntryChange("modified", resource, b["code"], b["name"], details))
    return out


def publication_snapshots(session: Session, version: int) -> dict[str, dict]:
    pub = session.scalar(select(Publication).where(Publication.version == version))
    if pub is None:
        raise LookupError(f"no publication version {version}")
    return {pe.resource: pe.snapshot for pe in pub.entries}


def pending_snapshots(session: Session, regs: list[Registration], now: datetime) -> dict[str, dict]:
    """What the entries would be if published now (new resources show code '(new)')."""
    codes = {rc.resource: rc.code for rc in session.scalars(select(ResourceCode))}
    entries = {e.resource: e for e in session.scalars(select(Entry))}
    today = now.astimezone(CHINA).date()
    out = {}
    for reg in regs:
        e = entries.get(reg.resource)
        publish_date = reg.publish_date or (e.publish_date if e is not None else today)
        out[reg.resource] = build_snapshot(reg, codes.get(reg.resource, "(new)"), publish_date,
                                           _related(reg, codes))
    return out


def diff(settings: Settings, *, from_version: int | None = None, to_version: int | None = None,
         pending: bool = False, registrations: list[Registration] | None = None) -> list[EntryChange]:
    """Changes between two publications: by default the latest against the one before it (every
    entry is 'added' after the first publication). ``pending=True`` compares the registrations as
    they are now with the latest publication. No publication yet: an empty list (or, pending, every
    registration as 'added')."""
    migrations.upgrade(settings.directory_url)
    engine = directory_engine(settings)
    try:
        with Session(engine) as session:
            versions = list(session.scalars(select(Publication.version).order_by(Publication.version)))
            if pending:
                regs = registrations if registrations is not None else directory_registrations(settings.resources_dir)
                old = publication_snapshots(session, to_version or versions[-1]) if versions else {}
                return changes_between(old, pending_snapshots(session, regs, datetime.now(UTC)))
            if not versions:
                return []
            to_v = to_version or versions[-1]
            if from_version is None:
                earlier = [v for v in versions if v < to_v]
                old = publication_snapshots(session, earlier[-1]) if earlier else {}
            else:
                old = publication_snapshots(session, from_version)
            return changes_between(old, publication_snapshots(session, to_v))
    finally:
        engine.dispose()


def latest_publication(settings: Settings) -> dict | None:
    """The latest publication's version, time, counts and outputs (None before the first)."""
    migrations.upgrade(settings.directory_url)
    engine = directory_engine(settings)
    try:
        with Session(engine) as session:
            pub = session.scalar(select(Publication).order_by(Publication.version.desc()).limit(1))
            if pub is None:
                return None
            return {"version": pub.version, "published_at": _utc(pub.published_at).isoformat(),
                    "entry_count": pub.entry_count, "changed_count": pub.changed_count, "outputs": pub.outputs}
    finally:
        engine.dispose()
