"""The shared ASR queue (asr/queue.py) against the real Redis on 127.0.0.1:6379.

The model here is a stand-in that "transcribes" an utterance as its length, optionally slowly:
these tests are about the queue's promises (results reach the node that asked, caller work goes
first, a dead worker's jobs are taken over, a repeated result is used once). Real Whisper
behind the queue, in separate processes, is tests/test_scale_out.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import numpy as np
import pytest
import redis

from stream_server.asr.engine import Transcription
from stream_server.asr.queue import AsrWorker, RemoteAsr, result_fields, work_stream
from stream_server.asr.scheduler import AsrScheduler

REDIS_URL = "redis://127.0.0.1:6379/0"


def _redis_answers() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


pytestmark = pytest.mark.skipif(not _redis_answers(), reason="no Redis on 127.0.0.1:6379 (.ci/run starts it)")


class LengthModel:
    """Answers every utterance with its length in samples, after `delay_s` per batch."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.seen: list[int] = []

    def transcribe_batch(self, audios: Sequence[np.ndarray], languages, *, partial=False, draft=False):
        time.sleep(self.delay_s)
        self.seen += [len(a) for a in audios]
        return [Transcription(str(len(a)), languages[i] or "en", 1.0, -0.1, 0.0, len(a) / 16000)
                for i, a in enumerate(audios)]



def _audio(samples: int) -> np.ndarray:
    return np.full(samples, 0.25, dtype=np.float32)


async def _worker(prefix: str, model: LengthModel, claim_idle_s: float = 30.0, batch: int = 4) -> AsrWorker:
    scheduler = AsrScheduler(model, max_batch=batch, agent_max_batch=batch, workers=1)
    scheduler.start()
    worker = AsrWorker(scheduler, REDIS_URL, prefix, claim_idle_s=claim_idle_s)
    await worker.start()
    return worker


async def _stop(worker: AsrWorker, drain_s: float = 10.0) -> None:
    await worker.stop(drain_s)
    await worker.scheduler.stop()


def test_results_come_back_to_the_ingest_node_that_queued_the_speech(redis_prefix):
    async def scenario() -> None:
        a, b = RemoteAsr(REDIS_URL, redis_prefix), RemoteAsr(REDIS_URL, redis_prefix)
        await a.start(), await b.start()
        worker = await _worker(redis_prefix, LengthModel())
        try:
            futures_a = [a.transcribe(_audio(n), "ja", track="caller", partial=False) for n in (1600, 3200)]
            futures_b = [b.transcribe(_audio(n), None, track="agent", partial=False) for n in (4800, 6400)]
            results_a = await asyncio.wait_for(asyncio.gather(*futures_a), 20)
            results_b = await asyncio.wait_for(asyncio.gather(*futures_b), 20)
        finally:
            await _stop(worker)
            await a.stop(), await b.stop()
        assert [(r.text, r.language) for r in results_a] == [("1600", "ja"), ("3200", "ja")]
        assert [r.text for r in results_b] == ["4800", "6400"]
        assert a.idle and b.idle and a.duplicates == b.duplicates == 0
        assert a.stats.jobs_by_class["caller_final"] == 2 and b.stats.jobs_by_class["agent_final"] == 2

    asyncio.run(scenario())


def test_caller_speech_is_transcribed_before_agent_speech_that_queued_earlier(redis_prefix):
    async def scenario() -> list[int]:
        ingest = RemoteAsr(REDIS_URL, redis_prefix)
        await ingest.start()
        agent = [ingest.transcribe(_audio(100 + i), None, track="agent", partial=False) for i in range(4)]
        caller = ingest.transcribe(_audio(999), None, track="caller", partial=False)
        await asyncio.sleep(0.5)  # all five are on Redis before any worker exists
        model = LengthModel()
        worker = await _worker(redis_prefix, model, batch=1)
        try:
            await asyncio.wait_for(asyncio.gather(caller, *agent), 20)
        finally:
            await _stop(worker)
            await ingest.stop()
        return model.seen

    seen = asyncio.run(scenario())
    assert seen[0] == 999 and sorted(seen[1:]) == [100, 101, 102, 103]


def test_a_dead_workers_speech_is_taken_over_and_each_result_used_once(redis_prefix):
    async def scenario() -> None:
        ingest = RemoteAsr(REDIS_URL, redis_prefix)
        await ingest.start()
        doomed = await _worker(redis_prefix, LengthModel(delay_s=3.0), claim_idle_s=1.0)
        futures = [ingest.transcribe(_audio(1000 + i), None, track="caller", partial=False) for i in range(3)]
        deadline = time.monotonic() + 10
        while doomed.in_flight < 3:  # it has taken all three and is working on them
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        await _stop(doomed, drain_s=0)  # gone without acknowledging anything, as after kill -9
        survivor_model = LengthModel()
        survivor = await _worker(redis_prefix, survivor_model, claim_idle_s=1.0)
        try:
            results = await asyncio.wait_for(asyncio.gather(*futures), 20)
        finally:
            await _stop(survivor)
            await ingest.stop()
        assert [r.text for r in results] == ["1000", "1001", "1002"]
        assert sorted(survivor_model.seen) == [1000, 1001, 1002] and survivor.jobs_claimed == 3
        left = redis.Redis.from_url(REDIS_URL).xpending(work_stream(redis_prefix, "caller"), "asr")
        assert left["pending"] == 0

    asyncio.run(scenario())


def test_a_live_but_slow_worker_keeps_its_jobs(redis_prefix):
    """Jobs idle past claim_idle_s only because their batch is long must not be taken over."""
    async def scenario() -> None:
        ingest = RemoteAsr(REDIS_URL, redis_prefix)
        await ingest.start()
        slow = await _worker(redis_prefix, LengthModel(delay_s=3.0), claim_idle_s=1.0, batch=1)
        future = ingest.transcribe(_audio(1234), None, track="caller", partial=False)
        while slow.in_flight < 1:
            await asyncio.sleep(0.05)
        other_model = LengthModel()
        other = await _worker(redis_prefix, other_model, claim_idle_s=1.0)
        try:
            result = await asyncio.wait_for(future, 20)
        finally:
            await _stop(other), await _stop(slow)
            await ingest.stop()
        assert result.text == "1234" and other_model.seen == [] and other.jobs_claimed == 0

    asyncio.run(scenario())


def test_a_result_delivered_twice_is_counted_not_used_twice(redis_prefix):
    async def scenario() -> None:
        ingest = RemoteAsr(REDIS_URL, redis_prefix)
        await ingest.start()
        worker = await _worker(redis_prefix, LengthModel())
        try:
            future = ingest.transcribe(_audio(800), None, track="caller", partial=False)
            first = await asyncio.wait_for(future, 20)
            job_id = f"{ingest.node}-1"
            again = Transcription("something else", "en", 1.0, 0.0, 0.0, 0.05)
            redis.Redis.from_url(REDIS_URL).xadd(ingest.results, result_fields(job_id, again))
            deadline = time.monotonic() + 10
            while ingest.duplicates == 0:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
        finally:
            await _stop(worker)
            await ingest.stop()
        assert first.text == "800" and ingest.duplicates == 1

    asyncio.run(scenario())


def test_speech_queued_while_no_worker_runs_waits_for_one(redis_prefix):
    """Workers all down: the ingest node keeps the speech queued (recording goes on) and the
    first worker to come up answers it."""
    async def scenario() -> str:
        ingest = RemoteAsr(REDIS_URL, redis_prefix)
        await ingest.start()
        future = ingest.transcribe(_audio(4321), None, track="caller", partial=False)
        await asyncio.sleep(1.5)
        assert not future.done() and ingest.backlog["caller"] == 1 and not ingest.spare_capacity
        worker = await _worker(redis_prefix, LengthModel())
        try:
            return (await asyncio.wait_for(future, 20)).text
        finally:
            await _stop(worker)
            await ingest.stop()

    assert asyncio.run(scenario()) == "4321"


def test_a_worker_stopped_gracefully_finishes_the_speech_it_holds(redis_prefix):
    async def scenario() -> None:
        ingest = RemoteAsr(REDIS_URL, redis_prefix)
        await ingest.start()
        worker = await _worker(redis_prefix, LengthModel(delay_s=1.0), batch=1)
        future = ingest.transcribe(_audio(777), None, track="caller", partial=False)
        while worker.in_flight < 1:
            await asyncio.sleep(0.05)
        await _stop(worker)  # SIGTERM: the server's shutdown
        try:
            assert (await asyncio.wait_for(future, 10)).text == "777"
        finally:
            await ingest.stop()
        left = redis.Redis.from_url(REDIS_URL).xpending(work_stream(redis_prefix, "caller"), "asr")
        assert left["pending"] == 0

    asyncio.run(scenario())
