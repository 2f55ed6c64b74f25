"""ASR across processes: ingest nodes queue utterances on Redis Streams, ASR workers take them.

Keys, under the bus prefix:

- ``<prefix>:asr:caller`` and ``<prefix>:asr:agent``: the work, read by the consumer group
  ``asr``. Workers take caller work first, so when they fall behind it is the agent track's
  transcripts (QA's, not alerts') that wait; nothing is dropped.
- ``<prefix>:asr:results:<node>``: the results for one ingest node, which only it reads.

A worker acknowledges a job only after writing its result. One that dies leaves its jobs
pending in the group; another worker claims them (XAUTOCLAIM) once they have been idle for
``claim_idle_s``. Live workers keep their own jobs fresh (XCLAIM to themselves) so that a slow
batch is not taken for a dead worker's. A job can therefore be done twice (its worker died
after writing the result, before the ack): the ingest node resolves each job once and counts
the repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from ..bus import redacted
from ..bus.redis import FAILURES, Backoff
from .engine import Transcription
from .scheduler import CLASS_NAMES, AsrScheduler, SchedulerStats, job_priority

log = logging.getLogger(__name__)

GROUP = "asr"
WORK_KINDS = ("caller", "agent")  # one stream each, read in this order
READ_BLOCK_MS = 1000
RESULTS_MAXLEN = 10_000
RESULTS_TTL_S = 3600
BLOCKING_READERS = ("asr-queue-receive", "asr-worker-take")  # tasks that sit in XREAD ... BLOCK  # the results stream of an ingest node that is gone expires


def work_stream(prefix: str, kind: str) -> str:
    return f"{prefix}:asr:{kind}"


def _client(url: str, name: str) -> Redis:
    # Raw bytes: jobs carry 16-bit PCM.
    return Redis.from_url(url, decode_responses=False, socket_connect_timeout=5,
                          socket_timeout=READ_BLOCK_MS / 1000 + 5, client_name=name)


def _text(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


def encode_audio(audio: np.ndarray) -> bytes:
    """Float samples in [-1, 1) (16 kHz) → 16-bit little-endian PCM, half the bytes on the wire."""
    return np.clip(np.round(audio * 32768.0), -32768, 32767).astype("<i2").tobytes()


def decode_audio(pcm16: bytes) -> np.ndarray:
    return np.frombuffer(pcm16, dtype="<i2").astype(np.float32) / 32768.0


@dataclass(frozen=True)
class AsrJob:
    """One utterance as it travels from an ingest node to a worker."""

    id: str
    reply_to: str  # the results stream of the node that waits for it
    track: str
    partial: bool
    language: str | None
    audio: np.ndarray
    queued_at: float  # wall-clock time, for the queue-wait metric

    def fields(self) -> dict[str, bytes | str]:
        return {"id": self.id, "reply": self.reply_to, "track": self.track, "partial": "1" if self.partial else "0",
                "lang": self.language or "", "t": repr(self.queued_at), "pcm": encode_audio(self.audio)}

    @classmethod
    def from_fields(cls, fields: dict[bytes, bytes]) -> AsrJob:
        """Raises KeyError / ValueError on an entry that is not a job."""
        return cls(id=_text(fields[b"id"]), reply_to=_text(fields[b"reply"]), track=_text(fields[b"track"]),
                   partial=fields[b"partial"] == b"1", language=_text(fields.get(b"lang")) or None,
                   audio=decode_audio(fields[b"pcm"]), queued_at=float(fields[b"t"]))


def result_fields(job_id: str, result: Transcription | None, error: str | None = None) -> dict[str, str]:
    if error is not None:
        return {"id": job_id, "error": error[:500]}
    return {"id": job_id, "result": json.dumps(None if result is None else asdict(result))}


def result_from_fields(fields: dict[bytes, bytes]) -> tuple[str, Transcription | None, str | None]:
    job_id = _text(fields[b"id"])
    if b"error" in fields:
        return job_id, None, _text(fields[b"error"])
    data = json.loads(fields[b"result"])
    return job_id, None if data is None else Transcription(**data), None


class RemoteAsr:
    """The ingest node's side: what CallSession sees as its ASR (the AsrScheduler interface),
    backed by the shared queue instead of a model in this process."""

    kind = "redis"
    workers = 0  # no model here
    load_window_s = 10.0
    max_partial_load = 0.0

    def __init__(self, url: str, prefix: str = "stream_server", node: str | None = None) -> None:
        self.url, self.prefix = url, prefix
        self.node = node or uuid.uuid4().hex[:12]
        self.results = f"{prefix}:asr:results:{self.node}"
        self.stats = SchedulerStats()
        self.duplicates = 0  # results for jobs already resolved (done twice after a claim)
        self.backlog: dict[str, int] = dict.fromkeys(WORK_KINDS, 0)  # waiting or running, all nodes
        self._seq = itertools.count(1)
        self._waiting: dict[str, tuple[asyncio.Future, int]] = {}  # job id → (future, priority class)
        self._outbox: asyncio.Queue[AsrJob] = asyncio.Queue()
        self._redis = _client(url, f"stream_server-asr-ingest-{self.node}")
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    async def start(self) -> None:
        await ensure_group(self._redis, self.prefix)  # fails start-up, not the first call, when Redis is away
        self._tasks = [asyncio.create_task(self._send(), name="asr-queue-send"),
                       asyncio.create_task(self._receive(), name="asr-queue-receive"),
                       asyncio.create_task(self._watch_backlog(), name="asr-queue-backlog")]
        log.info("ASR on the shared queue at %s (%s:asr:*), node %s", redacted(self.url), self.prefix, self.node)

    async def stop(self) -> None:
        await _stop_tasks(self, self._tasks)
        self._tasks = []
        for future, _ in self._waiting.values():
            future.cancel()
        self._waiting.clear()
        await self._redis.aclose()

    # -- the AsrScheduler interface CallSession, /healthz and /metrics use ---------------------

    @property
    def idle(self) -> bool:
        return not self._waiting

    @property
    def load(self) -> float:
        return 0.0 if not sum(self.backlog.values()) else 1.0

    @property
    def spare_capacity(self) -> bool:
        """Interim transcripts only while the workers have nothing queued: they are optional."""
        return self.idle and not any(self.backlog.values())

    @property
    def queue_depth(self) -> int:
        return len(self._waiting)

    def queued(self) -> dict[str, int]:
        """This node's jobs not yet answered, per class."""
        counts = dict.fromkeys(CLASS_NAMES, 0)
        for future, priority in self._waiting.values():
            if not future.done():
                counts[CLASS_NAMES[priority]] += 1
        return counts

    def transcribe(self, audio: np.ndarray, language: str | None, *, track: str, partial: bool,
                   key: object = None) -> asyncio.Future:
        """Queue one utterance; the future resolves to the worker's result (None = no speech)."""
        future = asyncio.get_running_loop().create_future()
        job = AsrJob(f"{self.node}-{next(self._seq)}", self.results, track, partial, language, audio, time.time())
        self._waiting[job.id] = (future, job_priority(track, partial))
        self._outbox.put_nowait(job)
        return future

    # -- Redis -----------------------------------------------------------------------------------

    async def _send(self) -> None:
        """Jobs go out in order; while Redis is away they wait here (the recording goes on)."""
        backoff = Backoff()
        while True:
            job = await self._outbox.get()
            while job.id in self._waiting:
                try:
                    await self._redis.xadd(work_stream(self.prefix, "caller" if job.track == "caller" else "agent"),
                                           job.fields())
                    backoff.succeeded()
                    break
                except FAILURES as exc:
                    log.warning("ASR queue: cannot queue job %s (%s); retrying", job.id, exc)
                    await asyncio.sleep(backoff.failed())

    async def _receive(self) -> None:
        backoff, last = Backoff(), b"0-0"
        while not self._stopping:
            try:
                reply = await self._redis.xread({self.results: last}, count=100, block=READ_BLOCK_MS)
                backoff.succeeded()
            except FAILURES as exc:
                log.warning("ASR queue: cannot read results (%s); retrying", exc)
                await asyncio.sleep(backoff.failed())
                continue
            for _stream, entries in _entries(reply):
                for entry_id, fields in entries:
                    last = entry_id
                    self._resolve(fields)
                with contextlib.suppress(*FAILURES):
                    await self._redis.xdel(self.results, *[entry_id for entry_id, _ in entries])

    def _resolve(self, fields: dict[bytes, bytes]) -> None:
        try:
            job_id, result, error = result_from_fields(fields)
        except (KeyError, ValueError, TypeError) as exc:
            log.error("ASR queue: unreadable result on %s: %s", self.results, exc)
            return
        waiting = self._waiting.pop(job_id, None)
        if waiting is None:
            self.duplicates += 1
            return
        future, priority = waiting
        self.stats.jobs_done += 1
        self.stats.jobs_by_class[CLASS_NAMES[priority]] += 1
        if future.done():
            return  # a partial the session gave up on
        if error is not None:
            future.set_exception(RuntimeError(f"ASR worker failed: {error}"))
        else:
            future.set_result(result)

    async def _watch_backlog(self) -> None:
        """Work waiting or running on the workers, every node's: what decides partials, and a
        gauge an operator sizes the worker pool by."""
        while True:
            for kind in WORK_KINDS:
                with contextlib.suppress(*FAILURES):
                    self.backlog[kind] = await _backlog(self._redis, work_stream(self.prefix, kind))
            with contextlib.suppress(*FAILURES):
                await self._redis.expire(self.results, RESULTS_TTL_S)
            await asyncio.sleep(1.0)


async def _stop_tasks(owner: RemoteAsr | AsrWorker, tasks: list[asyncio.Task[None]]) -> None:
    """Stop background tasks. Those in a blocking XREAD are asked (`_stopping`), not only
    cancelled: redis-py can swallow a cancel that lands there, which hung shutdown (as in
    bus/redis.py). They see the flag within one read block."""
    owner._stopping = True
    slot_free = getattr(owner, "_slot_free", None)
    if slot_free is not None:
        slot_free.set()  # a worker waiting for a free slot wakes up and sees the flag
    readers = [t for t in tasks if t.get_name() in BLOCKING_READERS]
    for task in tasks:
        if task not in readers:
            task.cancel()
    _, pending = await asyncio.wait(readers, timeout=READ_BLOCK_MS / 1000 + 2) if readers else (set(), set())
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def ensure_group(redis: Redis, prefix: str) -> None:
    """Create the work streams and their consumer group once; whoever comes first (an ingest node
    or a worker) does it, so speech queued before any worker starts is not missed, and counted."""
    for kind in WORK_KINDS:
        try:
            await redis.xgroup_create(work_stream(prefix, kind), GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise


async def _backlog(redis: Redis, stream: str) -> int:
    """Entries not yet delivered (lag) plus delivered but not acknowledged (pending)."""
    try:
        groups = await redis.xinfo_groups(stream)
    except ResponseError:  # no such stream yet: nothing was ever queued
        return 0
    for group in groups:
        if _text(group.get("name") or group.get(b"name")) == GROUP:
            lag = group.get("lag", group.get(b"lag"))
            pending = group.get("pending", group.get(b"pending")) or 0
            return int(lag or 0) + int(pending)
    return 0


def _entries(reply: Any) -> list[tuple[Any, list[tuple[bytes, dict[bytes, bytes]]]]]:
    """XREAD / XREADGROUP reply → [(stream, entries)], RESP2 or RESP3 shaped."""
    if not reply:
        return []
    return list(reply.items()) if isinstance(reply, dict) else [(s, e) for s, e in reply]


class AsrWorker:
    """The ASR role: takes jobs from the shared queue into this process's AsrScheduler."""

    def __init__(self, scheduler: AsrScheduler, url: str, prefix: str = "stream_server",
                 claim_idle_s: float = 30.0, consumer: str | None = None) -> None:
        self.scheduler = scheduler
        self.url, self.prefix = url, prefix
        self.claim_idle_s = claim_idle_s
        self.consumer = consumer or uuid.uuid4().hex[:12]
        # Enough taken to keep every model thread fed with full batches, no more: a job that
        # waits here cannot be taken by an idle worker.
        self.capacity = scheduler.workers * scheduler.max_batch
        self.jobs_done = self.jobs_claimed = self.bad_jobs = 0
        self._streams = [work_stream(prefix, kind).encode() for kind in WORK_KINDS]
        self._in_flight: dict[bytes, list[bytes]] = {s: [] for s in self._streams}
        self._slot_free = asyncio.Event()
        self._redis = _client(url, f"stream_server-asr-worker-{self.consumer}")
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._jobs: set[asyncio.Task[None]] = set()

    @property
    def in_flight(self) -> int:
        return sum(len(ids) for ids in self._in_flight.values())

    async def start(self) -> None:
        await ensure_group(self._redis, self.prefix)
        self._tasks = [asyncio.create_task(self._take(), name="asr-worker-take"),
                       asyncio.create_task(self._keep_fresh(), name="asr-worker-heartbeat")]
        log.info("ASR worker %s on %s (%s:asr:*), up to %d jobs at a time", self.consumer, redacted(self.url),
                 self.prefix, self.capacity)

    async def stop(self, drain_s: float = 10.0) -> None:
        """Take nothing more; finish what is in hand for up to `drain_s` (what is left then is
        taken over by another worker after claim_idle_s, as after a crash)."""
        await _stop_tasks(self, self._tasks)
        if self._jobs:
            await asyncio.wait(set(self._jobs), timeout=drain_s)
        for task in self._jobs:
            task.cancel()
        await asyncio.gather(*self._jobs, return_exceptions=True)
        self._tasks, self._jobs = [], set()
        await self._redis.aclose()

    async def _take(self) -> None:
        backoff = Backoff()
        next_claim = 0.0
        while not self._stopping:
            free = self.capacity - self.in_flight
            if free <= 0:
                self._slot_free.clear()
                await self._slot_free.wait()
                continue
            try:
                entries: list[tuple[bytes, bytes, dict[bytes, bytes]]] = []
                if time.monotonic() >= next_claim:
                    entries = await self._claim(free)
                    next_claim = time.monotonic() + self.claim_idle_s / 4
                if not entries:
                    entries = await self._read(free)
                backoff.succeeded()
            except FAILURES as exc:
                log.warning("ASR worker: cannot take work from Redis (%s); retrying", exc)
                await asyncio.sleep(backoff.failed())
                continue
            for stream, entry_id, fields in entries:
                self._in_flight[stream].append(entry_id)
                task = asyncio.create_task(self._do(stream, entry_id, fields))
                self._jobs.add(task)
                task.add_done_callback(self._jobs.discard)

    async def _claim(self, count: int) -> list[tuple[bytes, bytes, dict[bytes, bytes]]]:
        """Jobs a dead worker left pending, caller work first."""
        taken: list[tuple[bytes, bytes, dict[bytes, bytes]]] = []
        for stream in self._streams:
            if len(taken) >= count:
                break
            reply = await self._redis.xautoclaim(stream, GROUP, self.consumer, int(self.claim_idle_s * 1000),
                                                 start_id="0-0", count=count - len(taken))
            claimed = [(stream, entry_id, fields) for entry_id, fields in reply[1] if fields]
            if claimed:
                log.warning("ASR worker %s: claimed %d jobs a stopped worker left on %s", self.consumer,
                            len(claimed), stream.decode())
            self.jobs_claimed += len(claimed)
            taken += claimed
        return taken

    async def _read(self, count: int) -> list[tuple[bytes, bytes, dict[bytes, bytes]]]:
        """New jobs: caller work if there is any, else wait (briefly) for either kind."""
        caller = await self._redis.xreadgroup(GROUP, self.consumer, {self._streams[0]: ">"}, count=count)
        if not _entries(caller):
            caller = await self._redis.xreadgroup(GROUP, self.consumer, {s: ">" for s in self._streams},
                                                  count=count, block=READ_BLOCK_MS)
        return [(_as_bytes(stream), entry_id, fields) for stream, entries in _entries(caller)
                for entry_id, fields in entries]

    async def _do(self, stream: bytes, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        try:
            try:
                job = AsrJob.from_fields(fields)
            except (KeyError, ValueError, TypeError) as exc:
                self.bad_jobs += 1
                log.error("ASR worker: dropping unreadable job %s on %s: %s", entry_id, stream, exc)
                await self._done(stream, entry_id)
                return
            try:
                result = await self.scheduler.transcribe(job.audio, job.language, track=job.track,
                                                         partial=job.partial)
                answer = result_fields(job.id, result)
            except Exception as exc:  # noqa: BLE001 - the ingest node must hear of it, not wait forever
                answer = result_fields(job.id, None, f"{type(exc).__name__}: {exc}")
            await self._redis.xadd(job.reply_to, answer, maxlen=RESULTS_MAXLEN, approximate=True)
            await self._done(stream, entry_id)
            self.jobs_done += 1
        except FAILURES as exc:
            # Not acknowledged and no longer kept fresh: another worker claims it.
            log.warning("ASR worker: Redis failed on job %s (%s); leaving it to be claimed", entry_id, exc)
        finally:
            with contextlib.suppress(ValueError):
                self._in_flight[stream].remove(entry_id)
            self._slot_free.set()

    async def _done(self, stream: bytes, entry_id: bytes) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xack(stream, GROUP, entry_id)
            pipe.xdel(stream, entry_id)
            await pipe.execute()

    async def _keep_fresh(self) -> None:
        """Reset the idle time of jobs this worker holds, so no one claims a live worker's jobs."""
        while True:
            await asyncio.sleep(self.claim_idle_s / 4)
            for stream, ids in self._in_flight.items():
                if ids:
                    with contextlib.suppress(*FAILURES):
                        await self._redis.xclaim(stream, GROUP, self.consumer, 0, list(ids), justid=True)


def _as_bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()

