"""The databases store tests run on: SQLite in the test's folder, and a real PostgreSQL
(STREAM_SERVER_TEST_POSTGRES_URL), emptied first; skipped without one outside CI, a failure in CI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from stream_server.store.schema import Base

POSTGRES_URL = os.environ.get("STREAM_SERVER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
KINDS = ["sqlite", "postgresql"]


def clean_postgres_url(own_database: str | None = None) -> str:
    """An empty PostgreSQL database: `<test db>_<own_database>` when given (created if missing;
    the shared one where creating databases is refused), else the shared test database."""
    shared = make_url(POSTGRES_URL)
    url = shared
    admin = create_engine(shared, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            if own_database:
                own = shared.set(database=f"{shared.database}_{own_database}")
                exists = connection.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": own.database})
                if not exists:
                    connection.execute(text(f'CREATE DATABASE "{own.database}"'))
                url = own
    except OperationalError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no PostgreSQL at {POSTGRES_URL}: {exc.orig}")
    except ProgrammingError:  # no CREATEDB privilege
        url = shared
    finally:
        admin.dispose()
    engine = create_engine(url)
    Base.metadata.drop_all(engine)
    with engine.begin() as connection:  # else CallStore would take the empty database as migrated
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()
    return url.render_as_string(hide_password=False)


def store_url(kind: str, folder: Path, own_database: str | None = None) -> str:
    """The URL of an empty database of `kind` (one of KINDS)."""
    return f"sqlite:///{folder / 'stream_server.db'}" if kind == "sqlite" else clean_postgres_url(own_database)
