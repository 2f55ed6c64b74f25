"""Train the shouting (raised-voice, 威圧的な言動) model on synthesised telephone speech; export ONNX.

No public shouting data can be installed here, so every utterance is synthesised (espeak-ng for
English, pyopenjtalk for Japanese), given a controlled vocal effort, and sent through a simulated
telephone channel (band-pass, 8 kHz G.711 μ-law, noise). Speakers and sentences of the test
split are never seen in training. Every range is a constant below and is documented in
models/data/voice_shouting/README.md and docs/models/voice_shouting_v1.md.

Run from the repository root (about 5 minutes on 2 cores):

    .venv/bin/python models/train_voice_shouting.py

Writes models/voice_shouting_v1.onnx + .json, models/voice_shouting_eval.json,
models/data/voice_shouting/utterances.csv and tests/fixtures/voice/*.ulaw. Deterministic: fixed
seeds, one seed per utterance, so the result does not depend on --jobs.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import csv
import hashlib
import importlib.metadata
import io
import json
import math
import pickle
import platform
import subprocess
import sys
import time
import warnings
import wave
from dataclasses import dataclass, fields
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import soxr
from scipy import signal

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stream_server.classifiers import voice

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

DATA = ROOT / "models" / "data" / "voice_shouting"
FIXTURES = ROOT / "tests" / "fixtures" / "voice"
MODEL_PATH = ROOT / "models" / f"{voice.MODEL_NAME}.onnx"
EVAL_PATH = ROOT / "models" / "voice_shouting_eval.json"
VERSION = "1.0.0"

SEED = 20260611
RATE = voice.SAMPLE_RATE
CALM_LEVEL_DBFS = -26.0  # active level of calm speech at the microphone, before the channel gain
ESPEAK_ST_PER_UNIT = 0.16  # espeak-ng -p: measured 0.15-0.17 semitones per unit around 50
SESSIONS = {"train": 60, "val": 24, "test": 30}  # per language
LEAD_CALM = ((0, 1, 2, 3, 4), (0.10, 0.15, 0.20, 0.30, 0.25))  # calm utterances opening a session
SCORED = 6  # utterances after the lead, each of a random condition
CONDITIONS = {
    "shout": 0.36,
    "calm": 0.22,
    "emphatic": 0.14,
    "pitch_only": 0.14,
    "noise_burst": 0.14,
}
# condition: (pitch semitones, level dB re the speaker's calm level, high shelf dB, rate factor)
EFFORT = {
    "calm": ((-0.7, 0.7), (-1.5, 1.5), (-1.0, 1.0), (0.95, 1.05)),
    "shout": ((2.0, 7.0), (6.0, 18.0), (3.0, 9.0), (0.85, 1.15)),
    "emphatic": ((0.5, 1.5), (2.0, 4.0), (0.0, 2.0), (0.90, 1.10)),
    "pitch_only": ((2.0, 5.0), (-1.0, 1.0), (-1.0, 1.0), (0.95, 1.05)),
    "noise_burst": ((-0.7, 0.7), (-1.5, 1.5), (-1.0, 1.0), (0.95, 1.05)),
}
SHELF_HZ = 1000.0
SOFTCLIP_P, SOFTCLIP_DRIVE = 0.3, (1.5, 3.0)  # share of shouts overdriven, tanh drive
BURSTS, BURST_S, BURST_DB = (1, 3), (0.05, 0.25), (6.0, 20.0)  # count, length, dB over speech
CHANNELS = {
    "normal": (0.5, (-3.0, 3.0)),
    "loud": (0.25, (6.0, 14.0)),
    "quiet": (0.25, (-14.0, -6.0)),
}
SNRS_DB = (30, 20, 12)  # ambient noise re calm speech (fixed per session, so shouting raises SNR)
AGC_P, AGC_RATIO, AGC_KNEE_DB = 0.2, 3.0, 4.0  # sessions whose handset compresses loud speech
PAD_S = ((0.15, 0.30), (0.10, 0.25))  # noise before / after the speech (VAD pre-roll and tail)
BAND_HZ = (300.0, 3400.0)
WINDOW_S, WINDOW_EVERY_S = 1.5, 0.5  # the server's mid-utterance window and its cadence
SPEAKER_PITCH_EN, SPEAKER_RATE_EN = (25.0, 55.0), (145.0, 185.0)  # espeak-ng -p, -s (wpm)
SPEAKER_TONE_JA = ((-9.0, -5.0), (-3.0, 2.0))  # pyopenjtalk half_tone: lower and higher voices
SPEAKER_RATE_JA = (0.85, 1.15)  # pyopenjtalk speed
EN_VOICES = {
    "train": (
        ("en-us", "en-gb", "en-gb-x-rp"),
        ("m1", "m2", "m3", "m4", "f1", "f2", "f3", "klatt", "Andy", "Alicia"),
    ),
    "val": (("en-gb-x-gbclan",), ("m5", "f4", "klatt3", "Andrea")),
    "test": (
        ("en-029", "en-gb-scotland", "en-gb-x-gbcwmd"),
        ("m6", "m7", "f5", "Annie", "klatt4", "Michael"),
    ),
}
# Japanese has one HTS voice (mei_normal); speakers differ by vocal-tract scale (formants),
# pitch and rate, and the test split's scales lie outside the training range.
JA_FORMANT = {
    "train": ((0.88, 1.04),),
    "val": ((0.86, 0.88), (1.04, 1.06)),
    "test": ((0.84, 0.86), (1.06, 1.08)),
}
C_GRID = (0.1, 1.0, 10.0)
MIN_PRECISION, MAX_GAIN_FALSE_ALARM = 0.90, 0.02


@dataclass(frozen=True)
class Utterance:
    """One synthesised utterance; session-level fields repeat on every utterance of the session."""

    session: str
    index: int
    split: str
    lang: str
    voice: str  # espeak-ng voice+variant, or mei_normal
    speaker_pitch: float  # espeak-ng -p or pyopenjtalk half_tone
    speaker_rate: float  # espeak-ng -s or pyopenjtalk speed
    formant: float  # vocal-tract scale (Japanese only; 1.0 for English)
    channel: str
    channel_gain_db: float
    snr_db: int
    noise_colour: float  # one-pole low-pass coefficient of the ambient noise (0 = white)
    agc: bool
    sentence: str
    condition: str
    label: int
    pitch_st: float
    gain_db: float
    tilt_db: float
    rate: float
    softclip: float  # tanh drive, 0 = none
    bursts: int
    seed: int


def read_sentences() -> list[dict[str, str]]:
    with open(DATA / "sentences.csv", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _uniform(rng: np.random.Generator, ranges: tuple[tuple[float, float], ...]) -> float:
    lo, hi = ranges[rng.integers(len(ranges))]
    return float(rng.uniform(lo, hi))


def plan(sentences: list[dict[str, str]]) -> list[list[Utterance]]:
    """Every session of every split, from one seeded generator."""
    rng = np.random.default_rng(SEED)
    sessions = []
    for split in ("train", "val", "test"):
        for lang in ("en", "ja"):
            pool = [s for s in sentences if s["split"] == split and s["lang"] == lang]
            for k in range(SESSIONS[split]):
                if lang == "en":
                    voices, variants = EN_VOICES[split]
                    name = f"{voices[rng.integers(len(voices))]}+{variants[rng.integers(len(variants))]}"
                    pitch, rate = (
                        _uniform(rng, (SPEAKER_PITCH_EN,)),
                        _uniform(rng, (SPEAKER_RATE_EN,)),
                    )
                    formant = 1.0
                else:
                    name, formant = "mei_normal", _uniform(rng, JA_FORMANT[split])
                    low = formant < 0.96  # a longer vocal tract goes with a lower voice
                    pitch = _uniform(rng, (SPEAKER_TONE_JA[0 if low else 1],))
                    rate = _uniform(rng, (SPEAKER_RATE_JA,))
                kinds = list(CHANNELS)
                channel = kinds[rng.choice(len(kinds), p=[CHANNELS[c][0] for c in kinds])]
                session = {
                    "session": f"{split}-{lang}-{k:03d}",
                    "split": split,
                    "lang": lang,
                    "voice": name,
                    "speaker_pitch": round(pitch, 2),
                    "speaker_rate": round(rate, 3),
                    "formant": round(formant, 4),
                    "channel": channel,
                    "channel_gain_db": round(_uniform(rng, (CHANNELS[channel][1],)), 2),
                    "snr_db": int(rng.choice(SNRS_DB)),
                    "noise_colour": round(float(rng.uniform(0.0, 0.95)), 3),
                    "agc": bool(rng.random() < AGC_P),
                }
                lead = int(rng.choice(LEAD_CALM[0], p=LEAD_CALM[1]))
                names = list(CONDITIONS)
                conds = ["calm"] * lead + [
                    names[i] for i in rng.choice(len(names), SCORED, p=list(CONDITIONS.values()))
                ]
                order = np.concatenate([rng.permutation(len(pool)) for _ in range(2)])
                utts = []
                for i, cond in enumerate(conds):
                    ranges = EFFORT[cond]
                    utts.append(
                        Utterance(
                            **session,
                            index=i,
                            sentence=pool[order[i]]["id"],
                            condition=cond,
                            label=int(cond == "shout"),
                            pitch_st=round(_uniform(rng, (ranges[0],)), 2),
                            gain_db=round(_uniform(rng, (ranges[1],)), 2),
                            tilt_db=round(_uniform(rng, (ranges[2],)), 2),
                            rate=round(_uniform(rng, (ranges[3],)), 3),
                            softclip=round(float(rng.uniform(*SOFTCLIP_DRIVE)), 2)
                            if cond == "shout" and rng.random() < SOFTCLIP_P
                            else 0.0,
                            bursts=int(rng.integers(BURSTS[0], BURSTS[1] + 1))
                            if cond == "noise_burst"
                            else 0,
                            seed=int(rng.integers(2**31)),
                        )
                    )
                sessions.append(utts)
    return sessions


# ---------------------------------------------------------------- synthesis and channel

_TEXT: dict[str, str] = {}
_LABELS: dict[str, list[str]] = {}


def tts(u: Utterance) -> np.ndarray:
    """The sentence at this utterance's pitch and rate, float at RATE (int16 scale)."""
    text = _TEXT[u.sentence]
    if u.lang == "en":
        p = int(np.clip(round(u.speaker_pitch + u.pitch_st / ESPEAK_ST_PER_UNIT), 0, 99))
        s = round(u.speaker_rate * u.rate)
        cmd = ["espeak-ng", "-v", u.voice, "-p", str(p), "-s", str(s), "--stdout", text]
        wav = subprocess.run(cmd, check=True, capture_output=True).stdout
        with wave.open(io.BytesIO(wav)) as w:
            sr = w.getframerate()
            x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
    else:
        import pyopenjtalk

        if text not in _LABELS:
            _LABELS[text] = pyopenjtalk.extract_fullcontext(text)
        # Declaring the samples `formant` times faster scales every frequency (formants too);
        # speed and half_tone are pre-compensated so only the vocal tract changes.
        tone = u.speaker_pitch + u.pitch_st - 12.0 * math.log2(u.formant)
        x, sr = pyopenjtalk.synthesize(
            _LABELS[text], speed=u.speaker_rate * u.rate / u.formant, half_tone=tone
        )
        sr = sr * u.formant
    return soxr.resample(x, sr, RATE)


def high_shelf(x: np.ndarray, gain_db: float) -> np.ndarray:
    """RBJ high shelf (S = 1) at SHELF_HZ: a flatter spectral tilt, as raised effort gives."""
    a = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * SHELF_HZ / RATE
    cos, alpha = math.cos(w0), math.sin(w0) / 2.0 * math.sqrt(2.0)
    sq = 2.0 * math.sqrt(a) * alpha
    b = [
        a * ((a + 1) + (a - 1) * cos + sq),
        -2 * a * ((a - 1) + (a + 1) * cos),
        a * ((a + 1) + (a - 1) * cos - sq),
    ]
    den = [
        (a + 1) - (a - 1) * cos + sq,
        2 * ((a - 1) - (a + 1) * cos),
        (a + 1) - (a - 1) * cos - sq,
    ]
    return signal.lfilter(b, den, x)


def active_dbfs(x: np.ndarray, frame: int = 320) -> float:
    """Level of the frames within 30 dB of the loudest (speech, not pauses)."""
    n = x.size // frame
    power = np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1) + 1e-9
    level = 10 * np.log10(power)
    return float(10 * np.log10(np.mean(power[level > level.max() - 30.0]) / 32768.0**2))


def effort(x: np.ndarray, u: Utterance, rng: np.random.Generator) -> np.ndarray:
    """Tilt, level (re the calm level), optional overdrive and noise bursts at the microphone."""
    x = high_shelf(x, u.tilt_db)
    level = CALM_LEVEL_DBFS + u.gain_db
    x = x * 10.0 ** ((level - active_dbfs(x)) / 20.0)
    if u.softclip:
        peak = np.max(np.abs(x))
        x = peak * np.tanh(u.softclip * x / peak) / math.tanh(u.softclip)
    for _ in range(u.bursts):
        n = int(rng.uniform(*BURST_S) * RATE)
        start = int(rng.integers(0, max(1, x.size - n)))
        burst = rng.standard_normal(n) * np.exp(-np.arange(n) / (n / 3.0))
        burst *= (
            32768.0 * 10.0 ** ((level + rng.uniform(*BURST_DB)) / 20.0) / np.sqrt(np.mean(burst**2))
        )
        x[start : start + n] += burst[: x[start:].size]
    return x


def agc(y: np.ndarray, knee_dbfs: float) -> np.ndarray:
    """A handset compressor: 20 ms levels above the knee are reduced AGC_RATIO:1, ~100 ms smoothing."""
    frame = 320
    n = y.size // frame + 1
    frames = np.pad(y, (0, n * frame - y.size)).reshape(n, frame)
    level = 10 * np.log10(np.mean(frames**2, axis=1) / 32768.0**2 + 1e-12)
    cut = np.convolve(
        np.maximum(level - knee_dbfs, 0.0) * (1 - 1 / AGC_RATIO), np.ones(5) / 5, mode="same"
    )
    gain_db = np.interp(np.arange(y.size), np.arange(n) * frame + frame / 2, -cut)
    return y * 10.0 ** (gain_db / 20.0)


_BANDPASS = signal.butter(4, BAND_HZ, btype="bandpass", fs=RATE, output="sos")


def telephone(x: np.ndarray, u: Utterance, rng: np.random.Generator) -> tuple[bytes, bytes]:
    """Microphone signal → (8 kHz μ-law as sent, 16 kHz PCM16 as the pipeline decodes it)."""
    x = np.concatenate(
        [
            np.zeros(int(rng.uniform(*PAD_S[0]) * RATE)),
            x,
            np.zeros(int(rng.uniform(*PAD_S[1]) * RATE)),
        ]
    )
    noise = signal.lfilter([1 - u.noise_colour], [1, -u.noise_colour], rng.standard_normal(x.size))
    noise *= 32768.0 * 10.0 ** ((CALM_LEVEL_DBFS - u.snr_db) / 20.0) / np.sqrt(np.mean(noise**2))
    y = (x + noise) * 10.0 ** (u.channel_gain_db / 20.0)
    if u.agc:
        y = agc(y, CALM_LEVEL_DBFS + u.channel_gain_db + AGC_KNEE_DB)
    y8 = soxr.resample(signal.sosfilt(_BANDPASS, y), RATE, 8000)
    ulaw = audioop.lin2ulaw(np.clip(np.round(y8), -32768, 32767).astype("<i2").tobytes(), 2)
    back = np.frombuffer(audioop.ulaw2lin(ulaw, 2), dtype="<i2").astype(np.float64)
    y16 = soxr.resample(back, 8000, RATE)
    return ulaw, np.clip(np.round(y16), -32768, 32767).astype("<i2").tobytes()


def render(u: Utterance) -> tuple[bytes, bytes]:
    rng = np.random.default_rng(u.seed)
    return telephone(effort(tts(u), u, rng), u, rng)


def render_session(session: list[Utterance]) -> list[dict]:
    """Audio and measurements of one session (runs in a worker process)."""
    out = []
    for u in session:
        _, pcm = render(u)
        duration = len(pcm) / 2 / RATE
        rng = np.random.default_rng(u.seed + 1)
        end = (
            float(rng.uniform(WINDOW_S + 0.3, duration)) if duration >= WINDOW_S + 0.5 else duration
        )
        window = pcm[max(0, int((end - WINDOW_S) * RATE)) * 2 : int(end * RATE) * 2]
        ends = np.arange(WINDOW_S, duration + 1e-9, WINDOW_EVERY_S) if u.split == "val" else []
        out.append(
            {
                "segment": voice.measure(pcm),
                "window": voice.measure(window),
                "server_windows": [
                    voice.measure(pcm[int((e - WINDOW_S) * RATE) * 2 : int(e * RATE) * 2])
                    for e in ends
                ],
                "duration_s": duration,
                "pcm": pcm if u.split == "test" else None,
            }
        )
    return out


# ---------------------------------------------------------------- features and model


def feature_rows(sessions, rendered, prior) -> list[dict]:
    """Model inputs of every segment and its random mid-utterance window (kind "segment",
    "window"), and on validation the windows the server would score (kind "server_windows",
    one row per utterance with a list of inputs).

    The baseline is simulated with the true labels (a shout does not join it once the caller's
    own baseline stands), i.e. as if the model were right; the test figures come from the
    runtime, where the model decides.
    """
    rows = []
    for session, outs in zip(sessions, rendered, strict=True):
        baseline = voice.SpeakerBaseline(prior)
        for u, out in zip(session, outs, strict=True):
            reference, segments = baseline.reference()
            for kind in ("segment", "window"):
                m = out[kind]
                if m["voiced_s"] >= voice.MIN_VOICED_S:
                    rows.append(
                        {
                            "u": u,
                            "kind": kind,
                            "segments": segments,
                            "x": voice.model_features(m, reference, segments),
                        }
                    )
            if out["server_windows"]:
                xs = [
                    voice.model_features(m, reference, segments)
                    for m in out["server_windows"]
                    if m["voiced_s"] >= voice.MIN_VOICED_S
                ]
                rows.append({"u": u, "kind": "server_windows", "segments": segments, "xs": xs})
            baseline.observe(out["segment"], shouting=bool(u.label))
    return rows


def matrix(rows) -> tuple[np.ndarray, np.ndarray]:
    x = np.array([[r["x"][k] for k in voice.FEATURES] for r in rows], dtype=np.float32)
    return x, np.array([r["u"].label for r in rows])


def negative_kind(u: Utterance) -> str:
    """Hard-negative kind for reporting: calm speech is split by the session's channel gain."""
    if u.condition == "calm" and u.channel != "normal":
        return f"calm_{u.channel}_channel"
    return u.condition


def stats(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    tp = int(np.sum(pred & (y == 1)))
    fp = int(np.sum(pred & (y == 0)))
    fn = int(np.sum(~pred & (y == 1)))
    p = tp / (tp + fp) if tp + fp else float("nan")
    r = tp / (tp + fn) if tp + fn else float("nan")
    f1 = 2 * p * r / (p + r) if tp else 0.0
    return {
        "n": int(y.size),
        "positives": int(np.sum(y == 1)),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": p,
        "recall": r,
        "f1": f1,
    }


def pick_threshold(p_seg, seg_rows, p_win, win_rows) -> tuple[float, dict]:
    """Lowest threshold (max recall) with precision >= MIN_PRECISION on segments and on
    utterances flagged by any of the server's windows, and false alarms on calm speech at a
    louder or quieter channel <= MAX_GAIN_FALSE_ALARM on both. ``p_win``: per utterance, the
    highest window probability (0 when it has none)."""
    y_s = np.array([r["u"].label for r in seg_rows])
    y_w = np.array([r["u"].label for r in win_rows])
    gain_s = np.array([negative_kind(r["u"]).endswith("_channel") for r in seg_rows])
    gain_w = np.array([negative_kind(r["u"]).endswith("_channel") for r in win_rows])
    for t in np.round(np.arange(0.05, 0.991, 0.01), 2):
        s, w = stats(y_s, p_seg >= t), stats(y_w, p_win >= t)
        fa_s, fa_w = float(np.mean(p_seg[gain_s] >= t)), float(np.mean(p_win[gain_w] >= t))
        if (
            s["precision"] >= MIN_PRECISION
            and w["precision"] >= MIN_PRECISION
            and max(fa_s, fa_w) <= MAX_GAIN_FALSE_ALARM
        ):
            return float(t), {
                "segment": s,
                "window_any": w,
                "gain_false_alarm_segment": fa_s,
                "gain_false_alarm_window_any": fa_w,
            }
    raise SystemExit("no threshold meets the validation constraints")


def fit(x, y, c):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        StandardScaler(), LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
    ).fit(x, y)


def export(model, n_features: int) -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    onx = convert_sklearn(
        model,
        initial_types=[("features", FloatTensorType([None, n_features]))],
        target_opset={"": 17, "ai.onnx.ml": 1},
        options={"zipmap": False},
        name=voice.MODEL_NAME,  # skl2onnx's default is a random uuid: the file would differ per run
    )
    return onx.SerializeToString()


# ---------------------------------------------------------------- evaluation through the runtime


def runtime_eval(
    detector: voice.ShoutingDetector, sessions, rendered
) -> tuple[list[dict], list[dict]]:
    """Test sessions in speaking order through ShoutingDetector, as the server calls it: windows
    every WINDOW_EVERY_S once WINDOW_S is spoken (baseline untouched), then the segment."""
    seg, win = [], []
    for session, outs in zip(sessions, rendered, strict=True):
        baseline = detector.new_baseline()
        for u, out in zip(session, outs, strict=True):
            pcm = out["pcm"]
            segments = baseline.segments
            scores = []
            for end in np.arange(WINDOW_S, out["duration_s"] + 1e-9, WINDOW_EVERY_S):
                scores.append(detector.score_window(pcm[: int(end * RATE) * 2], baseline).shouting)
                win.append({"u": u, "p": scores[-1], "segments": segments})
            s = detector.score_segment(pcm, baseline)
            seg.append(
                {
                    "u": u,
                    "p": s.shouting,
                    "segments": segments,
                    "window_max": max(scores, default=0.0),
                }
            )
    return seg, win


def slices(rows, threshold: float, prefix: str, p_key: str = "p") -> dict[str, float]:
    """Flat metrics of one level: all, per language, SNR, channel, baseline state, hard negative."""
    y = np.array([r["u"].label for r in rows])
    pred = np.array([r[p_key] for r in rows]) >= threshold
    groups = {"all": np.ones(y.size, bool)}
    for lang in ("en", "ja"):
        groups[f"lang_{lang}"] = np.array([r["u"].lang == lang for r in rows])
    for snr in SNRS_DB:
        groups[f"snr_{snr}"] = np.array([r["u"].snr_db == snr for r in rows])
    for ch in CHANNELS:
        groups[f"channel_{ch}"] = np.array([r["u"].channel == ch for r in rows])
    groups["baseline_prior"] = np.array([r["segments"] < voice.BASELINE_MIN_SEGMENTS for r in rows])
    groups["baseline_own"] = ~groups["baseline_prior"]
    out = {}
    for name, mask in groups.items():
        for k, v in stats(y[mask], pred[mask]).items():
            out[f"{prefix}.{name}.{k}"] = v
    kinds = {negative_kind(r["u"]) for r in rows if not r["u"].label}
    for kind in sorted(kinds):
        mask = np.array([not r["u"].label and negative_kind(r["u"]) == kind for r in rows])
        out[f"{prefix}.false_alarm.{kind}.n"] = int(mask.sum())
        out[f"{prefix}.false_alarm.{kind}.rate"] = float(pred[mask].mean())
    for name, keep in (
        ("shout_plain", lambda u: not u.softclip and not u.agc),
        ("shout_softclip", lambda u: bool(u.softclip)),
        ("shout_agc", lambda u: u.agc),
    ):
        mask = np.array([bool(r["u"].label) and keep(r["u"]) for r in rows])
        out[f"{prefix}.recall.{name}.n"] = int(mask.sum())
        out[f"{prefix}.recall.{name}.rate"] = (
            float(pred[mask].mean()) if mask.any() else float("nan")
        )
    return out


def latency(detector: voice.ShoutingDetector, rendered) -> dict[str, float]:
    """Features + inference on one core for 3 s and 1.5 s of test audio (median, p95 in ms)."""
    clips = [o["pcm"][: 3 * RATE * 2] for outs in rendered for o in outs if o["duration_s"] >= 3.0][
        :100
    ]
    baseline = detector.new_baseline()
    out = {}
    for name, seconds in (("segment_3s", 3.0), ("window_1_5s", WINDOW_S)):
        times = []
        for _ in range(2):
            for clip in clips:
                t = time.perf_counter()
                detector.score_window(clip, baseline, window_s=seconds)
                times.append(1000 * (time.perf_counter() - t))
        out[f"latency.{name}.median_ms"] = float(np.median(times))
        out[f"latency.{name}.p95_ms"] = float(np.percentile(times, 95))
        out[f"latency.{name}.runs"] = len(times)
    return out


STARTUP = """
import json, time
t0 = time.perf_counter()
from stream_server.classifiers import voice
t1 = time.perf_counter()
d = voice.ShoutingDetector()
t2 = time.perf_counter()
d.warm_up()
t3 = time.perf_counter()
print(json.dumps({"startup.import_s": t1 - t0, "startup.load_s": t2 - t1, "startup.warm_up_s": t3 - t2}))
"""

LIBROSA_CHECK = """
import json, sys, time
import numpy as np
t0 = time.perf_counter()
import librosa
t1 = time.perf_counter()
x = np.zeros(16000, dtype=np.float32)
librosa.yin(x + 1e-3, fmin=60, fmax=500, sr=8000, frame_length=512, hop_length=160)
t2 = time.perf_counter()
print(json.dumps({"librosa.import_s": t1 - t0, "librosa.first_yin_s": t2 - t1}))
"""


def librosa_agreement(rendered) -> dict[str, float]:
    """This module's YIN against librosa.yin on the same 8 kHz frames (a sample of test audio)."""
    import librosa

    diffs = []
    for outs in rendered[:10]:
        for o in outs[:4]:
            x = np.frombuffer(o["pcm"], dtype="<i2").astype(np.float32)
            narrow = soxr.resample(x, RATE, voice.PITCH_RATE, quality="HQ")
            frames = voice._frames(narrow, voice.PITCH_FRAME, voice.PITCH_HOP).astype(np.float64)
            f0, aperiodicity = voice._yin(frames, voice.PITCH_RATE)
            ref = librosa.yin(
                narrow / 32768.0,
                fmin=voice.FMIN_HZ,
                fmax=voice.FMAX_HZ,
                sr=voice.PITCH_RATE,
                frame_length=voice.PITCH_FRAME,
                hop_length=voice.PITCH_HOP,
                center=True,
                pad_mode="constant",
            )
            n = min(ref.size, f0.size)
            voiced = aperiodicity[:n] < voice.VOICED_APERIODICITY
            diffs.append(np.abs(12 * np.log2(f0[:n][voiced] / ref[:n][voiced])))
    d = np.concatenate(diffs)
    return {
        "yin_vs_librosa.frames": int(d.size),
        "yin_vs_librosa.within_1_st": float(np.mean(d < 1.0)),
    }


def write_fixtures(sessions, detector: voice.ShoutingDetector) -> dict:
    """Four μ-law files of a held-out English speaker: three calm sentences, and the third again
    with raised effort. Mid-range effort, so the tests check behaviour, not a borderline case."""
    FIXTURES.mkdir(parents=True, exist_ok=True)
    speaker = next(s[0] for s in sessions if s[0].split == "test" and s[0].lang == "en")
    sentences = [f"en{i:02d}" for i in (4, 9, 14)]
    base = dict(
        {f.name: getattr(speaker, f.name) for f in fields(Utterance)},
        session="fixture",
        channel="normal",
        channel_gain_db=0.0,
        snr_db=20,
        agc=False,
        softclip=0.0,
        bursts=0,
        rate=1.0,
    )
    specs = {
        "calm_1": {
            "sentence": sentences[0],
            "condition": "calm",
            "label": 0,
            "pitch_st": 0.0,
            "gain_db": 0.0,
            "tilt_db": 0.0,
        },
        "calm_2": {
            "sentence": sentences[1],
            "condition": "calm",
            "label": 0,
            "pitch_st": 0.3,
            "gain_db": 0.5,
            "tilt_db": 0.0,
        },
        "calm_3": {
            "sentence": sentences[2],
            "condition": "calm",
            "label": 0,
            "pitch_st": -0.2,
            "gain_db": -0.5,
            "tilt_db": 0.0,
        },
        "raised_3": {
            "sentence": sentences[2],
            "condition": "shout",
            "label": 1,
            "pitch_st": 5.0,
            "gain_db": 12.0,
            "tilt_db": 6.0,
        },
    }
    scores, pcm = {}, {}
    for i, (name, spec) in enumerate(specs.items()):
        u = Utterance(**{**base, **spec, "index": i, "seed": SEED + i})
        ulaw, pcm[name] = render(u)
        (FIXTURES / f"{name}.ulaw").write_bytes(ulaw)
    for name in ("calm_3", "raised_3"):
        baseline = detector.new_baseline()
        for b in ("calm_1", "calm_2"):
            detector.score_segment(pcm[b], baseline)
        scores[name] = detector.score_segment(pcm[name], baseline).shouting
    return {"speaker": speaker.voice, "sentences": sentences, "scores": scores}


def write_specs(sessions) -> str:
    path = DATA / "utterances.csv"
    names = [f.name for f in fields(Utterance)]
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(names)
        for session in sessions:
            for u in session:
                w.writerow([getattr(u, n) for n in names])
    return hashlib.sha256(path.read_bytes()).hexdigest()


def clean(d: dict) -> dict:
    """NaN (an empty slice) becomes null; floats rounded for reading."""
    return {
        k: (
            None
            if isinstance(v, float) and math.isnan(v)
            else round(v, 4)
            if isinstance(v, float)
            else v
        )
        for k, v in d.items()
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--jobs", type=int, default=2, help="worker processes for synthesis (default 2)"
    )
    ap.add_argument(
        "--cache",
        type=Path,
        help="pickle of the synthesised measurements: reused if it exists, else written",
    )
    args = ap.parse_args()
    started = time.perf_counter()
    sentences = read_sentences()
    _TEXT.update({s["id"]: s["text"] for s in sentences})
    sessions = plan(sentences)
    specs_sha = write_specs(sessions)
    n_utts = sum(len(s) for s in sessions)
    print(f"{len(sessions)} sessions, {n_utts} utterances", flush=True)

    if args.cache and args.cache.exists():
        rendered = pickle.loads(args.cache.read_bytes())
    else:
        with get_context("fork").Pool(args.jobs) as pool:
            rendered = pool.map(render_session, sessions, chunksize=1)
        if args.cache:
            args.cache.write_bytes(pickle.dumps(rendered))
    synth_s = time.perf_counter() - started
    print(f"synthesised and measured in {synth_s:.0f} s", flush=True)

    calm = [
        o["segment"]
        for s, outs in zip(sessions, rendered)
        for u, o in zip(s, outs)
        if u.split == "train"
        and u.condition == "calm"
        and o["segment"]["voiced_s"] >= voice.MIN_VOICED_S
    ]
    prior = {k: round(float(np.median([m[k] for m in calm])), 3) for k in voice.BASELINE_KEYS}
    by_split = {}
    for split in ("train", "val", "test"):
        idx = [i for i, s in enumerate(sessions) if s[0].split == split]
        by_split[split] = feature_rows(
            [sessions[i] for i in idx], [rendered[i] for i in idx], prior
        )
    train, val = by_split["train"], by_split["val"]
    train = [r for r in train if r["kind"] != "server_windows"]
    x_tr, y_tr = matrix(train)
    val_seg = [r for r in val if r["kind"] == "segment"]
    val_win = [r for r in val if r["kind"] == "server_windows"]
    val = [r for r in val if r["kind"] != "server_windows"]

    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import average_precision_score

    x_va, y_va = matrix(val)
    candidates = {c: fit(x_tr, y_tr, c) for c in C_GRID}
    ap_val = {
        c: float(average_precision_score(y_va, m.predict_proba(x_va)[:, 1]))
        for c, m in candidates.items()
    }
    best_c = max(
        C_GRID, key=lambda c: (round(ap_val[c], 3), -c)
    )  # ties: the stronger regularisation
    model = candidates[best_c]
    hgb = HistGradientBoostingClassifier(
        max_depth=3, max_iter=200, learning_rate=0.1, random_state=SEED
    ).fit(x_tr, y_tr)
    ap_hgb = float(average_precision_score(y_va, hgb.predict_proba(x_va)[:, 1]))
    print(f"val AP: LR {ap_val} (C={best_c}); HistGradientBoosting {ap_hgb:.4f}", flush=True)

    p_vs = model.predict_proba(matrix(val_seg)[0])[:, 1]
    p_vw = np.array(
        [
            model.predict_proba(matrix([dict(r, x=x) for x in r["xs"]])[0])[:, 1].max()
            if r["xs"]
            else 0.0
            for r in val_win
        ]
    )
    threshold, val_at = pick_threshold(p_vs, val_seg, p_vw, val_win)
    print(f"threshold {threshold}: val {val_at}", flush=True)

    onnx_bytes = export(model, len(voice.FEATURES))
    MODEL_PATH.write_bytes(onnx_bytes)
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    x_te, _ = matrix(by_split["test"])
    onnx_p = session.run(["probabilities"], {"features": x_te})[0][:, 1]
    parity = float(np.max(np.abs(onnx_p - model.predict_proba(x_te)[:, 1])))
    assert parity < 1e-4, parity
    scaler, lr = model.named_steps["standardscaler"], model.named_steps["logisticregression"]

    meta = {
        "model": voice.MODEL_NAME,
        "version": VERSION,
        "task": "raised voice (shouting, 威圧的な言動) of a caller relative to their own calm voice; one VAD segment or a 1.5 s window of one",
        "features": list(voice.FEATURES),
        "threshold": threshold,
        "threshold_selection": (
            f"lowest threshold on a 0.01 grid at which validation precision >= {MIN_PRECISION} on segments and on "
            "utterances flagged by any of the server's windows (1.5 s, every 0.5 s), and false alarms on calm speech at a "
            f"louder/quieter channel <= {MAX_GAIN_FALSE_ALARM} on both (maximum recall under those constraints)"
        ),
        "decision": "shouting when probabilities[:, shouting_column] >= threshold; segments with voiced_s < min_voiced_s score 0.0",
        "input": {
            "name": "features",
            "type": f"float32 tensor [N, {len(voice.FEATURES)}]",
            "order": "features",
        },
        "output": {"name": "probabilities", "type": "float32 tensor [N, 2]", "shouting_column": 1},
        "logistic_regression": {
            "formula": "p = 1 / (1 + exp(-(intercept + sum_i coef[i] * (x[i] - mean[i]) / scale[i])))",
            "mean": [float(v) for v in scaler.mean_],
            "scale": [float(v) for v in scaler.scale_],
            "coef": [float(v) for v in lr.coef_[0]],
            "intercept": float(lr.intercept_[0]),
            "C": best_c,
            "class_weight": "balanced",
        },
        "baseline_prior": prior,
        "baseline": {
            "keys": list(voice.BASELINE_KEYS),
            "statistic": f"median of the last {voice.BASELINE_HISTORY} non-shouting segments",
            "min_segments": voice.BASELINE_MIN_SEGMENTS,
            "segments_cap": voice.BASELINE_SEGMENTS_CAP,
            "prior": "median of the training split's calm segments (all channel gains); stands in below min_segments",
        },
        "measurement": {
            "sample_rate": voice.SAMPLE_RATE,
            "hop_s": voice.HOP / voice.SAMPLE_RATE,
            "spectrum_frame_s": voice.SPECTRUM_FRAME / voice.SAMPLE_RATE,
            "pitch": f"YIN on an 8 kHz copy, {voice.PITCH_FRAME / voice.PITCH_RATE * 1000:.0f} ms frames, "
            f"{voice.FMIN_HZ:.0f}-{voice.FMAX_HZ:.0f} Hz, threshold {voice.YIN_THRESHOLD}",
            "voiced_frame": f"level > {voice.ACTIVE_FLOOR_DBFS} dBFS and YIN aperiodicity < {voice.VOICED_APERIODICITY}",
            "bands_hz": {"low": voice.LOW_BAND_HZ, "high": voice.HIGH_BAND_HZ},
            "clip_level": voice.CLIP_LEVEL,
            "min_voiced_s": voice.MIN_VOICED_S,
            "window_s": WINDOW_S,
        },
        "training_data": {
            "description": "synthesised speech only (espeak-ng English, pyopenjtalk mei_normal Japanese) with simulated vocal effort "
            "and a simulated telephone channel; see models/data/voice_shouting/README.md",
            "sentences": "models/data/voice_shouting/sentences.csv",
            "sentences_sha256": hashlib.sha256((DATA / "sentences.csv").read_bytes()).hexdigest(),
            "utterances": "models/data/voice_shouting/utterances.csv",
            "utterances_sha256": specs_sha,
            "seed": SEED,
            "sessions": {k: 2 * v for k, v in SESSIONS.items()},
            "rows": {
                k: {kind: sum(r["kind"] == kind for r in v) for kind in ("segment", "window")}
                for k, v in by_split.items()
            },
            "val_server_window_utterances": len(val_win),
        },
        "selection": {
            "val_average_precision": {f"lr_C{c}": round(v, 4) for c, v in ap_val.items()},
            "val_average_precision_hist_gradient_boosting": round(ap_hgb, 4),
            "chosen": f"LogisticRegression C={best_c} (StandardScaler first)",
        },
        "validation_at_threshold": {
            k: (clean(v) if isinstance(v, dict) else round(v, 4)) for k, v in val_at.items()
        },
        "onnx_parity_max_abs_diff": parity,
        "versions": {
            "python": platform.python_version(),
            **{
                p: importlib.metadata.version(p)
                for p in (
                    "scikit-learn",
                    "skl2onnx",
                    "onnx",
                    "onnxruntime",
                    "numpy",
                    "soxr",
                    "pyopenjtalk-plus",
                    "librosa",
                )
            },
            "espeak-ng": subprocess.run(
                ["espeak-ng", "--version"], capture_output=True, text=True, check=True
            )
            .stdout.split(":")[1]
            .split("Data")[0]
            .strip(),
            "target_opset": {"": 17, "ai.onnx.ml": 1},
        },
    }
    MODEL_PATH.with_suffix(".json").write_text(
        json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )

    detector = voice.ShoutingDetector(MODEL_PATH)
    test_idx = [i for i, s in enumerate(sessions) if s[0].split == "test"]
    test_sessions, test_rendered = [sessions[i] for i in test_idx], [rendered[i] for i in test_idx]
    seg, win = runtime_eval(detector, test_sessions, test_rendered)
    metrics = {
        "_schema": "flat: '<level>.<slice>.<stat>'. level: segment (finished VAD segment, runtime, model-driven baseline), "
        "window (every 1.5 s window the server scores mid-utterance, one per 0.5 s of speech), window_any (an utterance counts "
        "as flagged when any of its windows is), oracle_segment (segments with a label-driven baseline; parity check). slice: all, "
        "lang_en/ja, snr_30/20/12, channel_normal/loud/quiet (session gain), baseline_prior (<2 earlier segments: population prior) / "
        "baseline_own. stat: n, positives, tp, fp, fn, precision, recall, f1. false_alarm.<kind>.rate: share of that hard negative "
        "flagged (calm_loud_channel/calm_quiet_channel: calm speech in a session 6-14 dB louder/quieter; calm: normal channel). "
        "recall.<kind>.rate: shouts flagged (plain, soft-clipped, AGC-compressed). null: empty slice. Held-out test split: "
        "speakers and sentences unseen in training.",
        "model": voice.MODEL_NAME,
        "version": VERSION,
        "threshold": threshold,
        "data.test_sessions": len(test_sessions),
        "data.test_segments": len(seg),
        "data.test_windows": len(win),
    }
    metrics.update(slices(seg, threshold, "segment"))
    metrics.update(slices(win, threshold, "window"))
    metrics.update(slices(seg, threshold, "window_any", p_key="window_max"))
    oracle = [
        dict(r, p=float(p)) for r, p in zip(by_split["test"], onnx_p) if r["kind"] == "segment"
    ]
    metrics.update(
        {k: v for k, v in slices(oracle, threshold, "oracle_segment").items() if ".all." in k}
    )
    metrics["onnx_parity_max_abs_diff"] = parity
    metrics.update(latency(detector, test_rendered))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for script in (STARTUP, LIBROSA_CHECK):
        out = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            check=True,
        )
        metrics.update(json.loads(out.stdout.strip().splitlines()[-1]))
    metrics.update(librosa_agreement(test_rendered))
    fixtures = write_fixtures(sessions, detector)
    metrics["fixtures.calm_3"] = fixtures["scores"]["calm_3"]
    metrics["fixtures.raised_3"] = fixtures["scores"]["raised_3"]
    metrics["training.seconds"] = time.perf_counter() - started
    metrics = clean(metrics)
    EVAL_PATH.write_text(json.dumps(metrics, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

    keep = (
        "segment.all.",
        "segment.lang_",
        "segment.false_alarm.",
        "window.all.",
        "window_any.all.",
        "latency.",
        "startup.",
    )
    meta["metrics_test"] = {
        k: v
        for k, v in metrics.items()
        if k.startswith(keep) and not k.endswith((".tp", ".fp", ".fn"))
    }
    meta["fixtures"] = fixtures
    MODEL_PATH.with_suffix(".json").write_text(
        json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    for k in (
        "segment.all.precision",
        "segment.all.recall",
        "segment.all.f1",
        "window.all.precision",
        "window.all.recall",
        "latency.segment_3s.median_ms",
        "latency.segment_3s.p95_ms",
        "training.seconds",
    ):
        print(k, metrics[k])


if __name__ == "__main__":
    main()
