"""Leases per resource and stage, on SQLite (the embedded default) and PostgreSQL (production): one
holder at a time, a clear busy error, waiting, renewal, and expiry of a crashed holder's lease."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert

from citylake.core import lease
from citylake.core.lease import LEASES, ResourceBusy, hold


@pytest.fixture(params=["sqlite", "postgresql"])
def lease_settings(request, settings):
    if request.param == "postgresql":
        return replace(settings, lease_url=request.getfixturevalue("pg_url"))
    return settings


@pytest.fixture
def resource():
    # one PostgreSQL server serves the whole run: a name of its own keeps the tests apart
    return f"res_{uuid.uuid4().hex[:8]}"


@pytest.fixture
def engine(lease_settings):
    engine = lease.engine_for(lease_settings)
    yield engine
    engine.dispose()


def test_the_default_database_is_its_own_sqlite_file_under_home(settings):
    assert settings.lease_url == f"sqlite:///{settings.home / 'leases' / 'leases.db'}"
    assert settings.lease_url != settings.catalog_uri
    assert (settings.home / "leases").is_dir(), "ensure_local_dirs makes its folder"
    assert settings.lease_ttl_seconds == 600.0


def test_hold_takes_and_releases_the_lease(lease_settings, engine, resource):
    with hold(lease_settings, resource, "conform", label="test run") as held:
        assert lease.current(engine, resource, "conform") == held
        host, pid, rest = held.holder.split(":", 2)
        assert (host, pid) == (socket.gethostname(), str(os.getpid())) and rest.endswith(" (test run)")
        assert held.expires_at - held.acquired_at == timedelta(seconds=lease_settings.lease_ttl_seconds)
        # other stages and other resources are other leases
        with hold(lease_settings, resource, "check"), hold(lease_settings, resource + "_other", "conform"):
            pass
    assert lease.current(engine, resource, "conform") is None
    with hold(lease_settings, resource, "conform"):  # free again
        pass


def test_a_second_holder_is_told_who_holds_it_since_when(lease_settings, resource):
    with hold(lease_settings, resource, "conform", label="citylake run") as held:
        started = time.monotonic()
        with pytest.raises(ResourceBusy) as busy, hold(lease_settings, resource, "conform"):
            pytest.fail("a second holder got the lease")
        assert time.monotonic() - started < 1, "wait=0 does not wait"
    exc = busy.value
    assert (exc.resource, exc.stage, exc.holder) == (resource, "conform", held.holder)
    assert exc.since == held.acquired_at and exc.expires_at == held.expires_at
    since = held.acquired_at.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M:%S")
    text = str(exc)
    assert text.startswith(f"resource {resource} is busy: stage conform held by {held.holder} since {since} until ")
    assert "(Beijing time)" in text and f"资源 {resource} 正忙" in text and "北京时间" in text
    assert "\n" not in text, "one line: the Airflow operator reads it from spark-submit's output"


def test_wait_takes_the_lease_when_the_holder_releases_it(lease_settings, resource):
    taken, release = threading.Event(), threading.Event()

    def first():
        with hold(lease_settings, resource, "curate"):
            taken.set()
            release.wait(10)

    thread = threading.Thread(target=first)
    thread.start()
    assert taken.wait(10)
    threading.Timer(1.5, release.set).start()
    started = time.monotonic()
    with hold(lease_settings, resource, "curate", wait=30):
        waited = time.monotonic() - started
    thread.join()
    assert 1.0 < waited < 10


def test_wait_gives_up_after_its_seconds(lease_settings, resource):
    with hold(lease_settings, resource, "curate"):
        started = time.monotonic()
        with pytest.raises(ResourceBusy), hold(lease_settings, resource, "curate", wait=1.5):
            pass
        assert 1.4 < time.monotonic() - started < 5


def test_a_crashed_holders_lease_expires_and_is_taken_over(lease_settings, engine, resource):
    # a holder that died long ago: its row stays, its expiry has passed
    long_ago = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=2)
    with engine.begin() as conn:
        conn.execute(insert(LEASES).values(resource=resource, stage="conform", holder="gone:1:dead (citylake run)",
                                           acquired_at=long_ago, renewed_at=long_ago,
                                           expires_at=long_ago + timedelta(minutes=10)))
    with hold(lease_settings, resource, "conform") as held:
        assert held.holder != "gone:1:dead (citylake run)"
        assert lease.current(engine, resource, "conform").holder == held.holder
    # one that took a short lease and never renewed it (no renewal thread: it crashed)
    crashed = lease.try_acquire(engine, resource, "check", "crashed:2:beef", ttl=0.5)
    assert crashed.holder == "crashed:2:beef"
    with pytest.raises(ResourceBusy), hold(lease_settings, resource, "check"):
        pass
    time.sleep(0.7)
    with hold(lease_settings, resource, "check") as held:
        assert held.holder != "crashed:2:beef"
    assert not lease.renew(engine, resource, "check", "crashed:2:beef", 600), "the crashed holder lost it"


def test_renewal_keeps_a_live_lease_beyond_its_ttl(lease_settings, engine, resource):
    short = replace(lease_settings, lease_ttl_seconds=0.9)
    with hold(short, resource, "conform") as held:
        time.sleep(2.0)  # more than twice the TTL
        with pytest.raises(ResourceBusy), hold(short, resource, "conform"):
            pass
        now = lease.current(engine, resource, "conform")
        assert now.holder == held.holder and now.renewed_at > held.acquired_at
        assert now.expires_at > datetime.now(UTC)
    assert lease.current(engine, resource, "conform") is None


def test_release_by_another_holder_does_nothing(engine, resource):
    held = lease.try_acquire(engine, resource, "ingest", "a:1:one", ttl=600)
    assert held.holder == "a:1:one"
    assert lease.try_acquire(engine, resource, "ingest", "b:2:two", ttl=600).holder == "a:1:one"
    assert lease.release(engine, resource, "ingest", "b:2:two") is False
    assert lease.current(engine, resource, "ingest").holder == "a:1:one"
    assert lease.release(engine, resource, "ingest", "a:1:one") is True
    assert lease.current(engine, resource, "ingest") is None


def test_the_lease_is_released_when_the_work_fails(lease_settings, engine, resource):
    with pytest.raises(RuntimeError, match="boom"), hold(lease_settings, resource, "receipt"):
        raise RuntimeError("boom")
    assert lease.current(engine, resource, "receipt") is None


def test_many_contenders_one_holder_at_a_time(lease_settings, resource):
    """Threads racing for one lease (each its own engine, as separate processes have): never two inside."""
    inside, most, lock = 0, 0, threading.Lock()
    busy = []

    def contend():
        nonlocal inside, most
        try:
            with hold(lease_settings, resource, "conform", wait=30):
                with lock:
                    inside += 1
                    most = max(most, inside)
                time.sleep(0.05)
                with lock:
                    inside -= 1
        except ResourceBusy as exc:  # pragma: no cover - a failure, counted below
            busy.append(exc)

    threads = [threading.Thread(target=contend) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most == 1 and busy == []


def test_the_holder_label_names_the_airflow_task(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CTX_DAG_ID", "citylake_scjg")
    monkeypatch.setenv("AIRFLOW_CTX_TASK_ID", "enterprise_registration.conform")
    monkeypatch.setenv("AIRFLOW_CTX_TRY_NUMBER", "2")
    assert lease.default_label() == "airflow task citylake_scjg.enterprise_registration.conform try 2"
    assert lease.new_holder().endswith(" (airflow task citylake_scjg.enterprise_registration.conform try 2)")
    monkeypatch.delenv("AIRFLOW_CTX_DAG_ID")
    monkeypatch.setattr("sys.argv", ["/usr/bin/citylake", "run", "--resource", "x"])
    assert lease.default_label() == "citylake run"
