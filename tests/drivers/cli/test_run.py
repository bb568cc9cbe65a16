"""`citylake run` and the leases: a busy resource exits 75 saying who holds it since when, and
`--wait` waits for it instead."""

from __future__ import annotations

import threading
import time

from citylake.core.lake import Lake
from citylake.core.lease import BUSY_EXIT, hold
from citylake.core.registry import load_registrations
from citylake.core.zones import landing_dir
from tests.drivers.cli.helpers import run

RESOURCE = "enterprise_registration"
GBK_CSV = "统一社会信用代码,企业名称,登记状态\n91110000802100433B,郑州某公司,存续\n".encode("gbk")


def _drop_a_file(settings) -> str:
    reg = next(r for r in load_registrations(settings.resources_dir) if r.resource == RESOURCE)
    path = f"{landing_dir(reg.department, reg.resource)}/a.csv"
    Lake.from_settings(settings).write_bytes(path, GBK_CSV)
    return path


def test_run_exits_75_when_another_run_holds_the_step(env, capsys):
    landed = _drop_a_file(env)
    with hold(env, RESOURCE, "ingest", label="airflow task citylake_scjg.enterprise_registration.ingest try 1") as other:
        code, out, err = run(capsys, "run", "--resource", RESOURCE, "--stage", "ingest")
    assert code == BUSY_EXIT == 75
    busy = [line for line in err.splitlines() if "busy" in line]
    assert busy == [line for line in err.splitlines() if line.startswith("citylake run: ")]
    assert busy[0].startswith(f"citylake run: resource {RESOURCE} is busy: stage ingest held by {other.holder} since ")
    assert "airflow task citylake_scjg.enterprise_registration.ingest try 1" in busy[0]
    assert out == "", "no step line and no summary: the step did not run"
    assert Lake.from_settings(env).exists(landed), "the file waits in landing for the holder"
    # released: the same run goes through
    code, out, _ = run(capsys, "run", "--resource", RESOURCE, "--stage", "ingest")
    assert code == 0 and out.splitlines()[0].endswith("1 file(s): 1 ingested")


def test_run_wait_waits_for_the_holder(env, capsys):
    _drop_a_file(env)
    taken, release = threading.Event(), threading.Event()

    def other_run():
        with hold(env, RESOURCE, "ingest", label="another run"):
            taken.set()
            release.wait(20)

    thread = threading.Thread(target=other_run)
    thread.start()
    assert taken.wait(10)
    threading.Timer(1.5, release.set).start()
    started = time.monotonic()
    code, out, err = run(capsys, "run", "--resource", RESOURCE, "--stage", "ingest", "--wait", "30")
    thread.join()
    assert code == 0, err
    assert time.monotonic() - started > 1.0
    assert out.splitlines()[0].endswith("1 file(s): 1 ingested")
    # a wait too short still ends busy
    with hold(env, RESOURCE, "ingest"):
        code, _, err = run(capsys, "run", "--resource", RESOURCE, "--stage", "ingest", "--wait", "1")
    assert code == BUSY_EXIT and "is busy" in err
