"""webrtcvad segmentation on real synthetic telephone speech."""

import numpy as np
import pytest
import soxr
from fixture_calls import load_call, overlaps

from stream_server.media.vad import SpeechSegmenter, VadOptions


def to_16k(pcm8k: bytes) -> bytes:
    return soxr.resample(np.frombuffer(pcm8k, dtype="<i2"), 8000, 16000).astype("<i2").tobytes()


def segment(pcm16k: bytes, options: VadOptions | None = None, chunk: int = 640) -> list:
    segmenter = SpeechSegmenter(options)
    found = []
    for i in range(0, len(pcm16k), chunk):
        found += segmenter.push(pcm16k[i : i + chunk])
    return found + segmenter.flush()


@pytest.mark.parametrize("name", ["en_calm", "ja_abusive"])
def test_every_caller_utterance_is_found_and_nothing_else(name):
    call = load_call(name)
    found = segment(to_16k(call.pcm16("caller")))
    truth = call.utterances("caller")
    for u in truth:
        assert any(overlaps(f.start, f.end, u["start"], u["end"]) for f in found), u["text"]
    for f in found:  # no utterance in a stretch where the caller is silent
        assert any(overlaps(f.start, f.end, u["start"], u["end"]) for u in truth), (f.start, f.end)
    for f in found:  # bounds are tight: pre-roll/tail and endpointing only
        match = [u for u in truth if overlaps(f.start, f.end, u["start"], u["end"])]
        assert f.start >= match[0]["start"] - 0.5 and f.end <= match[-1]["end"] + 0.5


def test_chunk_size_does_not_change_the_result():
    pcm = to_16k(load_call("en_abusive").pcm16("caller"))
    a = [(u.start, u.end) for u in segment(pcm, chunk=320)]
    b = [(u.start, u.end) for u in segment(pcm, chunk=3200)]
    assert a == b and a


def test_silence_and_line_hiss_are_not_speech():
    rng = np.random.default_rng(1)
    hiss = (rng.standard_normal(16000 * 5) * 30).astype("<i2").tobytes()  # about -60 dBFS
    assert segment(b"\x00\x00" * 16000 * 5) == []
    assert segment(hiss) == []


def test_a_long_tirade_is_cut_at_max_utterance_length():
    call = load_call("en_frustrated")
    pcm = to_16k(call.pcm16("caller"))
    found = segment(pcm, VadOptions(max_utterance_s=1.0))
    assert any(u.forced for u in found)
    assert all(u.duration <= 1.0 + 1e-6 for u in found)


def test_utterance_audio_matches_its_time_span():
    pcm = to_16k(load_call("ja_calm").pcm16("caller"))
    for u in segment(pcm):
        assert len(u.pcm16) == pytest.approx(u.duration * 16000 * 2, abs=2)
        start = int(u.start * 16000) * 2
        assert u.pcm16 == pcm[start : start + len(u.pcm16)]


def test_current_span_matches_the_utterance_in_progress():
    pcm = to_16k(load_call("en_calm").pcm16("caller"))
    segmenter = SpeechSegmenter()
    checked = 0
    for i in range(0, len(pcm), 640):
        segmenter.push(pcm[i : i + 640])
        span, current = segmenter.current_span(), segmenter.current()
        assert (span is None) == (current is None)
        if current is not None:
            assert span == pytest.approx((current.start, current.end))
            checked += 1
    assert checked > 100


def test_a_short_phrase_waits_for_its_continuation_a_long_one_does_not():
    # 殺すぞ、覚えておけよ: a ~0.7 s pause after a 1 s phrase. Cut there, Whisper mis-hears the
    # isolated phrase; kept whole, it does not.
    call = load_call("ja_abusive")
    threat = next(u for u in call.utterances("caller") if "殺す" in u["text"])
    pcm = to_16k(call.pcm16("caller"))
    fast = segment(pcm, VadOptions(short_endpoint_ms=600))
    adaptive = segment(pcm, VadOptions())
    inside = lambda found: [u for u in found if overlaps(u.start, u.end, threat["start"], threat["end"])]  # noqa: E731
    assert len(inside(fast)) == 2
    assert len(inside(adaptive)) == 1
    # When each utterance is handed on: a long one 600 ms after its last voiced frame, a
    # short one 900 ms after (the tail kept is 200 ms of that silence).
    pcm = to_16k(load_call("en_abusive").pcm16("caller"))  # has lines under and over 2 s
    segmenter, delays = SpeechSegmenter(), []
    for i in range(0, len(pcm), 640):
        for u in segmenter.push(pcm[i : i + 640]):
            delays.append((u.duration - 0.2, segmenter.time - u.end))
    assert {round(d, 2) for speech, d in delays if speech >= 2.0} == {0.4}
    assert {round(d, 2) for speech, d in delays if speech < 2.0} == {0.7}
