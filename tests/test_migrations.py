"""Alembic migrations on SQLite and on a real PostgreSQL: the shipped migrations build
exactly the models' schema, databases from before migrations keep their calls, and a
server that may not migrate says what to run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, MetaData, String, create_engine, inspect, make_url, text
from sqlalchemy.exc import IntegrityError, OperationalError

from stream_server.store import migrate
from stream_server.store.migrate import (
    INITIAL_REVISION,
    SchemaNotCurrent,
    SchemaState,
    schema_state,
    upgrade,
)
from stream_server.store.repository import CallStore, make_engine

HEAD_REVISION = "0004"  # the newest file in stream_server/store/migrations/versions
from stream_server.store.schema import Base, CallRow
from tests.live_server import start_server, stop_server

POSTGRES_URL = os.environ.get("STREAM_SERVER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TABLES = {"calls", "segments", "alerts", "alert_actions", "users", "api_tokens", "audit_log"}
META = {"from": "+81312345678", "utm_source": "google"}


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh schema of its own in the test database, so concurrent runs don't meet."""
    admin = create_engine(POSTGRES_URL)
    try:
        with admin.connect():
            pass
    except OperationalError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no PostgreSQL at {POSTGRES_URL}: {exc.orig}")
    schema = f"migrations_{uuid.uuid4().hex[:12]}"
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'stream_server.db'}"
    return request.getfixturevalue("postgres_url")


def schema_diff(url: str, metadata: MetaData = Base.metadata) -> list:
    """What autogenerate would put in a new migration: empty = the database matches."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return [d for d in compare_metadata(context, metadata)]
    finally:
        engine.dispose()


def create_all_era_database(url: str) -> None:
    """What every release before migrations left behind: create_all's tables (which revision
    0001 reproduces exactly), no alembic_version."""
    engine = make_engine(url)
    upgrade(engine, INITIAL_REVISION)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE alembic_version"))
        connection.execute(
            CallRow.__table__.insert().values(
                id="old-call", carrier="twilio", carrier_call_id="CA1", stream_id="MZ1", caller_number="+8190",
                metadata=META, tracks=["caller"], status="ended", started_at=datetime(2025, 1, 1, tzinfo=UTC),
                max_score=0.9, alert_count=1, stats={},
            )
        )
    engine.dispose()


def table_names(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def schema_state_of(url: str) -> SchemaState:
    engine = make_engine(url)
    try:
        return schema_state(engine)
    finally:
        engine.dispose()


def test_upgrade_head_builds_exactly_the_models_schema(database_url):
    engine = make_engine(database_url)
    state = upgrade(engine)
    engine.dispose()
    assert state.at_head and state.current == HEAD_REVISION
    assert table_names(database_url) == TABLES | {"alembic_version"}
    # The guard for every future schema edit: a model change without a migration fails here.
    assert schema_diff(database_url) == []


def test_a_model_change_without_a_migration_is_caught(database_url):
    engine = make_engine(database_url)
    upgrade(engine)
    engine.dispose()
    changed = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["calls"].append_column(Column("queue", String(64)))
    diff = schema_diff(database_url, changed)
    assert [(d[0], d[3].name) for d in diff] == [("add_column", "queue")]


def test_create_all_era_database_is_stamped_and_keeps_its_calls(database_url):
    create_all_era_database(database_url)

    store = CallStore(database_url)
    try:
        old = store.get_call("old-call")
        store.create_call("new-call", "twilio", ["caller"], META)
        store.add_segment("new-call", "caller", 0.0, 1.0, "you idiot", "en", {"insult": 0.9}, True)
        new = store.get_call("new-call")
        state = schema_state(store.engine)
    finally:
        store.close()
    assert old["caller_number"] == "+8190" and old["metadata"] == META and old["alert_count"] == 1
    assert new["max_score"] == 0.9 and [s["text"] for s in new["segments"]] == ["you idiot"]
    assert state.at_head
    assert schema_diff(database_url) == []


LATER_MIGRATION = """
import sqlalchemy as sa
from alembic import op

revision = "0099"
down_revision = HEAD
branch_labels = depends_on = None


def upgrade():
    with op.batch_alter_table("calls") as batch:  # on SQLite: copy calls, drop the old one
        batch.add_column(sa.Column("queue", sa.String(64), nullable=True))
        batch.alter_column("campaign", type_=sa.String(512))
"""


def test_a_later_migration_that_rebuilds_calls_keeps_their_segments(database_url, tmp_path, monkeypatch):
    """The shape of future ALTERs: SQLite rebuilds the table, with segments pointing at it."""
    store = CallStore(database_url)
    store.create_call("c1", "twilio", ["caller"], META)
    store.add_segment("c1", "caller", 0.0, 1.0, "you idiot", "en", {"insult": 0.9}, True)
    store.close()
    migrations = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS_DIR, migrations, ignore=shutil.ignore_patterns("__pycache__"))
    (migrations / "versions" / "0099_queue.py").write_text(LATER_MIGRATION.replace("HEAD", repr(HEAD_REVISION)))
    monkeypatch.setattr(migrate, "MIGRATIONS_DIR", migrations)

    store = CallStore(database_url)
    try:
        assert schema_state(store.engine).current == "0099"
        assert [s["text"] for s in store.get_call("c1")["segments"]] == ["you idiot"]
        with pytest.raises(IntegrityError):  # foreign keys are enforced again after the migration
            store.add_segment("no-such-call", "caller", 0.0, 1.0, "x", None, {}, False)
    finally:
        store.close()
    assert "queue" in {c["name"] for c in inspect_columns(database_url, "calls")}


def inspect_columns(url: str, table: str) -> list[dict]:
    engine = make_engine(url)
    try:
        return inspect(engine).get_columns(table)
    finally:
        engine.dispose()


def test_without_auto_migrate_an_out_of_date_database_is_refused_untouched(database_url):
    create_all_era_database(database_url)
    with pytest.raises(SchemaNotCurrent, match="stream-server db upgrade"):
        CallStore(database_url, auto_migrate=False)
    assert "alembic_version" not in table_names(database_url)  # refused means not written

    engine = make_engine(database_url)
    upgrade(engine)
    engine.dispose()
    store = CallStore(database_url, auto_migrate=False)
    try:
        assert store.get_call("old-call")["carrier"] == "twilio"
    finally:
        store.close()


def test_a_database_migrated_by_a_newer_version_is_refused(database_url):
    CallStore(database_url).close()
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'ffff_from_the_future'"))
    engine.dispose()
    with pytest.raises(SchemaNotCurrent, match="ffff_from_the_future.*newer version"):
        CallStore(database_url)


def test_nodes_starting_together_on_a_fresh_database_all_come_up(database_url):
    """Several processes of a deployment start at once; they take turns to migrate."""
    env = {**os.environ, "STREAM_SERVER_DATABASE_URL": database_url}
    nodes = [
        subprocess.Popen([sys.executable, "-m", "stream_server.cli", "db", "upgrade"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    results = [(node.wait(timeout=120), node.stderr.read()) for node in nodes]
    for node in nodes:
        node.stdout.close()
        node.stderr.close()
    assert [rc for rc, _ in results] == [0] * 4, results
    assert schema_state_of(database_url).at_head
    assert schema_diff(database_url) == []


def run_cli(*args: str, url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "STREAM_SERVER_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "stream_server.cli", "db", *args],
        check=False, env=env, capture_output=True, text=True, timeout=60,
    )


def test_db_command_upgrades_and_reports_the_revision(database_url):
    create_all_era_database(database_url)

    before = run_cli("current", url=database_url)
    upgraded = run_cli("upgrade", url=database_url)
    after = run_cli("current", url=database_url)
    history = run_cli("history", url=database_url)

    assert before.returncode == 0 and "unversioned" in before.stdout, before.stderr
    assert upgraded.returncode == 0, upgraded.stderr
    assert after.returncode == 0 and f"revision {HEAD_REVISION} (head)" in after.stdout
    assert f"-> {HEAD_REVISION} (head)" in history.stdout
    assert schema_diff(database_url) == []


def test_db_command_uses_the_data_dir_sqlite_by_default(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "STREAM_SERVER_DATABASE_URL"}
    data_dir = tmp_path / "fresh"  # doesn't exist yet
    result = subprocess.run(
        [sys.executable, "-m", "stream_server.cli", "db", "upgrade", "--data-dir", str(data_dir)],
        check=False, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert schema_state_of(f"sqlite:///{data_dir / 'stream_server.db'}").at_head


def test_server_refuses_to_start_on_an_unmigrated_database_when_told_not_to_migrate(tmp_path):
    with pytest.raises(RuntimeError, match=r"server exited(.|\n)*stream-server db upgrade"):
        start_server(tmp_path / "data", {"STREAM_SERVER_DATABASE_AUTO_MIGRATE": "false"}, timeout=60)


def test_server_upgraded_over_a_create_all_era_data_dir_serves_the_old_calls(tmp_path: Path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    create_all_era_database(f"sqlite:///{data_dir / 'stream_server.db'}")
    server = start_server(data_dir)
    try:
        with server.client() as client:
            response = client.get("/v1/calls/old-call")
    finally:
        stop_server(server)
    assert response.status_code == 200
    assert response.json()["caller_number"] == "+8190"
