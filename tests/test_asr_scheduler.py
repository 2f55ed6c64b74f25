"""The shared ASR queue: caller before agent, batches per class, stale partials skipped, the
loop never blocked."""

import asyncio
import threading
import time

import numpy as np

from stream_server.asr.scheduler import AsrScheduler


class RecordingEngine:
    """Stands in for Whisper only to observe order; the real engine is tested elsewhere."""

    def __init__(self, delay: float = 0.05) -> None:
        self.order: list[str] = []
        self.batches: list[list[str]] = []
        self.drafts: list[bool] = []
        self.delay = delay
        self.threads: set[str] = set()
        self.gate = threading.Event()
        self.gate.set()

    def transcribe_batch(self, audios, languages, *, partial=False, draft=False):
        self.gate.wait(5)
        self.drafts.append(draft)
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)
        labels = [self.label(audio, partial) for audio in audios]
        self.order += labels
        self.batches.append(labels)
        return labels

    def label(self, audio, partial):
        return f"{int(audio[0])}{'p' if partial else ''}"


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
        def label(self, audio, partial):
            if audio[0] == 1:
                raise RuntimeError("boom")
            return super().label(audio, partial)

    async def scenario():
        engine = Flaky(delay=0.0)
        engine.gate.clear()  # both jobs queue up and go to the engine as one batch
        scheduler = AsrScheduler(engine)
        scheduler.start()
        bad = scheduler.transcribe(audio(1), None, track="caller", partial=False)
        good = scheduler.transcribe(audio(2), None, track="caller", partial=False)
        engine.gate.set()
        results = await asyncio.gather(bad, good, return_exceptions=True)
        later = await scheduler.transcribe(audio(3), None, track="caller", partial=False)
        await scheduler.stop()
        return results, later

    (bad, good), later = asyncio.run(scenario())
    assert isinstance(bad, RuntimeError) and good == "2" and later == "3"


def test_queued_work_of_one_class_runs_as_one_batch_and_classes_never_mix():
    async def scenario():
        engine = RecordingEngine()
        engine.gate.clear()
        scheduler = AsrScheduler(engine, max_batch=3)
        scheduler.start()
        jobs = [scheduler.transcribe(audio(0), None, track="caller", partial=False)]
        await asyncio.sleep(0.05)  # the worker holds job 0 at the gate
        jobs += [scheduler.transcribe(audio(i), None, track="agent", partial=False) for i in (1, 2)]
        jobs += [scheduler.transcribe(audio(i), None, track="caller", partial=False) for i in (3, 4, 5, 6)]
        assert scheduler.queued() == {"caller_final": 4, "caller_partial": 0, "agent_final": 2, "agent_partial": 0}
        engine.gate.set()
        results = await asyncio.gather(*jobs)
        await scheduler.stop()
        return engine, scheduler, results

    engine, scheduler, results = asyncio.run(scenario())
    assert results == ["0", "1", "2", "3", "4", "5", "6"]  # every job gets its own result
    # Caller finals in batches of at most 3, oldest first; the agent's wait and never mix in.
    assert engine.batches == [["0"], ["3", "4", "5"], ["6"], ["1", "2"]]
    assert scheduler.stats.largest_batch == 3 and scheduler.stats.jobs_done == 7
    assert engine.drafts == [False, False, False, True]  # agent finals in the cheaper draft mode


def test_agent_batches_stay_small_so_a_caller_line_never_waits_long():
    async def scenario():
        engine = RecordingEngine()
        engine.gate.clear()
        scheduler = AsrScheduler(engine, max_batch=8, agent_max_batch=2)
        scheduler.start()
        jobs = [scheduler.transcribe(audio(i), None, track="agent", partial=False) for i in range(5)]
        engine.gate.set()
        await asyncio.gather(*jobs)
        await scheduler.stop()
        return engine

    engine = asyncio.run(scenario())
    assert max(len(b) for b in engine.batches) <= 2 and sorted(engine.order) == ["0", "1", "2", "3", "4"]


def test_interim_work_is_offered_only_while_the_model_has_spare_capacity():
    async def scenario():
        scheduler = AsrScheduler(RecordingEngine(delay=0.3), max_batch=1, load_window_s=1.0, max_partial_load=0.5)
        scheduler.start()
        assert scheduler.spare_capacity and scheduler.load == 0.0
        jobs = [scheduler.transcribe(audio(i), None, track="caller", partial=False) for i in range(3)]
        busy = [scheduler.spare_capacity]
        await asyncio.gather(*jobs)
        loaded = (scheduler.idle, scheduler.load, scheduler.spare_capacity)
        await asyncio.sleep(1.1)  # the busy second slides out of the window
        rested = (scheduler.load, scheduler.spare_capacity)
        await scheduler.stop()
        return busy, loaded, rested

    busy, (idle, load, spare), (rested_load, rested_spare) = asyncio.run(scenario())
    assert busy == [False]  # work queued: not idle
    assert idle and load > 0.5 and not spare  # idle this instant, but busy most of the last second
    assert rested_load < 0.1 and rested_spare


def test_two_workers_take_two_batches_at_once():
    class Concurrent(RecordingEngine):
        def __init__(self):
            super().__init__(delay=0.3)
            self.now = self.peak = 0
            self.lock = threading.Lock()

        def transcribe_batch(self, audios, languages, *, partial=False, draft=False):
            with self.lock:
                self.now += 1
                self.peak = max(self.peak, self.now)
            try:
                return super().transcribe_batch(audios, languages, partial=partial, draft=draft)
            finally:
                with self.lock:
                    self.now -= 1

    async def scenario(track):
        engine = Concurrent()
        scheduler = AsrScheduler(engine, max_batch=1, agent_max_batch=1, workers=2)
        scheduler.start()
        jobs = [scheduler.transcribe(audio(i), None, track=track, partial=False) for i in range(4)]
        results = await asyncio.gather(*jobs)
        await scheduler.stop()
        return engine, results

    engine, results = asyncio.run(scenario("caller"))
    assert results == ["0", "1", "2", "3"] and engine.peak == 2 and len(engine.threads) == 2
    # Agent work never takes both: one worker stays free for the next caller line.
    engine, results = asyncio.run(scenario("agent"))
    assert results == ["0", "1", "2", "3"] and engine.peak == 1


def test_queued_caller_work_is_shared_between_free_workers():
    async def scenario():
        engine = RecordingEngine(delay=0.2)
        engine.gate.clear()
        scheduler = AsrScheduler(engine, max_batch=4, workers=2)
        jobs = [scheduler.transcribe(audio(i), None, track="caller", partial=False) for i in range(4)]
        scheduler.start()  # both workers free, four finals queued
        await asyncio.sleep(0.05)
        engine.gate.set()
        await asyncio.gather(*jobs)
        await scheduler.stop()
        return engine

    engine = asyncio.run(scenario())
    assert sorted(map(sorted, engine.batches)) == [["0", "1"], ["2", "3"]]
