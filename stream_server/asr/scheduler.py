"""Shares the one ASR engine between every call in the process.

One worker thread runs the model (CTranslate2 already uses all cores for one decode, and
two decodes at once only slow each other down); the event loop never blocks on it.
Work is ordered by priority: caller finals first (they feed alerts), then caller
partials, then agent finals (QA needs them, alerts don't: they wait, never dropped).
A queued partial is dropped as soon as the final for the same utterance arrives.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)

CALLER_FINAL, CALLER_PARTIAL, AGENT_FINAL, AGENT_PARTIAL = range(4)


class Transcriber(Protocol):
    def transcribe(self, audio: np.ndarray, language: str | None = None, *, partial: bool = False): ...


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
    partials_skipped: int = 0
    busy_seconds: float = 0.0
    audio_seconds: float = 0.0


class AsrScheduler:
    def __init__(self, engine: Transcriber) -> None:
        self.engine = engine
        self.stats = SchedulerStats()
        self._heap: list[_Job] = []
        self._seq = itertools.count()
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="asr")
        self._worker: asyncio.Task | None = None
        self._busy = False

    def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._run(), name="asr-scheduler")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
            self._worker = None
        for job in self._heap:
            if not job.future.done():
                job.future.cancel()
        self._heap.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)

    @property
    def idle(self) -> bool:
        """True when nothing waits: a good moment for optional work such as partials."""
        return not self._busy and not self._heap

    @property
    def queue_depth(self) -> int:
        return len(self._heap)

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

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._heap:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            job = heapq.heappop(self._heap)
            if job.future.done():
                continue
            self._busy = True
            began = time.perf_counter()
            try:
                result = await loop.run_in_executor(
                    self._executor, lambda j=job: self.engine.transcribe(j.audio, j.language, partial=j.partial)
                )
            except Exception as exc:  # one bad utterance must not stop transcription for all calls
                log.exception("ASR failed on one utterance")
                if not job.future.done():
                    job.future.set_exception(exc)
            else:
                if not job.future.done():
                    job.future.set_result(result)
            finally:
                self._busy = False
                self.stats.jobs_done += 1
                self.stats.busy_seconds += time.perf_counter() - began
                self.stats.audio_seconds += len(job.audio) / 16000.0
