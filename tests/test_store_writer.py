"""StoreWriter: a refused write waits, later writes queue behind it in order, nothing is lost.

The writes here are plain functions standing in for CallStore methods: what is under test is
the ordering and holding, which is the same for any write. The real database refusing writes
on a real full disk is tests/test_durability.py.
"""

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from stream_server.store.storage_health import StorageHealth
from stream_server.store.writer import HELD, StoreWriter

FULL = OperationalError("INSERT ...", {}, Exception("database or disk is full"))


class Database:
    """Rows written, in order; refuses every write while `full`."""

    def __init__(self) -> None:
        self.rows: list[str] = []
        self.full = False

    def insert(self, row: str) -> int:
        if self.full:
            raise FULL
        self.rows.append(row)
        return len(self.rows)


@pytest.fixture
def writer():
    with ThreadPoolExecutor(max_workers=1) as executor:
        yield StoreWriter(executor, StorageHealth())


def test_writes_refused_for_now_are_held_and_written_in_order_when_the_database_takes_them(writer):
    db = Database()
    events = []
    writer.health.subscribe(lambda e: events.append((e["kind"], e["state"])))

    async def scenario():
        assert await writer.write(db.insert, "call") == 1
        db.full = True
        assert await writer.write(db.insert, "segment 1") is HELD
        db.full = False  # space returns, but "segment 2" must not overtake "segment 1"
        assert await writer.write(db.insert, "segment 2") == 3
        assert writer.held == 0

    asyncio.run(scenario())
    assert db.rows == ["call", "segment 1", "segment 2"]
    assert events == [("database", "failing"), ("database", "ok")]


def test_held_writes_are_retried_without_new_writes(writer):
    db = Database()

    async def scenario():
        db.full = True
        for i in range(3):
            await writer.write(db.insert, f"row {i}")
        assert writer.held == 3 and await writer.retry() == 3  # still full
        assert writer.health.failing("database") and writer.health.held("database") == 3
        db.full = False
        assert await writer.retry() == 0

    asyncio.run(scenario())
    assert db.rows == ["row 0", "row 1", "row 2"] and not writer.health.failing("database")


def test_a_held_write_that_fails_for_good_is_dropped_and_does_not_block_the_rest(writer):
    db = Database()

    def duplicate(_row: str) -> None:
        raise IntegrityError("INSERT ...", {}, Exception("UNIQUE constraint failed"))

    calls = {"n": 0}

    def first_refused_then_duplicate(row: str) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise FULL
        duplicate(row)

    async def scenario():
        assert await writer.write(first_refused_then_duplicate, "bad") is HELD
        await writer.write(db.insert, "good")  # behind the bad one
        assert await writer.retry() == 0

    asyncio.run(scenario())
    assert db.rows == ["good"] and writer.dropped == 1


def test_errors_that_will_not_pass_reach_the_caller_at_once(writer):
    def broken(_row: str) -> None:
        raise ValueError("a bug, not a full disk")

    with pytest.raises(ValueError):
        asyncio.run(writer.write(broken, "x"))
    assert writer.held == 0 and not writer.health.failing("database")


def test_over_the_bound_the_oldest_held_write_is_dropped(writer):
    db = Database()
    writer.max_held = 2

    async def scenario():
        db.full = True
        for i in range(3):
            await writer.write(db.insert, f"row {i}")
        db.full = False
        await writer.retry()

    asyncio.run(scenario())
    assert db.rows == ["row 1", "row 2"] and writer.dropped == 1
