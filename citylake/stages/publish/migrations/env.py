"""Alembic environment: always run from code with a connection (see citylake.stages.publish.migrations.upgrade)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from citylake.stages.publish.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite ALTERs go through batch mode
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:  # command-line use: alembic -x url=sqlite:///…
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("pass -x url=<database url>")
    engine = create_engine(url)
    with engine.begin() as conn:
        _run(conn)
