"""How STREAM_SERVER_ASR_* settings become engine options (the fast path vs the baseline)."""

from stream_server.app import asr_options
from stream_server.config import Settings


def test_fast_pipeline_splits_the_threads_between_workers_and_trims_the_window():
    o = asr_options(Settings(asr_threads=2, asr_workers=2))
    assert (o.workers, o.cpu_threads) == (2, 1)
    assert o.trim_window and o.min_window_s == 10.0


def test_baseline_runs_one_utterance_at_a_time_on_every_thread():
    o = asr_options(Settings(asr_pipeline="baseline", asr_threads=2, asr_workers=2))
    assert (o.workers, o.cpu_threads) == (1, 2)


def test_a_30_s_minimum_window_is_whispers_own_fixed_window():
    assert not asr_options(Settings(asr_min_window_s=30.0)).trim_window
