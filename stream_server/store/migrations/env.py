"""Alembic environment for the call store.

The server and `stream-server db` run migrations on a connection they already hold
(config.attributes["connection"], see store/migrate.py), so the same engine options and
the start-up lock apply. A developer's `alembic` command (alembic.ini at the repository
root) has no connection and gets one from STREAM_SERVER_DATABASE_URL / the data dir.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from stream_server.store.schema import Base

target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite can't ALTER most things; batch mode copies the table instead, so a
        # future migration written once runs on both SQLite and PostgreSQL.
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _database_url() -> str:
    url = context.config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from stream_server.config import Settings

    return Settings().resolved_database_url


def run_offline() -> None:
    """`alembic upgrade head --sql`: print the DDL for a DBA instead of running it."""
    context.configure(url=_database_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    from stream_server.store.repository import make_engine

    engine = make_engine(_database_url())
    try:
        with engine.begin() as connection:
            _configure(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
