"""The event bus on Redis, so a supervisor on any node sees every call's events.

Why a Redis Stream and not pub/sub: pub/sub forgets whatever is published while a node's
connection is down, and a supervisor missing the one `alert` of a call is the failure this
product exists to prevent. So every event is appended (XADD, trimmed to about `maxlen`
entries) to one stream, `<prefix>:events`, and each node reads it with XREAD from the last
entry id it delivered. A node whose connection blips resumes from that id: nothing lost (as
long as the gap is shorter than the trimmed history), nothing repeated.

Every node, the publishing one included, delivers an event to its local subscribers only
when it reads it back from the stream. So all nodes see all events in the same order, and
a local publish is never delivered twice.

The pipeline never waits on Redis: `publish` appends to a bounded outbox that one writer
task drains in pipelined batches. While Redis is unreachable the outbox keeps the newest
`outbox_size` events and drops (and counts, `dropped_publishes`) the oldest; they are sent
when Redis returns. A batch whose reply was lost may be sent again, so each entry carries
its node id and a per-node sequence number and readers skip what they already delivered.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import deque
from itertools import islice
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from . import redacted
from .memory import LocalFanout

log = logging.getLogger("stream_server.bus")

FAILURES = (RedisError, OSError)  # connection refused, reset, timed out, or a Redis error reply
BATCH = 500  # entries per XADD pipeline / XREAD reply
READ_BLOCK_MS = 1000  # how long one XREAD waits; the socket timeout must be longer


class BusUnavailable(RuntimeError):
    """Redis could not be reached when the node started."""


class Backoff:
    """Waits that double from `first` to `most` seconds while Redis stays down."""

    def __init__(self, first: float = 0.1, most: float = 5.0) -> None:
        self.first, self.most = first, most
        self.delay = first
        self.down_since: float | None = None

    def failed(self) -> float:
        if self.down_since is None:
            self.down_since = time.monotonic()
        delay, self.delay = self.delay, min(self.most, self.delay * 2)
        return delay

    def succeeded(self) -> float | None:
        """Seconds the outage lasted, or None when there was none."""
        if self.down_since is None:
            return None
        outage, self.down_since, self.delay = time.monotonic() - self.down_since, None, self.first
        return outage


def _id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class RedisBus(LocalFanout):
    kind = "redis"

    def __init__(
        self,
        url: str,
        prefix: str = "stream_server",
        queue_size: int = 1000,
        maxlen: int = 100_000,
        outbox_size: int = 10_000,
    ) -> None:
        super().__init__(queue_size)
        self.url = url
        self.stream = f"{prefix}:events"
        self.node = uuid.uuid4().hex[:12]
        self.maxlen = maxlen
        self.outbox_size = outbox_size
        self.dropped_publishes = 0
        self._outbox: deque[tuple[int, str]] = deque()  # (sequence, event JSON), oldest first
        self._sent = asyncio.Event()
        self._pending = asyncio.Event()
        self._seq = 0
        self._seen: dict[str, int] = {}  # publishing node → highest sequence delivered here
        self._last_id = "0-0"
        self._reader_down = self._writer_down = False
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._reader_redis = self._client("reader")
        self._writer_redis = self._client("writer")

    def _client(self, role: str) -> Redis:
        return Redis.from_url(
            self.url,
            decode_responses=True,
            socket_connect_timeout=5,
            socket_timeout=READ_BLOCK_MS / 1000 + 5,
            client_name=f"stream_server-bus-{self.node}-{role}",  # CLIENT LIST shows which node is which
        )

    @property
    def connected(self) -> bool:
        return bool(self._tasks) and not (self._reader_down or self._writer_down)

    @property
    def outbox_depth(self) -> int:
        return len(self._outbox)

    async def start(self) -> None:
        """Check Redis answers and note where the stream ends: this node delivers what comes after."""
        try:
            newest = await self._reader_redis.xrevrange(self.stream, count=1)
        except FAILURES as exc:
            await self._close_clients()
            raise BusUnavailable(f"event bus: cannot reach Redis at {redacted(self.url)}: {exc}") from exc
        self._last_id = newest[0][0] if newest else "0-0"
        self._tasks = [
            asyncio.create_task(self._read(), name="bus-reader"),
            asyncio.create_task(self._write(), name="bus-writer"),
        ]
        log.info("event bus on Redis %s, stream %s, node %s", redacted(self.url), self.stream, self.node)

    async def stop(self, flush_timeout: float = 2.0) -> None:
        """Give the writer a moment to send what is left (e.g. the call.ended of a shutdown)."""
        if self._outbox and not self._writer_down:
            try:
                await asyncio.wait_for(self._flushed(), flush_timeout)
            except TimeoutError:
                pass
        if self._outbox:
            log.warning("event bus: %d events not sent to Redis at shutdown", len(self._outbox))
        # The reader is asked, not cancelled: redis-py can swallow a cancel that lands in a
        # blocking XREAD, which hung shutdown. It sees the flag within one XREAD block.
        self._stopping = True
        if self._tasks:
            reader, writer = self._tasks
            writer.cancel()
            done, _ = await asyncio.wait([reader], timeout=READ_BLOCK_MS / 1000 + 2)
            if not done:
                reader.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self._close_clients()

    async def _flushed(self) -> None:
        while self._outbox:
            self._sent.clear()
            await self._sent.wait()

    async def _close_clients(self) -> None:
        for client in (self._reader_redis, self._writer_redis):
            await client.aclose()

    async def publish(self, event: dict[str, Any]) -> None:
        """Queue `event` for Redis; returns at once whatever state Redis is in."""
        try:
            # ASCII JSON: caller text may hold lone surrogates, which redis-py cannot encode.
            data = json.dumps(event, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            self.dropped_publishes += 1
            log.error("event bus: dropping an event that is not JSON (%s): %s", event.get("type"), exc)
            return
        self._seq += 1
        if len(self._outbox) >= self.outbox_size:
            self._outbox.popleft()
            self.dropped_publishes += 1
        self._outbox.append((self._seq, data))
        self._pending.set()

    async def _write(self) -> None:
        backoff = Backoff()
        while True:
            if not self._outbox:
                self._pending.clear()
                await self._pending.wait()
            batch = list(islice(self._outbox, BATCH))
            try:
                async with self._writer_redis.pipeline(transaction=False) as pipe:
                    for seq, data in batch:
                        pipe.xadd(self.stream, {"n": self.node, "s": seq, "e": data},
                                  maxlen=self.maxlen, approximate=True)
                    await pipe.execute()
            except FAILURES as exc:
                self._writer_down = True
                self._log_failure("publish", backoff, exc)
                await asyncio.sleep(backoff.failed())
                continue
            except Exception:
                # Not Redis being away but this batch: retrying it would wedge the writer forever.
                log.exception("event bus: dropping %d events Redis would not take", len(batch))
                self.dropped_publishes += len(batch)
            self._writer_down = False
            self._log_recovery("publish", backoff)
            last_sent = batch[-1][0]
            while self._outbox and self._outbox[0][0] <= last_sent:  # publish() may have dropped some meanwhile
                self._outbox.popleft()
            self._sent.set()

    async def _read(self) -> None:
        backoff = Backoff()
        while not self._stopping:
            try:
                reply = await self._reader_redis.xread({self.stream: self._last_id}, count=BATCH, block=READ_BLOCK_MS)
                if backoff.down_since is not None:
                    await self._check_gap()
            except FAILURES as exc:
                self._reader_down = True
                self._log_failure("read", backoff, exc)
                await asyncio.sleep(backoff.failed())
                continue
            self._reader_down = False
            self._log_recovery("read", backoff)
            streams = reply.items() if isinstance(reply, dict) else (reply or [])  # RESP3 / RESP2 shapes
            for _stream, entries in streams:
                for entry_id, fields in entries:
                    self._last_id = entry_id
                    self._deliver(entry_id, fields)

    def _deliver(self, entry_id: str, fields: dict[str, str]) -> None:
        try:
            node, seq, event = fields["n"], int(fields["s"]), json.loads(fields["e"])
        except (KeyError, ValueError) as exc:
            log.warning("event bus: skipping malformed entry %s in %s: %s", entry_id, self.stream, exc)
            return
        if seq <= self._seen.get(node, 0):
            return  # a batch its publisher re-sent after a lost reply
        self._seen[node] = seq
        self.fan_out(event)

    async def _check_gap(self) -> None:
        """After an outage: warn if the stream was trimmed past where this node stopped reading."""
        oldest = await self._reader_redis.xrange(self.stream, count=1)
        if oldest and self._last_id != "0-0" and _id(oldest[0][0]) > _id(self._last_id):
            log.warning("event bus: the stream was trimmed past entry %s during the outage; "
                        "supervisors on this node missed events (raise maxlen)", self._last_id)

    def _log_failure(self, what: str, backoff: Backoff, exc: BaseException) -> None:
        level = logging.WARNING if backoff.down_since is None else logging.DEBUG
        log.log(level, "event bus: cannot %s Redis at %s (%s: %s); retrying", what, redacted(self.url),
                type(exc).__name__, exc)

    def _log_recovery(self, what: str, backoff: Backoff) -> None:
        outage = backoff.succeeded()
        if outage is not None:
            log.warning("event bus: %s Redis again after %.1f s (%d events waiting to be sent, %d dropped so far)",
                        what, outage, len(self._outbox), self.dropped_publishes)
