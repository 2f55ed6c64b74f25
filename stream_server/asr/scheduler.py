"""Shares the one ASR engine between every call in the process.

``workers`` threads run the model (the engine must allow that many concurrent calls); the
event loop never blocks on them.  On 2 cores, two single-threaded workers got ~25% more
utterances through than one two-threaded worker, whose small decoder steps leave a core
idle, and one worker can take a caller line while the other is on agent work.

- **Priority.** Caller finals first (they feed alerts), then caller partials, then agent
  finals (QA needs them after the call, alerts don't): under load agent work waits, it is
  never dropped.  A queued partial is dropped as soon as the final for the same utterance
  arrives.
- **Batches.** A worker coming free takes every queued job of the top priority class (up
  to ``max_batch``, 4) into one engine call.  Batches help less than one would hope (the
  encoder dominates and hardly amortises) and cannot be interrupted, so they stay small:
  a caller line that ends meanwhile waits for them.  Classes are never mixed, so agent
  work cannot slow a caller batch down.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)

CALLER_FINAL, CALLER_PARTIAL, AGENT_FINAL, AGENT_PARTIAL = range(4)
CLASS_NAMES = ("caller_final", "caller_partial", "agent_final", "agent_partial")


class Transcriber(Protocol):
    def transcribe_batch(
        self,
        audios: Sequence[np.ndarray],
        languages: Sequence[str | None],
        *,
        partial: bool = False,
        draft: bool = False,
    ) -> list: ...


def job_priority(track: str, partial: bool) -> int:
    if track == "caller":
        return CALLER_PARTIAL if partial else CALLER_FINAL
    return AGENT_PARTIAL if partial else AGENT_FINAL


@dataclass(order=True)
class _Job:
    priority: int
    seq: int
    audio: np.ndarray = field(compare=False)
    language: str | None = field(compare=False)
    partial: bool = field(compare=False)
    key: object = field(compare=False)
    future: asyncio.Future = field(compare=False)


@dataclass
class SchedulerStats:
    jobs_done: int = 0
    batches: int = 0
    largest_batch: int = 0
    partials_skipped: int = 0
    busy_seconds: float = 0.0
    audio_seconds: float = 0.0
    busy_by_class: dict[str, float] = field(default_factory=lambda: dict.fromkeys(CLASS_NAMES, 0.0))
    jobs_by_class: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CLASS_NAMES, 0))
    # class → {batch size: batches}: how much batching actually happens (the metrics' histogram)
    batch_sizes: dict[str, dict[int, int]] = field(default_factory=lambda: {name: {} for name in CLASS_NAMES})


class AsrScheduler:
    def __init__(
        self,
        engine: Transcriber,
        max_batch: int = 4,
        agent_max_batch: int = 2,
        agent_draft: bool = True,
        max_partial_load: float = 0.5,
        load_window_s: float = 10.0,
        workers: int = 1,
    ) -> None:
        """``agent_max_batch`` is smaller because a decode cannot be interrupted: a caller
        utterance that ends while an agent batch runs waits for it.  ``agent_draft`` decodes
        agent finals in the engine's cheaper draft mode: nobody waits on them.  Interim
        transcripts are offered only while the model was busy less than ``max_partial_load``
        of the last ``load_window_s``: under load they would take the time finals need."""
        self.engine = engine
        self.max_partial_load = max_partial_load
        self.load_window_s = load_window_s
        self._recent: deque[tuple[float, float]] = deque()  # (start, end) of recent batches
        self.max_batch = max(1, max_batch)
        self.agent_max_batch = max(1, min(agent_max_batch, self.max_batch))
        self.agent_draft = agent_draft
        self.stats = SchedulerStats()
        self._heap: list[_Job] = []
        self._seq = itertools.count()
        self._wakeup = asyncio.Event()
        self.workers = max(1, workers)
        self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="asr")
        self._tasks: list[asyncio.Task] = []
        self._running = 0  # batches in the model right now
        self._agent_running = 0

    def start(self) -> None:
        if not self._tasks:
            loop = asyncio.get_running_loop()
            self._tasks = [loop.create_task(self._run(), name=f"asr-worker-{i}") for i in range(self.workers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for job in self._heap:
            if not job.future.done():
                job.future.cancel()
        self._heap.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)

    @property
    def idle(self) -> bool:
        """True when nothing waits and nothing runs."""
        return not self._running and not self._heap

    @property
    def load(self) -> float:
        """Fraction of the last ``load_window_s`` the model spent working (0..1)."""
        since = time.monotonic() - self.load_window_s
        while self._recent and self._recent[0][1] < since:
            self._recent.popleft()
        busy = sum(end - max(start, since) for start, end in self._recent)
        return min(1.0, busy / (self.load_window_s * self.workers))

    @property
    def spare_capacity(self) -> bool:
        """Idle and lightly loaded: a good moment for optional work such as partials."""
        return self.idle and self.load < self.max_partial_load

    @property
    def queue_depth(self) -> int:
        return len(self._heap)

    def queued(self) -> dict[str, int]:
        """Waiting jobs per class, e.g. {"caller_final": 0, "agent_final": 12}."""
        counts = dict.fromkeys(CLASS_NAMES, 0)
        for job in self._heap:
            if not job.future.done():
                counts[CLASS_NAMES[job.priority]] += 1
        return counts

    def transcribe(
        self, audio: np.ndarray, language: str | None, *, track: str, partial: bool, key: object = None
    ) -> asyncio.Future:
        """Queue one utterance; the future resolves to the engine's result (None = no speech)."""
        future = asyncio.get_running_loop().create_future()
        if not partial and key is not None:
            self._drop_partials(key)
        job = _Job(job_priority(track, partial), next(self._seq), audio, language, partial, key, future)
        heapq.heappush(self._heap, job)
        self._wakeup.set()
        return future

    def _drop_partials(self, key: object) -> None:
        """The final supersedes interim work on the same utterance: resolve it as None."""
        for job in self._heap:
            if job.partial and job.key == key and not job.future.done():
                job.future.set_result(None)
                self.stats.partials_skipped += 1

    def _next_batch(self) -> list[_Job]:
        """The top-priority job and the queued jobs of its class, oldest first; nothing when
        only agent work waits and another worker already has some (one worker is kept
        free for the next caller line)."""
        while self._heap and self._heap[0].future.done():  # partials resolved by their final
            heapq.heappop(self._heap)
        if not self._heap:
            return []
        agent = self._heap[0].priority >= AGENT_FINAL
        if agent and self.workers > 1 and self._agent_running >= self.workers - 1:
            return []
        batch: list[_Job] = []
        # Share the queued work of this class among the free workers: two batches of 2 on
        # two workers finish in about half the time of one batch of 4.
        top = self._heap[0].priority
        queued = sum(1 for job in self._heap if job.priority == top and not job.future.done())
        free = self.workers - self._running
        limit = min(self.agent_max_batch if agent else self.max_batch, -(-queued // max(1, free)))
        while self._heap and len(batch) < limit:
            if batch and self._heap[0].priority != batch[0].priority:
                break
            job = heapq.heappop(self._heap)
            if not job.future.done():
                batch.append(job)
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = self._next_batch()
            if not batch:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            agent = batch[0].priority >= AGENT_FINAL
            self._running += 1
            self._agent_running += agent
            began = time.monotonic()
            try:
                results = await loop.run_in_executor(self._executor, self._transcribe_isolated, batch)
            finally:
                self._running -= 1
                self._agent_running -= agent
                self._wakeup.set()  # a worker held back from agent work may take it now
            for job, result in zip(batch, results):
                if job.future.done():
                    continue
                if isinstance(result, Exception):
                    log.error("ASR failed on one utterance", exc_info=result)
                    job.future.set_exception(result)
                else:
                    job.future.set_result(result)
            self.stats.jobs_done += len(batch)
            self.stats.batches += 1
            self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
            ended = time.monotonic()
            self._recent.append((began, ended))
            name = CLASS_NAMES[batch[0].priority]
            self.stats.busy_by_class[name] += ended - began
            self.stats.jobs_by_class[name] += len(batch)
            sizes = self.stats.batch_sizes[name]
            sizes[len(batch)] = sizes.get(len(batch), 0) + 1
            self.stats.busy_seconds += ended - began
            self.stats.audio_seconds += sum(len(job.audio) for job in batch) / 16000.0

    def _transcribe(self, batch: list[_Job]) -> list:
        agent = batch[0].priority >= AGENT_FINAL
        return self.engine.transcribe_batch(
            [job.audio for job in batch],
            [job.language for job in batch],
            partial=batch[0].partial,
            draft=self.agent_draft and agent,
        )

    def _transcribe_isolated(self, batch: list[_Job]) -> list:
        """Results, or each job's exception: one bad utterance must not fail its batch-mates
        nor stop transcription for every call."""
        try:
            return self._transcribe(batch)
        except Exception as exc:  # noqa: BLE001 - anything the model raises
            if len(batch) == 1:
                return [exc]
        return [self._transcribe_isolated([job])[0] for job in batch]
