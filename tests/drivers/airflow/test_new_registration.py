"""A registration added to the resources folder shows up as a task group — nothing under dags/ changes."""

from __future__ import annotations

import hashlib
import shutil

import pytest
import yaml

from citylake.core.settings import REPO_ROOT

RESOURCES = REPO_ROOT / "registrations"
DAGS = REPO_ROOT / "dags"


def _dags_digest() -> str:
    h = hashlib.sha256()
    for p in sorted(DAGS.rglob("*.py")):
        h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


def _new_resource(resources, dept: str, resource: str, *, dept_name: str | None = None, cycle: str = "每周") -> None:
    raw = yaml.safe_load((RESOURCES / "scjg" / "enterprise_registration.yaml").read_text(encoding="utf-8"))
    raw.update(resource=resource, department=dept, name="企业年度报告信息", update_cycle=cycle)
    if dept_name:
        raw["department_name"] = dept_name
        raw["provider"] = {"name": dept_name, "code": raw["provider"]["code"]}
    (resources / dept).mkdir(exist_ok=True)
    (resources / dept / f"{resource}.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")


@pytest.fixture(autouse=True)
def _dev_env(dev_env):
    return dev_env


def test_new_registration_appears_as_a_task_group(tmp_path, monkeypatch, fresh_dagbag):
    before = _dags_digest()
    resources = tmp_path / "resources"
    shutil.copytree(RESOURCES, resources)
    # a second resource for an existing department, and a department that had none
    _new_resource(resources, "scjg", "enterprise_annual_report")
    _new_resource(resources, "tjj", "enterprise_statistics", dept_name="郑州市统计局", cycle="每季度")
    monkeypatch.setenv("CITYLAKE_RESOURCES_DIR", str(resources))

    bag = fresh_dagbag()
    assert bag.import_errors == {}

    scjg = bag.dags["citylake_scjg"]
    groups = {k for k, v in scjg.task_group.children.items() if hasattr(v, "children")}
    assert groups == {"enterprise_registration", "enterprise_annual_report"}
    assert {t.task_id for t in scjg.tasks if t.task_id.startswith("enterprise_annual_report.")} == {
        f"enterprise_annual_report.{s}" for s in ("detect", "ingest", "receipt")}
    # the department's Spark steps: one submit each for both resources
    curate = scjg.get_task("curate")
    assert [o.uri for o in curate.outlets] == ["citylake://curated/enterprise_annual_report",
                                               "citylake://curated/enterprise_registration"]
    assert curate.application_args == ["curate", "--resource", "enterprise_annual_report",
                                       "--resource", "enterprise_registration"]
    for res in ("enterprise_annual_report", "enterprise_registration"):
        assert f"{res}.ingest" in scjg.get_task("conform").upstream_task_ids
        assert f"{res}.receipt" in curate.downstream_task_ids
    assert scjg.schedule == "0 2 * * *", "still the department's most frequent cycle (每日)"

    tjj = bag.dags["citylake_tjj"]
    assert "enterprise_statistics" in tjj.task_group.children
    assert tjj.schedule == "0 3 1 1,4,7,10 *", "每季度"
    assert "郑州市统计局" in tjj.tags

    uris = {a.uri for a in bag.dags["citylake_publication"].schedule.objects}
    assert {"citylake://curated/enterprise_annual_report", "citylake://curated/enterprise_statistics"} <= uris

    assert _dags_digest() == before, "nothing under dags/ was edited"


def test_removed_registration_removes_its_tasks(tmp_path, monkeypatch, fresh_dagbag):
    resources = tmp_path / "resources"
    shutil.copytree(RESOURCES, resources)
    shutil.rmtree(resources / "zrzy")
    monkeypatch.setenv("CITYLAKE_RESOURCES_DIR", str(resources))
    bag = fresh_dagbag()
    assert bag.import_errors == {}
    assert "citylake_zrzy" not in bag.dags
    uris = {a.uri for a in bag.dags["citylake_publication"].schedule.objects}
    assert "citylake://curated/real_estate_registration" not in uris


def test_broken_registration_is_an_import_error_naming_file_and_field(tmp_path, monkeypatch, fresh_dagbag):
    resources = tmp_path / "resources"
    shutil.copytree(RESOURCES, resources)
    path = resources / "gjj" / "housing_fund_units.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("update_cycle: 每月", "update_cycle: 每两月"),
                    encoding="utf-8")
    monkeypatch.setenv("CITYLAKE_RESOURCES_DIR", str(resources))
    bag = fresh_dagbag()
    errors = "\n".join(bag.import_errors.values())
    assert "housing_fund_units.yaml" in errors and "update_cycle" in errors
