"""The shared ASR queue: caller before agent, stale partials skipped, the loop never blocked."""

import asyncio
import threading
import time

import numpy as np

from stream_server.asr.scheduler import AsrScheduler


class RecordingEngine:
    """Stands in for Whisper only to observe order; the real engine is tested elsewhere."""

    def __init__(self, delay: float = 0.05) -> None:
        self.order: list[str] = []
        self.delay = delay
        self.threads: set[str] = set()
        self.gate = threading.Event()
        self.gate.set()

    def transcribe(self, audio, language=None, *, partial=False):
        self.gate.wait(5)
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)
        label = f"{int(audio[0])}{'p' if partial else ''}"
        self.order.append(label)
        return label


def audio(tag: int) -> np.ndarray:
    return np.full(1600, tag, dtype=np.float32)


def test_caller_finals_jump_ahead_of_agent_work():
    async def scenario():
        engine = RecordingEngine()
        engine.gate.clear()  # hold the worker on the first job while the queue fills
        scheduler = AsrScheduler(engine)
        scheduler.start()
        first = scheduler.transcribe(audio(0), None, track="agent", partial=False)
        await asyncio.sleep(0.05)
        agent = scheduler.transcribe(audio(1), None, track="agent", partial=False)
        caller = scheduler.transcribe(audio(2), None, track="caller", partial=False)
        partial = scheduler.transcribe(audio(3), None, track="caller", partial=True, key="u9")
        engine.gate.set()
        results = await asyncio.gather(first, agent, caller, partial)
        await scheduler.stop()
        return engine, results

    engine, results = asyncio.run(scenario())
    assert engine.order == ["0", "2", "3p", "1"]
    assert results == ["0", "1", "2", "3p"]
    assert engine.threads == {"asr_0"}


def test_a_partial_is_skipped_once_its_final_is_queued():
    async def scenario():
        engine = RecordingEngine()
        engine.gate.clear()
        scheduler = AsrScheduler(engine)
        scheduler.start()
        busy = scheduler.transcribe(audio(0), None, track="caller", partial=False, key="u0")
        await asyncio.sleep(0.05)
        partial = scheduler.transcribe(audio(1), None, track="caller", partial=True, key="u1")
        final = scheduler.transcribe(audio(2), None, track="caller", partial=False, key="u1")
        engine.gate.set()
        results = await asyncio.gather(busy, partial, final)
        await scheduler.stop()
        return engine, scheduler, results

    engine, scheduler, results = asyncio.run(scenario())
    assert results == ["0", None, "2"]
    assert "1p" not in engine.order and scheduler.stats.partials_skipped == 1


def test_the_event_loop_keeps_running_while_the_model_works():
    async def scenario():
        scheduler = AsrScheduler(RecordingEngine(delay=0.5))
        scheduler.start()
        assert scheduler.idle
        job = scheduler.transcribe(audio(0), None, track="caller", partial=False)
        ticks = 0
        while not job.done():
            await asyncio.sleep(0.01)
            ticks += 1
        await scheduler.stop()
        return ticks

    assert asyncio.run(scenario()) >= 20  # the loop ticked throughout the 0.5 s decode


def test_an_engine_error_fails_one_job_not_the_scheduler():
    class Flaky(RecordingEngine):
        def transcribe(self, audio, language=None, *, partial=False):
            if audio[0] == 1:
                raise RuntimeError("boom")
            return super().transcribe(audio, language, partial=partial)

    async def scenario():
        scheduler = AsrScheduler(Flaky(delay=0.0))
        scheduler.start()
        bad = scheduler.transcribe(audio(1), None, track="caller", partial=False)
        good = scheduler.transcribe(audio(2), None, track="caller", partial=False)
        results = await asyncio.gather(bad, good, return_exceptions=True)
        await scheduler.stop()
        return results

    bad, good = asyncio.run(scenario())
    assert isinstance(bad, RuntimeError) and good == "2"
