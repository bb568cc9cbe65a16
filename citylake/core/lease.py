"""Leases: at most one holder per resource and stage at a time, whoever runs it.

Two runs of one step of one resource share its staging folders and pending batches, so the second
would break the first's work. Every step but ``detect`` (read-only) runs inside :func:`hold`
(:func:`citylake.stages.chain.run_step`), so ``citylake run``, the Airflow tasks and spark-submit
of any scheduler respect the same lease.

A lease is a row of table ``citylake_lease`` in the database :attr:`Settings.lease_url` (its own
SQLite file in the embedded default, so lease writes never lock the Iceberg catalog's SQLite;
PostgreSQL in production)::

    resource, stage (primary key) · holder · acquired_at · renewed_at · expires_at   (UTC)

Acquiring deletes the row if it has expired and inserts one, in one transaction: a duplicate key
means another holder, :class:`ResourceBusy` (after ``wait`` seconds of polling). While held, a
daemon thread moves ``expires_at`` forward every third of :attr:`Settings.lease_ttl_seconds`; a
crashed holder stops renewing, so its lease expires and the next run takes it over. Expiry is
judged by each host's clock (kept by NTP; the TTL is minutes). Releasing deletes the row only if
this holder still has it. The holder is ``host:pid:<id>`` and what runs (``airflow task
<dag>.<task> try N``, or the command).
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Column, DateTime, MetaData, String, Table, create_engine, delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from citylake.core.settings import Settings

log = logging.getLogger(__name__)

BUSY_EXIT = 75  # EX_TEMPFAIL (sysexits.h): try again later
POLL_SECONDS = 1.0
ZONE_NAMES = {"Asia/Shanghai": ("北京时间", "Beijing time")}

metadata = MetaData()
LEASES = Table(
    "citylake_lease",
    metadata,
    Column("resource", String(200), primary_key=True),
    Column("stage", String(50), primary_key=True),
    Column("holder", String(400), nullable=False),
    # naive UTC: SQLite keeps no offset, so both databases store and compare the same values
    Column("acquired_at", DateTime, nullable=False),
    Column("renewed_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
)


@dataclass(frozen=True)
class Lease:
    resource: str
    stage: str
    holder: str
    acquired_at: datetime  # UTC, aware
    renewed_at: datetime
    expires_at: datetime


class ResourceBusy(RuntimeError):
    """Another holder has the lease of ``resource`` and ``stage``; ``str(exc)`` says who and since
    when, in English and Chinese, in the centre's time zone, on one line."""

    def __init__(self, resource: str, stage: str, holder: str, since: datetime, expires_at: datetime,
                 timezone: str = "Asia/Shanghai"):
        self.resource, self.stage, self.holder = resource, stage, holder
        self.since, self.expires_at, self.timezone = since, expires_at, timezone
        zh, en = ZONE_NAMES.get(timezone, (timezone, timezone))
        start, end = _local(since, timezone), _local(expires_at, timezone)
        super().__init__(
            f"resource {resource} is busy: stage {stage} held by {holder} since {start} until {end} ({en}) · "
            f"资源 {resource} 正忙：步骤 {stage} 自 {start}（{zh}）起由 {holder} 占用，租约至 {end}"
        )


def _local(value: datetime, timezone: str) -> str:
    return value.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M:%S")


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def default_label() -> str:
    """What runs here: the Airflow task (Airflow exports its context to the task's process and
    spark-submit inherits it), else the command and its first argument (``citylake run``)."""
    dag, task = os.environ.get("AIRFLOW_CTX_DAG_ID"), os.environ.get("AIRFLOW_CTX_TASK_ID")
    if dag and task:
        return f"airflow task {dag}.{task} try {os.environ.get('AIRFLOW_CTX_TRY_NUMBER', '?')}"
    argv = sys.argv or ["python"]
    return " ".join([Path(argv[0]).name, *argv[1:2]])


def new_holder(label: str | None = None) -> str:
    """A holder identity unique to this call: ``host:pid:<id> (label)``."""
    ident = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    label = default_label() if label is None else label
    return f"{ident} ({label})" if label else ident


def engine_for(settings: Settings) -> Engine:
    """An engine on the lease database, its table created if missing."""
    url = settings.lease_url
    connect_args = {}
    if url.startswith("sqlite:"):
        connect_args["timeout"] = 30  # wait for another process's short write instead of failing
        if url.startswith("sqlite:///"):
            Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args=connect_args)
    try:
        metadata.create_all(engine)
    except SQLAlchemyError:  # two first runs creating it at once: the other one made it
        metadata.create_all(engine)
    return engine


def _row_lease(row) -> Lease:
    return Lease(row.resource, row.stage, row.holder, _aware(row.acquired_at), _aware(row.renewed_at),
                 _aware(row.expires_at))


def current(engine: Engine, resource: str, stage: str) -> Lease | None:
    """The lease of ``resource`` and ``stage`` as stored (maybe expired), or None."""
    with engine.connect() as conn:
        row = conn.execute(select(LEASES).where(LEASES.c.resource == resource, LEASES.c.stage == stage)).first()
    return _row_lease(row) if row is not None else None


def try_acquire(engine: Engine, resource: str, stage: str, holder: str, ttl: float) -> Lease:
    """Take the lease if it is free or expired. Returns the lease in force: this holder's if taken,
    else the other holder's."""
    where = (LEASES.c.resource == resource, LEASES.c.stage == stage)
    while True:
        now = _utcnow()
        expires = now + timedelta(seconds=ttl)
        try:
            with engine.begin() as conn:
                conn.execute(delete(LEASES).where(*where, LEASES.c.expires_at <= now))
                conn.execute(insert(LEASES).values(resource=resource, stage=stage, holder=holder, acquired_at=now,
                                                   renewed_at=now, expires_at=expires))
            return Lease(resource, stage, holder, _aware(now), _aware(now), _aware(expires))
        except IntegrityError:
            other = current(engine, resource, stage)
            if other is not None:
                return other
            # released between the insert and the read: try again


def renew(engine: Engine, resource: str, stage: str, holder: str, ttl: float) -> bool:
    """Move the lease's expiry ``ttl`` seconds past now; False if this holder no longer has it."""
    now = _utcnow()
    with engine.begin() as conn:
        done = conn.execute(
            update(LEASES)
            .where(LEASES.c.resource == resource, LEASES.c.stage == stage, LEASES.c.holder == holder)
            .values(renewed_at=now, expires_at=now + timedelta(seconds=ttl))
        )
    return done.rowcount == 1


def release(engine: Engine, resource: str, stage: str, holder: str) -> bool:
    """Give the lease up if this holder has it; False (and nothing changed) otherwise."""
    with engine.begin() as conn:
        done = conn.execute(delete(LEASES).where(LEASES.c.resource == resource, LEASES.c.stage == stage,
                                                 LEASES.c.holder == holder))
    return done.rowcount == 1


def _renew_until(stop: threading.Event, engine: Engine, resource: str, stage: str, holder: str, ttl: float) -> None:
    while not stop.wait(ttl / 3):
        try:
            if not renew(engine, resource, stage, holder, ttl):
                log.warning("lease of %s/%s lost by %s (it expired and was taken over)", resource, stage, holder)
                return
        except SQLAlchemyError as exc:  # the database away for a moment: the next tick tries again
            log.warning("lease of %s/%s not renewed: %s", resource, stage, exc)


@contextmanager
def hold(settings: Settings, resource: str, stage: str, *, wait: float = 0,
         label: str | None = None) -> Iterator[Lease]:
    """Hold the lease of ``resource`` and ``stage`` for the ``with`` block, renewed while it runs.

    Raises :class:`ResourceBusy` if another holder keeps it for longer than ``wait`` seconds."""
    ttl = settings.lease_ttl_seconds
    holder = new_holder(label)
    engine = engine_for(settings)
    try:
        deadline = time.monotonic() + wait
        while (lease := try_acquire(engine, resource, stage, holder, ttl)).holder != holder:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ResourceBusy(resource, stage, lease.holder, lease.acquired_at, lease.expires_at,
                                   settings.timezone)
            time.sleep(min(POLL_SECONDS, left))
        stop = threading.Event()
        renewer = threading.Thread(target=_renew_until, args=(stop, engine, resource, stage, holder, ttl),
                                   name=f"lease-{resource}-{stage}", daemon=True)
        renewer.start()
        try:
            yield lease
        finally:
            stop.set()
            renewer.join()
            try:
                release(engine, resource, stage, holder)
            except SQLAlchemyError as exc:  # the work is done; the lease expires on its own
                log.warning("lease of %s/%s not released (it expires after %s s): %s", resource, stage, ttl, exc)
    finally:
        engine.dispose()
