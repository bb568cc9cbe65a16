"""`make airflow` (citylake_dev.airflow_ui): the api-server, scheduler and dag-processor on the
embedded Airflow home, the api-server on 127.0.0.1 with a login, every citylake DAG unpaused.

One start for the module, on a free port and an empty throw-away CITYLAKE_HOME, with the scheduler's
own runs off (``schedule=False``: ``[scheduler] use_job_schedule = False``) so that unpausing starts
no spark-submit; the scheduler still has to heartbeat for the health check. The last test stops it
and checks that nothing it started is left.
"""

from __future__ import annotations

import os
import sys
import time

import psutil
import pytest

from citylake.core.settings import REPO_ROOT, Settings
from citylake_dev import airflow_ui as airflow_ui_module
from citylake_dev.airflow_ui import AirflowUI, AirflowUIError, airflow_ui, citylake_dag_ids, free_port
from citylake_dev.testing import local_settings, service_unavailable
from tests.stages.publish.chromium_cdp import CDPError, Chromium, chromium_missing

slow = pytest.mark.slow  # each test on the running UI (one start, ~1 min on 2 cores)

ARTIFACTS = REPO_ROOT / "test-artifacts" / "airflow-ui"


def _settings(home) -> Settings:
    s = local_settings(home)
    return s


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    settings = _settings(tmp_path_factory.mktemp("airflow-ui"))
    started = time.monotonic()
    running = airflow_ui(settings, port=free_port(), schedule=False, timeout=240)
    try:
        ui = running.__enter__()
    except (AirflowUIError, RuntimeError, OSError) as exc:  # CI=true: fails instead of skipping
        service_unavailable(f"the Airflow UI did not start: {exc}")
    print(f"airflow ui: healthy and unpaused in {time.monotonic() - started:.0f} s at {ui.url}", file=sys.stderr)
    try:
        yield ui
    finally:
        running.__exit__(None, None, None)


@slow
def test_health_endpoint_says_healthy(ui):
    status, doc = ui.request("GET", "/api/v2/monitor/health")
    assert status == 200, doc
    for part in ("metadatabase", "scheduler", "dag_processor"):
        assert doc[part]["status"] == "healthy", doc
    assert doc["scheduler"]["latest_scheduler_heartbeat"] and doc["dag_processor"]["latest_dag_processor_heartbeat"]


@slow
def test_a_login_is_required(ui):
    assert ui.request("GET", "/api/v2/dags")[0] == 401
    assert ui.request("POST", "/auth/token", {"username": ui.username, "password": "not-it"})[0] == 401
    assert ui.password and ui.password_file.exists()


@slow
def test_every_citylake_dag_is_listed_unpaused(ui):
    # The REST API with a token from POST /auth/token (the admin's generated password).
    status, doc = ui.request("GET", "/api/v2/dags?limit=100", token=ui.token())
    assert status == 200, doc
    listed = {d["dag_id"]: d for d in doc["dags"]}
    expected = citylake_dag_ids(ui.settings)
    assert len(expected) >= 5 and "citylake_publication" in expected
    assert sorted(set(expected) - set(listed)) == []
    assert [d for d in expected if listed[d]["is_paused"]] == []


@slow
def test_listens_on_loopback_only_and_logs_to_the_home(ui):
    listening = []
    for pid in ui.pids():
        p = psutil.Process(pid)
        for q in [p, *p.children(recursive=True)]:
            try:
                listening += [(q.name(), c.laddr) for c in q.net_connections("inet") if c.status == psutil.CONN_LISTEN]
            except psutil.Error:
                pass
    assert listening, "the api-server listens"
    assert {addr.ip for _, addr in listening} == {"127.0.0.1"}, listening
    assert ui.port in {addr.port for _, addr in listening}
    logs = ui.settings.home / "airflow" / "logs" / "ui"
    assert sorted(p.name for p in logs.glob("*.log")) == ["api-server.log", "dag-processor.log", "scheduler.log"]


def _wait_for(page, expression: str, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = page.evaluate(expression)
        except CDPError:  # the page is navigating
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            text = ""
            try:
                text = page.evaluate("location.href + '\\n' + (document.body ? document.body.innerText : '')")
            except CDPError:
                pass
            raise AssertionError(f"{expression} stayed false for {timeout:.0f} s; the page:\n{text[:2000]}")
        time.sleep(0.25)


@slow
def test_log_in_and_see_the_dags_in_chromium(ui, tmp_path):
    reason = chromium_missing()
    if reason:
        service_unavailable(reason)
    with Chromium(tmp_path / "chromium-profile", timeout=60) as browser:
        page = browser.page()
        page.goto(ui.url + "/dags")
        # Not logged in: the UI sends the browser to the SimpleAuthManager's login form.
        _wait_for(page, "location.pathname.startsWith('/auth/login') && !!document.querySelector('input[name=password]')")
        assert page.evaluate("document.title") == "Airflow"
        page.type_text("input[name=username]", ui.username)
        page.type_text("input[name=password]", ui.password)
        _wait_for(page, "!document.querySelector('button[type=submit]').disabled")
        page.evaluate("document.querySelector('button[type=submit]').click()")
        _wait_for(page, "!location.pathname.startsWith('/auth/') && document.cookie !== null")
        page.goto(ui.url + "/dags")
        _wait_for(page, "document.body.innerText.includes('citylake_publication')")
        text = page.evaluate("document.body.innerText")
        missing = [d for d in citylake_dag_ids(ui.settings) if d not in text]
        assert missing == [], text[:2000]
        page.screenshot(ARTIFACTS / "dags.png", width=1280)


@slow
def test_stop_leaves_no_process(ui):
    """Runs last: stop everything the three started; the fixture's own stop is then a no-op."""
    procs = []
    for pid in ui.pids():
        p = psutil.Process(pid)
        procs += [p, *p.children(recursive=True)]
    groups = set(ui.pids())
    t0 = time.monotonic()
    ui.stop()
    print(f"airflow ui: stopped in {time.monotonic() - t0:.1f} s", file=sys.stderr)
    assert [p for p in procs if _alive(p)] == []
    assert _group_members(groups) == []
    assert ui.health() is None


# ---- supervision, without Airflow: a child that fails stops the others and their children ---------------
def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _group_members(groups: set[int]) -> list[int]:
    out = []
    for p in psutil.process_iter():
        try:
            if p.pid in groups or os.getpgid(p.pid) in groups:
                if _alive(p):
                    out.append(p.pid)
        except (OSError, psutil.Error):
            pass
    return out


class _StandIn(AirflowUI):
    """The same start/check/stop with stand-in children: two that keep running (one leaving a
    grandchild in a process group of its own, as Airflow's task runners do) and one that fails."""

    def commands(self) -> dict[str, list[str]]:
        sleeper = ("import subprocess, sys, time; "
                   "subprocess.Popen(['sleep', '300'], start_new_session=True); "
                   "subprocess.Popen(['sleep', '300']); time.sleep(300)")
        return {"api-server": [sys.executable, "-c", sleeper],
                "scheduler": [sys.executable, "-c", sleeper],
                "dag-processor": [sys.executable, "-c", "import time, sys; time.sleep(1); sys.exit(3)"]}


def test_one_child_failing_stops_all_without_orphans(tmp_path, monkeypatch):
    monkeypatch.setattr(airflow_ui_module, "prepare_airflow_home", lambda settings: None)
    ui = _StandIn(_settings(tmp_path / "home"), port=free_port())
    ui.start()
    try:
        deadline = time.monotonic() + 10
        procs: list[psutil.Process] = []
        while time.monotonic() < deadline and len(procs) < 6:  # 2 sleepers × (itself + 2 sleeps) + the failing one
            procs = [q for pid in ui.pids() if psutil.pid_exists(pid)
                     for q in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]]
            time.sleep(0.1)
        assert len(procs) >= 6, procs
        groups = set(ui.pids())
        with pytest.raises(AirflowUIError, match=r"airflow dag-processor exited with code 3"):
            ui.supervise(interval=0.1)
    finally:
        ui.stop(timeout=5)
    assert ui.children == []
    assert [p.pid for p in procs if _alive(p)] == []
    assert _group_members(groups) == []
