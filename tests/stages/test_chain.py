"""The chain: one order of steps, the same for the CLI, the demo, the tests and the DAGs."""

from __future__ import annotations

import json

import pytest

from citylake.core.lake import Lake
from citylake.core.ledger import Ledger
from citylake.core.registry import load_registrations
from citylake.core.zones import landing_dir
from citylake.drivers.cli import main
from citylake.stages import chain

GBK_CSV = ("统一社会信用代码,企业名称,登记状态\n91110000802100433B,郑州某公司,存续\n").encode("gbk")


@pytest.fixture
def regs(settings):
    return {r.resource: r for r in load_registrations(settings.resources_dir)}


def test_steps_in_order(regs):
    assert chain.steps(regs["enterprise_registration"]) == ("detect", "ingest", "conform", "check", "curate", "receipt")
    assert chain.steps(regs["social_insurance_enrollment"])[0] == "extract"
    assert set(chain.ALL_STEPS) == set(chain.CODE)
    for step in chain.ALL_STEPS:
        module, function = chain.CODE[step]
        assert callable(getattr(__import__(module, fromlist=[function]), function)), step


def test_unknown_and_misused_steps_are_refused(settings, regs):
    reg = regs["enterprise_registration"]
    with pytest.raises(ValueError, match="unknown step 'publish'"):
        chain.run_step("publish", settings, reg)
    with pytest.raises(ValueError, match="needs a Spark session"):
        chain.run_step("conform", settings, reg)


def test_a_sql_source_without_a_connection_says_which_variable(settings, regs, monkeypatch):
    reg = regs["social_insurance_enrollment"]
    monkeypatch.delenv(f"AIRFLOW_CONN_{reg.source.conn_id.upper()}", raising=False)
    with pytest.raises(LookupError, match=f"AIRFLOW_CONN_{reg.source.conn_id.upper()}"):
        chain.run_step("extract", settings, reg)


def test_run_resource_runs_the_chosen_steps_in_order(settings, regs):
    reg = regs["enterprise_registration"]
    Lake.from_settings(settings).write_bytes(f"{landing_dir(reg.department, reg.resource)}/a.csv", GBK_CSV)
    seen = []
    run = chain.run_resource(None, settings, reg, only=("detect", "ingest", "receipt"),
                             on_step=lambda res, step: seen.append(step))
    assert seen == ["detect", "ingest", "receipt"] == [s.step for s in run.steps]
    assert run.result("detect") == [f"{landing_dir(reg.department, reg.resource)}/a.csv"]
    [outcome] = run.result("ingest")
    assert outcome.status == "ingested"
    [receipt] = run.result("receipt")
    assert receipt["batch_id"] == outcome.batch_id and receipt["status"] == "processing"
    assert Ledger.read(settings, reg).pending("conform") == [outcome.batch_id]


def test_citylake_run_goes_through_the_chain(settings, regs, monkeypatch, capsys):
    for key, value in settings.as_env().items():
        monkeypatch.setenv(key, value)
    reg = regs["enterprise_registration"]
    Lake.from_settings(settings).write_bytes(f"{landing_dir(reg.department, reg.resource)}/a.csv", GBK_CSV)
    assert main(["run", "--resource", "enterprise_registration", "--stage", "ingest", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["resource"] == "enterprise_registration" and out["ingest"][0]["status"] == "ingested"
    assert main(["run", "--resource", "no_such_thing"]) == 2
