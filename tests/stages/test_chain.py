"""The chain: one order of steps, the same for the CLI, the demo, the tests and the DAGs; two runs of
one resource at once: one is busy (or waits), the other does the work, as a single run would."""

from __future__ import annotations

import json
import os
import socket
import threading
import time

import pytest

from citylake.core.lake import Lake
from citylake.core.lease import ResourceBusy
from citylake.core.ledger import Ledger
from citylake.core.registry import Registration, load_registrations
from citylake.core.settings import Settings
from citylake.core.zones import landing_dir
from citylake.drivers.cli import main
from citylake.stages import chain
from citylake_dev.generate import generate
from citylake_dev.testing import local_settings

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


# ---- two runs at once: the leases ---------------------------------------------------------------
ROWS, SEED = 200, 5


def _home(tmp_path_factory, name: str) -> Settings:
    home = tmp_path_factory.mktemp(name)
    s = local_settings(home)
    return s


def _dropped(tmp_path_factory, name: str) -> tuple[Settings, Registration, dict]:
    settings = _home(tmp_path_factory, name)
    reg = next(r for r in load_registrations(settings.resources_dir) if r.resource == "enterprise_registration")
    [truth] = generate(settings, [reg], rows=ROWS, seed=SEED)["files"].values()
    return settings, reg, truth


def _zones(settings: Settings, reg: Registration) -> dict:
    """What the zones hold, without the ids and times that differ from run to run."""
    ledger = Ledger.read(settings, reg)
    summary = {k: v for k, v in ledger.summary().items() if k not in ("curated_version", "blocked")}
    summary["batch_states"] = [(b.manifest["sha256"], b.status, b.receipted) for b in ledger.batches]
    summary["landing"] = Lake.from_settings(settings).list_files(landing_dir(reg.department, reg.resource))
    return summary


@pytest.fixture(scope="module")
def single_run(spark, tmp_path_factory):
    """What one run of the drop leaves in the zones."""
    settings, reg, truth = _dropped(tmp_path_factory, "single")
    chain.run_resource(spark, settings, reg)
    zones = _zones(settings, reg)
    assert zones["batches"] == 1 and zones["standardized"] + zones["quarantined"] == truth["rows"]
    assert zones["curated"] > 0 and zones["landing"] == []
    return zones


def _in_thread(target) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def body():
        try:
            out["run"] = target()
        except BaseException as exc:  # handed to the test's thread
            out["error"] = exc

    thread = threading.Thread(target=body)
    thread.start()
    return thread, out


@pytest.fixture
def gated_conform(monkeypatch):
    """conform_batches that, once inside its lease, waits for ``go`` (the first caller only)."""
    from citylake.stages import conform

    real, inside, go = conform.conform_batches, threading.Event(), threading.Event()

    def gated(*args, **kwargs):
        if not inside.is_set():
            inside.set()
            assert go.wait(120)
        return real(*args, **kwargs)

    monkeypatch.setattr(conform, "conform_batches", gated)
    return inside, go


@pytest.mark.spark
def test_a_second_run_while_the_first_works_is_busy_and_the_first_succeeds(
        spark, tmp_path_factory, single_run, gated_conform):
    settings, reg, _ = _dropped(tmp_path_factory, "busy")
    inside, go = gated_conform
    thread, first = _in_thread(lambda: chain.run_resource(spark, settings, reg))
    try:
        assert inside.wait(120), first.get("error")
        with pytest.raises(ResourceBusy) as busy:
            chain.run_resource(spark, settings, reg)
    finally:
        go.set()
        thread.join()
    assert "error" not in first, first.get("error")
    exc = busy.value
    assert (exc.resource, exc.stage) == ("enterprise_registration", "conform")
    assert exc.holder.startswith(f"{socket.gethostname()}:{os.getpid()}:") and exc.since is not None
    assert str(exc).startswith(f"resource enterprise_registration is busy: stage conform held by {exc.holder} since ")
    assert first["run"].result("curate").status == "merged"
    assert _zones(settings, reg) == single_run


@pytest.mark.spark
def test_a_second_run_that_waits_finds_the_work_done(spark, tmp_path_factory, single_run, gated_conform):
    settings, reg, _ = _dropped(tmp_path_factory, "wait")
    inside, go = gated_conform
    waiting = threading.Event()
    thread, first = _in_thread(lambda: chain.run_resource(spark, settings, reg))
    try:
        assert inside.wait(120), first.get("error")
        # the second run reaches conform while the first holds it, and waits
        second_thread, second = _in_thread(lambda: chain.run_resource(
            spark, settings, reg, wait=120, on_step=lambda res, step: step == "conform" and waiting.set()))
        assert waiting.wait(60), second.get("error")
        time.sleep(1.5)
        assert second_thread.is_alive(), "the second run waits for the lease"
    finally:
        go.set()
        thread.join()
    second_thread.join()
    assert "error" not in first and "error" not in second, (first.get("error"), second.get("error"))
    assert first["run"].result("curate").status == "merged"
    # it waited for conform until the first had conformed the batch: nothing was left for it
    assert second["run"].result("ingest") == [] and second["run"].result("conform") == []
    assert _zones(settings, reg) == single_run
