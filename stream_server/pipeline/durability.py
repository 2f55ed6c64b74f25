"""What keeps a call's evidence whole when storage fails for a while, and after a crash.

- `seal_recordings`: the SHA-256 of a call's finished recordings, stored with the call (the
  evidence export is later checked against it).
- `StorageRetry`: once a second, writes the audio and rows that a full disk or an unreachable
  database refused (store/recordings.py, store/writer.py), and seals the calls whose audio has
  only now been written completely.
- `announce_storage_changes`: a storage failure or recovery goes to the supervisors' feed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from ..evidence.integrity import sha256_file

if TYPE_CHECKING:
    from ..bus import EventBus
    from ..store.storage_health import StorageHealth
    from .session import CallServices

log = logging.getLogger(__name__)

RETRY_INTERVAL_S = 1.0


async def seal_recordings(services: CallServices, call_id: str) -> None:
    """Store the SHA-256 of each of the call's recording files. A failure is logged; the call
    still ends (its export then says it was never sealed)."""
    recordings = services.recordings
    try:
        paths = {f"{track}.wav": recordings.path(call_id, track) for track in recordings.tracks(call_id)}
        files = await asyncio.to_thread(lambda: {name: sha256_file(path) for name, path in paths.items()})
        await services.writer.write(services.store.seal_call, call_id, files)
    except Exception:
        log.exception("call %s: could not seal the recordings", call_id)


class StorageRetry:
    """The background task that retries refused writes (started in app.py)."""

    def __init__(self, services: CallServices, interval_s: float = RETRY_INTERVAL_S) -> None:
        self.services = services
        self.interval_s = interval_s
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="storage-retry")

    async def stop(self) -> None:
        """One last round (a disk that freed up at the end still gets its audio), then stop."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.round()
        held = self.services.writer.held
        audio = self.services.recordings.held_seconds()
        if held or audio:
            log.error("storage: stopping with %d database writes and %.1f s of audio still refused by storage; "
                      "they are lost", held, audio)

    async def round(self) -> None:
        for call_id in self.services.recordings.retry_held():
            log.warning("call %s: its held audio is on disk now; sealing its recordings", call_id)
            await seal_recordings(self.services, call_id)
        await self.services.writer.retry()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.round()
            except Exception:  # the next round tries again
                log.exception("storage: retry round failed")


def announce_storage_changes(health: StorageHealth, bus: EventBus) -> None:
    """Publish each change of storage state (`{"type": "storage", ...}`) on the bus. Changes are
    seen on the event loop (recordings) or the database thread: both hand over to the loop."""
    loop = asyncio.get_running_loop()
    in_flight: set[asyncio.Task] = set()

    def publish(event: dict[str, Any]) -> None:
        task = loop.create_task(bus.publish(event))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)

    health.subscribe(lambda event: loop.call_soon_threadsafe(publish, event))
