"""StoreWriter: a live call's database writes, in order, on one thread, never lost to a full
disk or a database that is down for a while.

A write the database refuses for a reason that passes (SQLite "database or disk is full" or
"locked", PostgreSQL unreachable or out of space: SQLAlchemy's OperationalError, or an
OSError) is held, and every later write waits behind it, so a segment is never stored before
its call. The held writes are retried once a second (`retry`, from the app's storage task)
and before each new write. The call goes on meanwhile: transcripts and alerts still reach the
supervisors, only their rows come later. Any other error (a bug, a constraint) is raised to
the caller as before; a held write that later fails that way is logged and dropped, so one
bad row never blocks the rest.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from sqlalchemy.exc import OperationalError

from .storage_health import DATABASE, StorageHealth

log = logging.getLogger(__name__)

# Refusals that pass: the same write can succeed later.
PASSING_ERRORS: tuple[type[BaseException], ...] = (OperationalError, OSError)
HELD = None  # what `write` returns for a write that is held for later


class StoreWriter:
    def __init__(self, executor: Executor, health: StorageHealth, max_held: int = 100_000) -> None:
        self.executor = executor  # one thread: writes stay in order and off the event loop
        self.health = health
        self.max_held = max_held
        self.dropped = 0  # held writes given up: over max_held, or failing for good
        self._held: deque[Callable[[], Any]] = deque()

    @property
    def held(self) -> int:
        return len(self._held)

    async def write(self, fn: Callable[..., Any], *args: Any) -> Any:
        """`fn(*args)` on the writer thread after every held write; its result, or HELD (None)
        when the database refused it for now."""
        return await self._run(self._write_now, functools.partial(fn, *args))

    async def read(self, fn: Callable[..., Any], *args: Any) -> Any:
        """`fn(*args)` on the writer thread (so it sees every write made before); errors raise."""
        return await self._run(functools.partial(fn, *args))

    async def retry(self) -> int:
        """Try the held writes again; how many are still held."""
        if not self._held:
            return 0
        return await self._run(self._retry_held)

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    # -- on the writer thread -----------------------------------------------------------------

    def _write_now(self, call: Callable[[], Any]) -> Any:
        if self._held and self._retry_held():
            self._hold(call)
            return HELD
        try:
            result = call()
        except PASSING_ERRORS as exc:
            self.health.failed(DATABASE, exc)
            self._hold(call)
            return HELD
        self.health.ok(DATABASE)
        return result

    def _retry_held(self) -> int:
        while self._held:
            call = self._held[0]
            try:
                call()
            except PASSING_ERRORS as exc:
                self.health.failed(DATABASE, exc)
                break
            except Exception:
                self.dropped += 1
                log.exception("store: a held write failed for good and is dropped: %s", _name(call))
            self._held.popleft()
        self.health.set_held(DATABASE, len(self._held))
        if not self._held:
            self.health.ok(DATABASE)
        return len(self._held)

    def _hold(self, call: Callable[[], Any]) -> None:
        self._held.append(call)
        if len(self._held) > self.max_held:
            self.dropped += 1
            log.error("store: over %d held writes; dropping the oldest: %s", self.max_held,
                      _name(self._held.popleft()))
        self.health.set_held(DATABASE, len(self._held))


def _name(call: Callable[[], Any]) -> str:
    func = getattr(call, "func", call)
    return getattr(func, "__name__", repr(func))
