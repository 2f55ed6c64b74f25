"""Whether the server can write what it must keep: recordings (files) and the database.

Writers report each refused write (`failed`) and each write that went through (`ok`); only a
change of state is announced, to listeners such as the supervisor feed, so a full disk shows
up once on the board, and once more when space returns. Thread-safe: recordings are written
on the event loop, the database on its own thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

RECORDINGS, DATABASE = "recordings", "database"


@dataclass
class _State:
    failing_since: datetime | None = None
    error: str = ""
    write_errors: int = 0  # refused writes since start
    held: float = 0.0  # what waits in memory to be written: seconds of audio / queued rows


class StorageHealth:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, _State] = {RECORDINGS: _State(), DATABASE: _State()}
        self._listeners: list[Callable[[dict[str, Any]], None]] = []

    def subscribe(self, listener: Callable[[dict[str, Any]], None]) -> None:
        """`listener(event)` on every change of state, on the thread that saw it."""
        self._listeners.append(listener)

    def failed(self, kind: str, error: BaseException) -> None:
        """A write of `kind` was refused (disk full, database unreachable...)."""
        with self._lock:
            state = self._states[kind]
            state.write_errors += 1
            changed = state.failing_since is None
            if changed:
                state.failing_since, state.error = datetime.now(UTC), _describe(error)
        if changed:
            log.error("storage: %s writes are failing (%s); holding them in memory and retrying", kind,
                      _describe(error))
            self._announce(kind)

    def ok(self, kind: str) -> None:
        """A write of `kind` went through: if it was failing, it has recovered."""
        if self._states[kind].failing_since is None:  # the common case, without the lock
            return
        with self._lock:
            state = self._states[kind]
            changed = state.failing_since is not None
            state.failing_since, state.error = None, ""
        if changed:
            log.warning("storage: %s writes work again", kind)
            self._announce(kind)

    def set_held(self, kind: str, amount: float) -> None:
        self._states[kind].held = amount

    def failing(self, kind: str) -> bool:
        return self._states[kind].failing_since is not None

    @property
    def degraded(self) -> bool:
        return any(state.failing_since is not None for state in self._states.values())

    def write_errors(self, kind: str) -> int:
        return self._states[kind].write_errors

    def held(self, kind: str) -> float:
        return self._states[kind].held

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Per kind: `ok` or `failing` (since when, why), as /healthz and the feed's hello show it."""
        with self._lock:
            return {kind: _describe_state(state) for kind, state in self._states.items()}

    def _announce(self, kind: str) -> None:
        event = {"type": "storage", "kind": kind, **self.snapshot()[kind]}
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:  # a listener's failure must not break the writer that reported
                log.exception("storage listener failed")


def _describe(error: BaseException) -> str:
    """"No space left on device", "(sqlite3.OperationalError) database or disk is full"."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:200]


def _describe_state(state: _State) -> dict[str, Any]:
    if state.failing_since is None:
        return {"state": "ok", "write_errors": state.write_errors}
    return {"state": "failing", "since": state.failing_since.isoformat(), "error": state.error,
            "write_errors": state.write_errors, "held": round(state.held, 1)}
