"""End to end through Airflow: real DAG runs (`airflow dags test`) on a small generated set, in a
throw-away CITYLAKE_HOME with its own embedded Airflow home — what `citylake demo` does."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest

from citylake.core import zones
from citylake.core.lake import Lake
from citylake.core.ledger import Ledger
from citylake.core.registry import load_registrations
from citylake.core.settings import Settings
from citylake.core.zones import landing_dir, receipts_dir
from citylake_dev.testing import local_settings

pytestmark = pytest.mark.slow

ROWS, SEED = 60, 11
FILE_RES = "enterprise_registration"  # scjg, GBK CSV


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from citylake_dev.airflow_embedded import run_all
    from citylake_dev.generate import generate

    home = tmp_path_factory.mktemp("airflow-e2e")
    settings = local_settings(home)
    regs = load_registrations(settings.resources_dir)
    truth = generate(settings, [r for r in regs if r.source.kind == "file"], rows=ROWS, seed=SEED)
    result = run_all(settings, rows=ROWS, seed=SEED, echo=True)
    return settings, {r.resource: r for r in regs}, truth, result


def _batches(settings, reg) -> list[str]:
    return [b.batch_id for b in Ledger.read(settings, reg).batches]


def _run(settings, dag_id):
    from citylake_dev.airflow_embedded import dag_run

    outcome = dag_run(dag_id, settings=settings)
    print(f"{dag_id}: {outcome.state} in {outcome.seconds:.0f} s, log {outcome.log_path}", file=sys.stderr)
    return outcome


def test_every_department_dag_and_the_publication_succeed(demo):
    from citylake_dev.airflow_embedded import department_dag_ids, list_runs

    settings, _regs, _, result = demo
    assert result, [(r.dag_id, r.failed_tasks, str(r.log_path)) for r in result.failed]
    ran = [r.dag_id for r in result.runs]
    assert ran[:-3] == department_dag_ids(settings)
    assert ran[-3:] == ["citylake_base_libraries", "citylake_freshness", "citylake_publication"]
    # recorded in the embedded Airflow's metadata, as `airflow dags list-runs` shows them
    for dag_id in ran:
        assert [r["state"] for r in list_runs(settings, dag_id)] == ["success"], dag_id


def test_zones_receipts_directory_and_freshness(demo):
    settings, regs, _, _ = demo
    lake = Lake.from_settings(settings)
    for res, reg in regs.items():
        current = lake.read_json(zones.curated_pointer(res))
        assert current["rows"] > 0, res
        receipts = [f.name for f in lake.list_files(receipts_dir(reg.department, res)) if f.name.endswith(".json")]
        assert receipts, f"no receipt for {res}"
        assert not lake.list_files(landing_dir(reg.department, res)), f"{res}: landing not emptied"
    sql = regs["social_insurance_enrollment"]
    assert lake.read_json(f"raw/{sql.department}/{sql.resource}/_watermark.json")["history"][0]["rows"] > 0
    assert (settings.directory_dir / "directory.json").exists()
    # the base libraries, built by their DAG after the departments', are in the directory with their rows
    entries = {e["resource"]: e for e in json.loads((settings.directory_dir / "directory.json").read_text(
        encoding="utf-8"))["entries"]}
    for lib in ("legal_entity", "population"):
        assert lake.read_json(zones.curated_pointer(lib))["rows"] > 0, lib
        assert entries[lib]["classification"]["category_name"] == "基础信息资源"
    report = json.loads((settings.directory_dir / "freshness.json").read_text(encoding="utf-8"))
    assert report["counts"]["on_time"] == len(regs)
    assert lake.exists("directory/freshness.json")


def test_one_more_file_is_ingested_alone_and_a_repeat_is_reported(demo, tmp_path):
    from citylake_dev.generate import generate

    settings, regs, _, _ = demo
    reg = regs[FILE_RES]
    lake = Lake.from_settings(settings)
    before = _batches(settings, reg)

    # a new export for one resource (generated elsewhere, then dropped into landing)
    scratch = Settings.from_env(home=tmp_path, lake_uri=(tmp_path / "lake").as_uri(),
                                resources_dir=settings.resources_dir)
    generate(scratch, [reg], rows=20, seed=SEED + 1)
    [new_file] = Lake.from_settings(scratch).list_files(landing_dir(reg.department, reg.resource))
    data = Lake.from_settings(scratch).read_bytes(new_file.path)
    lake.write_bytes(f"{landing_dir(reg.department, reg.resource)}/{new_file.name}", data)

    assert _run(settings, f"citylake_{reg.department}").ok
    after = _batches(settings, reg)
    assert len(after) == len(before) + 1 and set(before) < set(after), "only the new file became a batch"
    [new_batch] = set(after) - set(before)
    assert new_batch in lake.read_json(zones.curated_pointer(reg.resource))["batches"]

    # the same bytes again, under another name: reported as already ingested, nothing new
    def dupes():
        return [f for f in lake.list_files(receipts_dir(reg.department, reg.resource))
                if f.name.endswith(".duplicate.json")]

    dupes_before = dupes()
    lake.write_bytes(f"{landing_dir(reg.department, reg.resource)}/again_{new_file.name}", data)
    assert _run(settings, f"citylake_{reg.department}").ok
    assert _batches(settings, reg) == after
    [dupe] = [f for f in dupes() if f not in dupes_before]
    assert lake.read_json(dupe.path)["duplicate_of_batch"] == new_batch


def test_sql_source_takes_only_new_rows_through_airflow(demo):
    from citylake_dev.demo_source import seed_demo_source_db

    settings, regs, _, _ = demo
    reg = regs["social_insurance_enrollment"]
    lake = Lake.from_settings(settings)
    before = _batches(settings, reg)
    info = seed_demo_source_db(settings, rows=12, seed=SEED, append=True)
    assert _run(settings, f"citylake_{reg.department}").ok
    state = lake.read_json(zones.watermark_path(reg.department, reg.resource))
    assert state["history"][-1]["rows"] == info["inserted"] + info["updated"]
    assert len(_batches(settings, reg)) == len(before) + 1


FAILING_SPARK_JOB = '''
import runpy
import sys

from citylake.core.ledger import Ledger
from citylake.core.registry import find_registration
from citylake.core.settings import Settings

# A stand-in for citylake/drivers/sparkjob.py whose conform dies as a lost executor would.
step, resource = sys.argv[1], sys.argv[sys.argv.index("--resource") + 1]
if step == "conform":
    settings = Settings.from_env()
    reg = find_registration(settings.resources_dir, resource)
    batch = Ledger.read(settings, reg).pending("conform")[0]
    raise RuntimeError(f"{resource} batch {batch}: simulated executor loss while writing standardized")
sys.argv = [REAL_JOB, *sys.argv[1:]]
runpy.run_path(REAL_JOB, run_name="__main__")
'''


def test_a_failing_stage_fails_the_run_names_the_batch_and_the_receipt_says_why(demo, tmp_path, monkeypatch):
    from citylake_dev.generate import generate

    settings, regs, _, _ = demo
    reg = regs[FILE_RES]
    lake = Lake.from_settings(settings)
    failing = tmp_path / "failing_sparkjob.py"
    failing.write_text(f"REAL_JOB = {str(settings.spark_job_script)!r}\n" + FAILING_SPARK_JOB, encoding="utf-8")
    broken = dataclasses.replace(settings, spark_job_script=failing, airflow_retries=0)

    scratch = Settings.from_env(home=tmp_path / "g", lake_uri=(tmp_path / "g" / "lake").as_uri(),
                                resources_dir=settings.resources_dir)
    generate(scratch, [reg], rows=15, seed=SEED + 2)
    [f] = Lake.from_settings(scratch).list_files(landing_dir(reg.department, reg.resource))
    lake.write_bytes(f"{landing_dir(reg.department, reg.resource)}/{f.name}",
                     Lake.from_settings(scratch).read_bytes(f.path))
    before = set(_batches(settings, reg))

    outcome = _run(broken, f"citylake_{reg.department}")
    assert not outcome.ok
    assert {"conform", "watcher"} <= set(outcome.failed_tasks), "the department's conform task"
    [batch] = set(_batches(settings, reg)) - before
    log = Path(outcome.log_path).read_text(encoding="utf-8", errors="replace")
    assert f"conform failed for resource {FILE_RES} (batch {batch}): RuntimeError: {FILE_RES} batch {batch}: " \
           "simulated executor loss" in log
    receipt = lake.read_json(f"{receipts_dir(reg.department, reg.resource)}/{batch}.json")
    assert receipt["status"] == "failed"
    assert "simulated executor loss" in json.dumps(receipt, ensure_ascii=False)

    # Fixed and re-run: the same batch goes through once; nothing is duplicated.
    assert _run(settings, f"citylake_{reg.department}").ok
    assert set(_batches(settings, reg)) == before | {batch}
    assert lake.read_json(f"{receipts_dir(reg.department, reg.resource)}/{batch}.json")["status"] != "failed"
    assert batch in lake.read_json(zones.curated_pointer(reg.resource))["batches"]


def test_the_maintenance_run_is_one_spark_application_for_every_resource(demo):
    from citylake.drivers.airflow import MAINTENANCE_DAG_ID

    settings, regs, _, _ = demo
    lake = Lake.from_settings(settings)
    rows = {res: lake.read_json(zones.curated_pointer(res))["rows"] for res in regs}
    outcome = _run(settings, MAINTENANCE_DAG_ID)
    assert outcome.ok, (outcome.failed_tasks, str(outcome.log_path))
    log = Path(outcome.log_path).read_text(encoding="utf-8", errors="replace")
    # one submit naming every resource; each resource's tables were maintained in it
    [submit] = [ln for ln in log.splitlines() if "spark-submit" in ln and "sparkjob.py maintain" in ln]
    assert all(f"--resource {res}" in submit for res in regs), submit
    for res in regs:
        assert f"{res}: table=" in log, f"no maintenance line for {res}"
        assert lake.read_json(zones.curated_pointer(res))["rows"] == rows[res], "maintenance changes no row"
