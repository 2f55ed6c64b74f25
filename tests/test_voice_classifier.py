"""The committed shouting model through the runtime wrapper (numpy + onnxruntime, no TTS).

The fixtures are 8 kHz μ-law telephone audio of one held-out English speaker (a voice and
sentences the model never saw in training), written by models/train_voice_shouting.py:
calm_1..3 are calm sentences, raised_3 is calm_3's sentence with raised effort (+5 semitones,
+12 dB, +6 dB above 1 kHz).
"""

import json
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from stream_server.classifiers.voice import (
    FEATURES,
    MIN_VOICED_S,
    ShoutingDetector,
    default_model_path,
)
from stream_server.media.codecs import ulaw_to_pcm16

FIXTURES = Path(__file__).parent / "fixtures" / "voice"
RATE = 8000  # the fixtures' rate: the detector resamples to 16 kHz itself


def fixture(name: str, gain_db: float = 0.0) -> bytes:
    pcm = ulaw_to_pcm16((FIXTURES / f"{name}.ulaw").read_bytes())
    if not gain_db:
        return pcm
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64) * 10 ** (gain_db / 20)
    return np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes()


@pytest.fixture(scope="module")
def detector() -> ShoutingDetector:
    d = ShoutingDetector(default_model_path())
    d.warm_up()
    return d


def calm_baseline(detector: ShoutingDetector, gain_db: float = 0.0):
    baseline = detector.new_baseline()
    for name in ("calm_1", "calm_2"):
        detector.score_segment(fixture(name, gain_db), baseline, sample_rate=RATE)
    return baseline


def test_calm_speech_after_a_calm_baseline_is_not_shouting(detector):
    baseline = calm_baseline(detector)
    assert baseline.segments == 2
    score = detector.score_segment(fixture("calm_3"), baseline, sample_rate=RATE)
    assert score.shouting < detector.threshold
    assert abs(score.features["level_delta_db"]) < 4
    assert baseline.segments == 3  # calm speech joins the baseline


def test_the_same_sentence_with_raised_effort_is_shouting(detector):
    baseline = calm_baseline(detector)
    score = detector.score_segment(fixture("raised_3"), baseline, sample_rate=RATE)
    assert score.shouting >= detector.threshold
    # The evidence says why, in the units the names promise.
    assert 8 < score.features["level_delta_db"] < 16
    assert 2.5 < score.features["f0_delta_st"] < 8
    assert score.features["tilt_delta_db"] > 1.5
    assert baseline.segments == 2  # shouting never joins the baseline: no runaway


def test_a_louder_line_for_the_whole_session_is_not_shouting(detector):
    baseline = calm_baseline(detector, gain_db=12.0)
    score = detector.score_segment(fixture("calm_3", 12.0), baseline, sample_rate=RATE)
    assert score.features["level_dbfs"] > -20  # really louder in absolute terms
    assert score.shouting < detector.threshold


def test_too_little_voiced_audio_scores_zero(detector):
    baseline = calm_baseline(detector)
    t = np.arange(int(0.2 * RATE)) / RATE
    chirp = (20000 * np.sin(2 * np.pi * 220 * t)).astype("<i2").tobytes()  # loud, but 0.2 s
    for pcm in (b"", chirp, fixture("raised_3")[: int(0.25 * RATE) * 2]):
        score = detector.score_segment(pcm, baseline, sample_rate=RATE)
        assert score.shouting == 0.0
        assert score.features["voiced_s"] < MIN_VOICED_S
    assert baseline.segments == 2


def test_window_scores_an_utterance_still_being_spoken(detector):
    baseline = calm_baseline(detector)
    raised, calm = fixture("raised_3"), fixture("calm_3")
    so_far = raised[: int(2.0 * RATE) * 2]  # 2 s into the shouted sentence
    shouting = detector.score_window(so_far, baseline, sample_rate=RATE)
    assert shouting.shouting >= detector.threshold
    assert shouting.features["duration_s"] == pytest.approx(1.5, abs=0.01)
    assert (
        detector.score_window(calm[: int(2.0 * RATE) * 2], baseline, sample_rate=RATE).shouting
        < detector.threshold
    )
    assert baseline.segments == 2  # windows never touch the baseline


def test_scores_are_json_serialisable_floats(detector):
    score = detector.score_segment(fixture("raised_3"), calm_baseline(detector), sample_rate=RATE)
    assert isinstance(score.shouting, float)
    assert set(FEATURES) <= set(score.features)
    assert all(isinstance(v, float) and math.isfinite(v) for v in score.features.values())
    json.dumps(score.features)


def test_sidecar_names_the_onnx_columns_in_order(detector):
    meta = detector.metadata
    assert meta["features"] == list(FEATURES)
    session = ort.InferenceSession(str(default_model_path()), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert inp.name == meta["input"]["name"] and inp.shape[1] == len(FEATURES)
    # Raising one named feature must move the ONNX logit by that feature's documented weight:
    # a column order that disagreed with the names would move it by another column's weight.
    lr = meta["logistic_regression"]
    base = np.array([lr["mean"]], dtype=np.float32)
    for i, name in enumerate(FEATURES):
        bumped = base.copy()
        bumped[0, i] += lr["scale"][i]
        p0, p1 = (
            session.run([meta["output"]["name"]], {inp.name: x})[0][0, 1] for x in (base, bumped)
        )
        logit = lambda p: math.log(p / (1 - p))
        assert logit(p1) - logit(p0) == pytest.approx(lr["coef"][i], abs=1e-3), name


def test_onnx_probability_matches_the_documented_formula_and_threshold(detector):
    meta = detector.metadata
    lr = meta["logistic_regression"]
    mean, scale, coef = (np.array(lr[k]) for k in ("mean", "scale", "coef"))
    rows = []
    for gain in (0.0, 12.0):
        baseline = calm_baseline(detector, gain)
        for name in ("calm_3", "raised_3"):
            rows.append(
                detector.score_window(fixture(name, gain), baseline, sample_rate=RATE, window_s=3.0)
            )
    for score in rows:
        x = np.array([score.features[k] for k in FEATURES], dtype=np.float32).astype(np.float64)
        expected = 1 / (1 + math.exp(-(lr["intercept"] + float(np.dot(coef, (x - mean) / scale)))))
        assert score.shouting == pytest.approx(expected, abs=1e-5)
        assert (score.shouting >= detector.threshold) == (expected >= meta["threshold"])
    assert {s.shouting >= detector.threshold for s in rows} == {True, False}


def test_concurrent_calls_with_their_own_baselines_agree_with_sequential(detector):
    names = ["calm_3", "raised_3"] * 4

    def one_call(name: str) -> float:
        return detector.score_segment(
            fixture(name), calm_baseline(detector), sample_rate=RATE
        ).shouting

    sequential = [one_call(n) for n in names]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(one_call, names)) == sequential
