"""The directory database: every element of every registered resource, stable codes, publication
history — on SQLite and (when reachable) PostgreSQL."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import yaml
from catalog_fixtures import NOW, copy_resources
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from citylake.core.registry import (
    FORMAT_CATEGORIES,
    GUIDELINE_TYPES,
    SHARE_METHOD_CATEGORIES,
    SHARE_METHOD_TYPES,
    SHARE_TYPES,
    UPDATE_CYCLES,
    directory_registrations,
)
from citylake.stages.publish import migrations
from citylake.stages.publish.codes import format_code, parse_code
from citylake.stages.publish.models import Base, Change, Entry, EntryFacts, Publication, PublicationEntry, ResourceCode
from citylake.stages.publish.publish import diff, publish

GUIDELINE_CODES = {code for code, _ in GUIDELINE_TYPES.values()}
CODE_RE = re.compile(r"^(\d)(\d{2})(\d{3})(\d*)/(\d{6})$")


def _session(settings) -> tuple:
    engine = create_engine(settings.directory_url)
    return engine, Session(engine)


def _filled(value) -> bool:
    return value is not None and (not isinstance(value, str) or value.strip() != "")


def test_every_element_filled_for_every_registered_resource(db_settings):
    regs = directory_registrations(db_settings.resources_dir)  # the resources and the base libraries
    assert {"legal_entity", "population"} < {r.resource for r in regs}
    result = publish(db_settings, now=NOW)
    engine, session = _session(db_settings)
    with session:
        entries = {e.resource: e for e in session.scalars(select(Entry))}
        assert set(entries) == {r.resource for r in regs}
        for reg in regs:
            e = entries[reg.resource]
            where = f"{reg.resource}"
            # 1 信息资源分类: 类/项/目 (细目 is optional in the provincial rules: may be empty)
            assert e.category in "123" and len(e.category) == 1, where
            assert re.fullmatch(r"\d{2}", e.item) and re.fullmatch(r"\d{3}", e.catalog), where
            assert e.detail == reg.classification.detail, where
            assert _filled(e.business), where  # 关联业务事项 (template column)
            # 2 名称, 3 代码
            assert e.name == reg.name, where
            m = CODE_RE.match(e.code)
            assert m, f"{where}: code {e.code}"
            assert e.code.split("/")[0] == reg.classification.prefix, where
            # 4 提供方, 5 提供方代码
            assert e.provider_name == reg.provider.name and _filled(e.provider_code), where
            assert e.department.slug == reg.department and e.department.provider_code == reg.provider.code
            # 6 摘要
            assert _filled(e.summary), where
            # 7 格式
            assert e.format_category in FORMAT_CATEGORIES and _filled(e.format_type), where
            if e.format_category == "其他":
                assert _filled(e.format_description), where
            # 8 信息项: name, guideline data type, length
            assert [i.field for i in e.items] == [f.name for f in reg.fields], where
            for item, spec in zip(e.items, reg.fields):
                assert item.item_name == spec.title, where
                assert item.data_type in GUIDELINE_CODES, where
                assert (item.data_type, item.data_type_name) == GUIDELINE_TYPES[spec.type], where
                assert isinstance(item.data_length, int) and item.data_length > 0, f"{where}.{item.field}"
            # 9 共享属性
            assert e.share_type in SHARE_TYPES, where
            if e.share_type != "无条件共享":
                assert _filled(e.share_condition), where
            if e.share_type != "不予共享":
                assert e.share_method_category in SHARE_METHOD_CATEGORIES, where
                assert e.share_method_type in SHARE_METHOD_TYPES, where
            # 10 开放属性
            assert e.is_open in (True, False), where
            if e.is_open:
                assert _filled(e.open_condition), where
            # 11 更新周期, 12 发布日期, 13 关联资源代码 (optional, a list)
            assert e.update_cycle in UPDATE_CYCLES, where
            assert e.publish_date == (reg.publish_date or NOW.date()), where
            assert isinstance(e.related_codes, list), where
        # the publication holds a snapshot and the facts of every entry
        pub = session.scalar(select(Publication))
        assert pub.version == result.version == 1 and pub.entry_count == len(regs)
        assert {pe.resource for pe in pub.entries} == set(entries)
        assert session.scalar(select(func.count()).select_from(EntryFacts)) == len(regs)
    engine.dispose()


def test_republish_without_change_creates_no_changes_and_keeps_codes(db_settings):
    first = publish(db_settings, now=NOW)
    assert {c.kind for c in first.changes} == {"added"} and len(first.changes) == len(first.entries)
    assert sorted(first.new_codes) == sorted(first.codes)
    second = publish(db_settings, now=NOW.replace(hour=6))
    assert second.version == 2
    assert second.changes == [] and second.new_codes == []
    assert second.codes == first.codes
    assert diff(db_settings) == []
    assert diff(db_settings, pending=True) == []
    engine, session = _session(db_settings)
    with session:
        assert session.scalar(select(func.count()).select_from(Change)) == len(first.entries)
        pubs = list(session.scalars(select(Publication).order_by(Publication.version)))
        assert [p.changed_count for p in pubs] == [len(first.entries), 0]
        assert all(e.version == 1 for e in session.scalars(select(Entry)))
        v1 = {pe.resource: pe.content_hash for pe in pubs[0].entries}
        v2 = {pe.resource: pe.content_hash for pe in pubs[1].entries}
        assert v1 == v2
    engine.dispose()


def _extra_registration(resources: Path, resource: str, classification: dict, dept: str = "scjg") -> Path:
    base = yaml.safe_load((resources / "scjg" / "enterprise_registration.yaml").read_text(encoding="utf-8"))
    base.update(resource=resource, name=f"测试资源 {resource}", classification=classification,
                summary=f"用于测试的资源 {resource}。")
    path = resources / dept / f"{resource}.yaml"
    path.write_text(yaml.safe_dump(base, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_new_registration_gets_next_code_in_its_class(db_settings, tmp_path):
    resources = copy_resources(tmp_path)
    s = replace(db_settings, resources_dir=resources)
    first = publish(s, now=NOW)
    ent = first.codes["enterprise_registration"]
    prefix, seq = parse_code(ent)
    # another resource in the same class as the enterprise registrations, one in a new class
    _extra_registration(resources, "enterprise_annual_report",
                        {"category": "1", "item": "02", "catalog": "001", "business": "企业年度报告公示"})
    _extra_registration(resources, "enterprise_abnormal_list",
                        {"category": "1", "item": "04", "catalog": "007", "business": "经营异常名录管理"})
    pending = diff(s, pending=True)
    # copies of the enterprise registration mark their USCC for the legal-entity base library: its
    # entry now names them among its 关联资源代码
    assert {(c.kind, c.resource) for c in pending} == {("added", "enterprise_annual_report"),
                                                       ("added", "enterprise_abnormal_list"),
                                                       ("modified", "legal_entity")}
    [lib] = [c for c in pending if c.resource == "legal_entity"]
    assert [d["element"] for d in lib.details] == ["related_codes"]
    second = publish(s, now=NOW.replace(hour=6))
    assert second.codes["enterprise_annual_report"] == format_code(prefix, seq + 1)
    assert second.codes["enterprise_abnormal_list"] == "104007/000001"
    assert sorted(second.new_codes) == ["enterprise_abnormal_list", "enterprise_annual_report"]
    for resource, code in first.codes.items():
        assert second.codes[resource] == code
    added = {("added", "enterprise_annual_report"), ("added", "enterprise_abnormal_list"),
             ("modified", "legal_entity")}
    assert {(c.kind, c.resource) for c in second.changes} == added
    assert {(c.kind, c.resource) for c in diff(s)} == added
    # a third publication with no change keeps all codes and changes nothing
    third = publish(s, now=NOW.replace(hour=7))
    assert third.codes == second.codes and third.changes == []


def test_modified_removed_and_returning_resources(db_settings, tmp_path):
    resources = copy_resources(tmp_path)
    s = replace(db_settings, resources_dir=resources)
    first = publish(s, now=NOW)
    path = resources / "gjj" / "housing_fund_units.yaml"
    original = path.read_text(encoding="utf-8")
    raw = yaml.safe_load(original)
    raw["summary"] = raw["summary"] + "（已更新）"
    raw["fields"][2]["length"] = 10
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    second = publish(s, now=NOW.replace(hour=6))
    assert [(c.kind, c.resource) for c in second.changes] == [("modified", "housing_fund_units")]
    elements = {d["element"]: d for d in second.changes[0].details}
    assert set(elements) == {"summary", "items[depositor_count].data_length"}
    assert elements["items[depositor_count].data_length"]["old"] == 8
    assert elements["items[depositor_count].data_length"]["new"] == 10
    assert [c.to_dict()["kind"] for c in diff(s)] == ["modified"]

    # removed: the entry is retired, its code stays reserved
    path.unlink()
    third = publish(s, now=NOW.replace(hour=7))
    # and the legal-entity base library, fed by it, no longer names it among its 关联资源代码
    assert {(c.kind, c.resource) for c in third.changes} == {("removed", "housing_fund_units"),
                                                            ("modified", "legal_entity")}
    assert "housing_fund_units" not in third.codes
    # back again: same code as before
    path.write_text(original, encoding="utf-8")
    fourth = publish(s, now=NOW.replace(hour=8))
    assert fourth.codes["housing_fund_units"] == first.codes["housing_fund_units"]
    assert {(c.kind, c.resource) for c in fourth.changes} == {("added", "housing_fund_units"),
                                                             ("modified", "legal_entity")}
    # history: any two versions can be compared
    assert [c.kind for c in diff(s, from_version=1, to_version=2)] == ["modified"]
    assert diff(s, from_version=1, to_version=4) == []  # the original registration again
    engine, session = _session(s)
    with session:
        entry = session.scalar(select(Entry).where(Entry.resource == "housing_fund_units"))
        assert entry.retired_at is None and entry.version == 3
        assert entry.publish_date == NOW.date()  # 发布日期 is the first publication's
        codes = list(session.scalars(select(ResourceCode.code)))
        assert len(codes) == len(set(codes)) == len(first.codes)
        versions = [pe.entry_version for pe in session.scalars(
            select(PublicationEntry).where(PublicationEntry.resource == "housing_fund_units")
            .order_by(PublicationEntry.publication_id))]
        assert versions == [1, 2, 3]
    engine.dispose()


def test_facts_are_stored_with_the_publication(db_settings, small_lake):
    publish(db_settings, now=NOW)
    engine, session = _session(db_settings)
    with session:
        facts = {f.resource: f for f in session.scalars(select(EntryFacts))}
        ent = facts["enterprise_registration"]
        assert ent.has_data and ent.row_count == 4 and ent.batches_received == 3
        assert ent.freshness == "on_time"
        assert abs(ent.quality_latest_pass_rate - 0.5) < 1e-9
        assert abs(ent.quarantine_rate - 57 / 300) < 1e-9
        assert ent.facts["quality_trend"][-1]["batch_id"] == "b003"
        air = facts["air_quality_hourly"]
        assert air.freshness == "overdue" and air.drift
        assert facts["resident_population"].freshness == "no_data"
        assert facts["resident_population"].row_count is None
    engine.dispose()


def test_migrations_match_the_models(db_settings):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    migrations.upgrade(db_settings.directory_url)
    migrations.upgrade(db_settings.directory_url)  # idempotent
    engine = create_engine(db_settings.directory_url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(ctx, Base.metadata) == []
    assert migrations.current_revision(engine) == "0002"
    engine.dispose()
