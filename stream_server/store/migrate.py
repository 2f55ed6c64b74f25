"""Schema migrations (Alembic) for the call store, on SQLite and PostgreSQL alike.

The migration scripts ship inside the package (store/migrations/) and the Alembic
configuration is built here, so an installed server needs no alembic.ini. Every node
runs `upgrade` at start-up; a lock makes nodes that start together against one fresh
database take turns instead of all creating the same tables.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# The revision that creates what `Base.metadata.create_all` created before migrations.
INITIAL_REVISION = "0001"
PRE_MIGRATION_TABLES = frozenset({"calls", "segments", "alerts"})
# pg_advisory_xact_lock key: any constant shared by all nodes ("stream_s" in ASCII).
_LOCK_KEY = 0x73747265616D5F73

UPGRADE_COMMAND = "stream-server db upgrade"

log = logging.getLogger(__name__)
# Alembic logs "Context impl ..." at INFO for every look at the version table; upgrade()
# logs what changed instead.
logging.getLogger("alembic").setLevel(logging.WARNING)


class SchemaNotCurrent(RuntimeError):
    """The database isn't at the revision this code needs, and we may not migrate it."""


@dataclass(frozen=True)
class SchemaState:
    current: str | None  # None: no alembic_version table (empty, or made by create_all)
    head: str
    pre_migration: bool  # tables made by create_all before migrations existed

    @property
    def at_head(self) -> bool:
        return self.current == self.head

    def describe(self) -> str:
        if self.current is not None:
            return f"revision {self.current}" + (" (head)" if self.at_head else f", head is {self.head}")
        if self.pre_migration:
            return f"unversioned (created before migrations; `{UPGRADE_COMMAND}` stamps it at {INITIAL_REVISION})"
        return "empty"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection  # env.py migrates on it
    return config


def scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def _state(connection: Connection) -> SchemaState:
    head = scripts().get_current_head()
    assert head is not None, "no migrations shipped"
    current = MigrationContext.configure(connection).get_current_revision()
    tables = set(inspect(connection).get_table_names()) & PRE_MIGRATION_TABLES
    if current is None and tables and tables != PRE_MIGRATION_TABLES:
        raise SchemaNotCurrent(
            f"database has tables {sorted(tables)} but not {sorted(PRE_MIGRATION_TABLES - tables)} and no "
            "alembic_version: not a stream_server database, or a damaged one; point "
            "STREAM_SERVER_DATABASE_URL at another database"
        )
    if current is not None:
        try:
            scripts().get_revision(current)
        except CommandError:
            raise SchemaNotCurrent(
                f"database is at revision {current}, which this stream_server version doesn't know: "
                "it was migrated by a newer version; run that version (or newer) here"
            ) from None
    return SchemaState(current=current, head=head, pre_migration=current is None and bool(tables))


def schema_state(engine: Engine) -> SchemaState:
    with engine.connect() as connection:
        return _state(connection)


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[Connection]:
    """One transaction that only one process at a time holds, across machines."""
    if engine.dialect.name == "sqlite":
        with _sqlite_migration(engine) as connection:
            yield connection
        return
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        yield connection


@contextmanager
def _sqlite_migration(engine: Engine) -> Iterator[Connection]:
    """SQLite's write lock for the whole migration, with foreign keys off: batch mode alters
    a table by copying it, and dropping the old `calls` would fail on the segments that
    point at it. The references are checked before commit, as SQLite's ALTER recipe says."""
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")  # a no-op inside a transaction
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock now, not at the first write
            yield connection
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise SchemaNotCurrent(f"the migration left rows referring to missing rows: {broken[:5]}")
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        finally:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")  # the pooled connection goes on serving
            connection.commit()


def upgrade(engine: Engine, revision: str = "head") -> SchemaState:
    """Bring the schema to `revision`; a database made by create_all is first stamped
    at the initial revision, so its tables and rows are kept."""
    with _migration_lock(engine) as connection:
        state = _state(connection)
        config = alembic_config(connection)
        if state.pre_migration:
            command.stamp(config, INITIAL_REVISION)
        command.upgrade(config, revision)
        after = _state(connection)
    if after != state:
        log.info("database schema migrated: was %s, now %s", state.describe(), after.describe())
    return after


def ensure_schema(engine: Engine, auto_migrate: bool) -> SchemaState:
    """At start-up: migrate, or refuse to run on a schema this code doesn't match."""
    if auto_migrate:
        return upgrade(engine)
    state = schema_state(engine)
    if not state.at_head:
        url = engine.url.render_as_string(hide_password=True)
        raise SchemaNotCurrent(
            f"database {url} is {state.describe()}; this stream_server needs revision {state.head}. "
            f"Run `{UPGRADE_COMMAND}` with the same STREAM_SERVER_DATABASE_URL, "
            "or set STREAM_SERVER_DATABASE_AUTO_MIGRATE=true"
        )
    return state


def history() -> list[str]:
    """Revisions, newest first, one line each."""
    head = scripts().get_current_head()
    return [
        f"{script.down_revision or '<base>'} -> {script.revision}{' (head)' if script.revision == head else ''}: "
        f"{script.doc.splitlines()[0] if script.doc else ''}"
        for script in scripts().walk_revisions()
    ]
