"""Schema migrations for the directory database (Alembic), run from code.

``upgrade(url)`` brings a database to the newest schema; :func:`citylake.stages.publish.publish` calls it
on every publication, so nobody runs schema changes by hand. New revisions go in ``versions/``
(``alembic -c citylake/stages/publish/migrations/alembic.ini revision -m "…"`` or by hand) and must keep
``citylake/stages/publish/models.py`` and the migrations equal (tests/stages/publish/test_catalog_db.py compares them).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine

HERE = Path(__file__).resolve().parent


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("path_separator", "os")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def prepare_sqlite(url: str) -> None:
    """SQLite creates the file but not its folder."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        Path(u.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def upgrade(url_or_engine: str | Engine, revision: str = "head") -> None:
    """Create or upgrade the directory schema at ``url_or_engine`` to ``revision``."""
    if isinstance(url_or_engine, str):
        prepare_sqlite(url_or_engine)
        engine = create_engine(url_or_engine)
        dispose = True
    else:
        engine, dispose = url_or_engine, False
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), revision)
    finally:
        if dispose:
            engine.dispose()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
