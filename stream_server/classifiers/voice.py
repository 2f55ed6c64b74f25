"""Raised-voice (shouting, 威圧的な言動) scores for caller speech from the ONNX model under models/.

Shouting is relative: a loud line is loud *for this caller*. Each utterance is measured
(:func:`measure`: level, pitch, spectral tilt, ... of its voiced frames), the measurements are
turned into differences from the caller's own normal voice (:class:`SpeakerBaseline`, the median
of their earlier calm utterances) by :func:`model_features`, and a logistic regression trained by
``models/train_voice_shouting.py`` turns those into a probability. Training calls the same two
functions, so training and serving cannot drift.

The measurements are plain numpy (a YIN pitch tracker on an 8 kHz copy made with soxr, a
power spectrum of 32 ms frames).
librosa was measured and left out of the run time: every entry point imports
``librosa.util``, whose numba ufuncs compile eagerly at import, 27-45 s on this 2-core machine
with a cold numba cache and 2-4 s with a warm one, per process. This module imports numpy,
soxr (already the pipeline's resampler), onnxruntime and the standard library.
"""

from __future__ import annotations

import math
import statistics
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

from .onnx_model import load_onnx_model

MODEL_NAME = "voice_shouting_v1"

SAMPLE_RATE = 16000
HOP = 320  # 20 ms between frame centres, the VAD's frame
SPECTRUM_FRAME = 512  # 32 ms Hann frames for level and spectrum
PITCH_RATE = 8000  # YIN runs on the telephone band: a quarter of the cost at 16 kHz
PITCH_HOP = HOP * PITCH_RATE // SAMPLE_RATE
PITCH_FRAME = 512  # 64 ms YIN frames: two periods of a 60 Hz voice
PITCH_WINDOW = 256  # YIN integration window inside a pitch frame
FMIN_HZ, FMAX_HZ = 60.0, 500.0
YIN_THRESHOLD = 0.15  # first dip of the normalised difference below this is the period
VOICED_APERIODICITY = 0.35  # frames whose best dip is higher are not voiced
ACTIVE_FLOOR_DBFS = -55.0  # quieter frames are line hiss (the VAD's energy floor)
LOW_BAND_HZ = (250.0, 1000.0)  # the telephone band below and above 1 kHz: raised effort
HIGH_BAND_HZ = (1000.0, 3400.0)  # moves energy from the first to the second
CLIP_LEVEL = 29000  # |sample| at or above this is near full scale (μ-law peaks at 32124)
MIN_VOICED_S = 0.3  # less voiced audio than this is not scored (shouting = 0.0)

BASELINE_KEYS = ("level_dbfs", "f0_st", "tilt_db", "centroid_hz", "voicing_rate_hz")
BASELINE_MIN_SEGMENTS = 2  # below this the population prior stands in for the caller
BASELINE_HISTORY = 20  # utterances the running median looks back over
BASELINE_SEGMENTS_CAP = 5  # the model sees min(segments, cap): more adds no trust

# Model inputs, in the ONNX input's column order (the sidecar JSON repeats it; checked on load).
FEATURES = (
    "level_delta_db",  # active level of voiced frames minus the baseline's, dB
    "f0_delta_st",  # median pitch minus the baseline's, semitones
    "tilt_delta_db",  # high/low band energy ratio minus the baseline's, dB
    "centroid_delta_oct",  # spectral centroid over the baseline's, octaves
    "voicing_rate_delta_hz",  # voiced-run starts per second minus the baseline's
    "f0_range_st",  # 10-90 percentile span of pitch, semitones
    "clip_fraction",  # share of voiced frames that reach CLIP_LEVEL
    "own_baseline",  # 1.0 once the caller's own baseline stands (>= BASELINE_MIN_SEGMENTS)
    "level_delta_own_db",  # level_delta_db when own_baseline, else 0: the LR's trust switch
    "f0_delta_own_st",  # f0_delta_st when own_baseline, else 0
    "baseline_segments",  # min(segments in the baseline, BASELINE_SEGMENTS_CAP)
)


def default_model_path() -> Path:
    """The repository's committed model: stream_server/classifiers/ -> ../../models/."""
    return Path(__file__).resolve().parents[2] / "models" / f"{MODEL_NAME}.onnx"


def _frames(x: np.ndarray, length: int, hop: int = HOP) -> np.ndarray:
    """Centred frames, one every ``hop`` samples: frame t is centred on sample t * hop."""
    n = 1 + x.size // hop
    padded = np.pad(x, (length // 2, length // 2 + hop))
    return np.lib.stride_tricks.sliding_window_view(padded, length)[: n * hop : hop]


def _yin(frames: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(f0 in Hz, aperiodicity 0..1) per frame: YIN (de Cheveigné & Kawahara 2002).

    The difference function comes from one FFT cross-correlation per frame; the period is the
    first local minimum of the cumulative-mean-normalised difference below YIN_THRESHOLD, else
    its global minimum, refined by a parabola through its neighbours.
    """
    w = PITCH_WINDOW
    lo = int(sample_rate / FMAX_HZ)
    hi = min(math.ceil(sample_rate / FMIN_HZ), frames.shape[1] - w - 1)
    n_fft = 1 << math.ceil(math.log2(frames.shape[1] + w))
    spec = np.fft.rfft(frames, n_fft, axis=1)
    head = np.fft.rfft(frames[:, :w], n_fft, axis=1)
    acf = np.fft.irfft(spec * np.conj(head), n_fft, axis=1)[:, : hi + 2]
    energy = np.cumsum(np.pad(frames * frames, ((0, 0), (1, 0))), axis=1)
    window_energy = energy[:, w : w + hi + 2] - energy[:, : hi + 2]
    diff = np.maximum(window_energy[:, :1] + window_energy - 2.0 * acf, 0.0)
    taus = np.arange(1, hi + 2)
    mean = np.cumsum(diff[:, 1:], axis=1) / taus
    cmnd = np.ones_like(diff)
    cmnd[:, 1:] = diff[:, 1:] / np.maximum(mean, 1e-12)
    inner = cmnd[:, lo : hi + 1]
    dips = (inner < cmnd[:, lo - 1 : hi]) & (inner <= cmnd[:, lo + 1 : hi + 2])
    below = dips & (inner < YIN_THRESHOLD)
    first = np.where(below.any(axis=1), below.argmax(axis=1), inner.argmin(axis=1))
    tau = lo + first
    rows = np.arange(tau.size)
    a, b, c = cmnd[rows, tau - 1], cmnd[rows, tau], cmnd[rows, tau + 1]
    curve = a - 2.0 * b + c
    shift = np.where(np.abs(curve) > 1e-12, 0.5 * (a - c) / np.where(curve == 0, 1, curve), 0.0)
    period = tau + np.clip(shift, -1.0, 1.0)
    return sample_rate / period, np.clip(b, 0.0, 1.0)


def _to_float(pcm16: bytes, sample_rate: int) -> np.ndarray:
    x = np.frombuffer(pcm16, dtype="<i2").astype(np.float32)
    if sample_rate != SAMPLE_RATE and x.size:
        x = soxr.resample(x, sample_rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
    return x


def measure(pcm16: bytes, sample_rate: int = SAMPLE_RATE) -> dict[str, float]:
    """Absolute measurements of one stretch of mono 16-bit speech, over its voiced frames.

    Always has ``duration_s`` and ``voiced_s``; the rest only when ``voiced_s`` reaches
    MIN_VOICED_S. Levels are dBFS (a full-scale square wave is 0), pitch is semitones
    relative to 100 Hz.
    """
    x = _to_float(pcm16, sample_rate)
    out = {"duration_s": x.size / SAMPLE_RATE, "voiced_s": 0.0}
    if x.size < PITCH_FRAME:
        return out
    spectral = _frames(x, SPECTRUM_FRAME)
    energy = np.mean(spectral * spectral, axis=1) / 32768.0**2
    level = 10.0 * np.log10(np.maximum(energy, 1e-12))
    narrow = soxr.resample(x, SAMPLE_RATE, PITCH_RATE, quality="HQ")
    f0, aperiodicity = _yin(_frames(narrow, PITCH_FRAME, PITCH_HOP).astype(np.float64), PITCH_RATE)
    n = min(level.size, f0.size)  # the 8 kHz copy can be one frame shorter
    spectral, energy, level, f0, aperiodicity = (
        spectral[:n],
        energy[:n],
        level[:n],
        f0[:n],
        aperiodicity[:n],
    )
    voiced = (level > ACTIVE_FLOOR_DBFS) & (aperiodicity < VOICED_APERIODICITY)
    voiced_count = int(voiced.sum())
    out["voiced_s"] = voiced_count * HOP / SAMPLE_RATE
    if out["voiced_s"] < MIN_VOICED_S:
        return out

    power = np.abs(np.fft.rfft(spectral[voiced] * np.hanning(SPECTRUM_FRAME), axis=1)) ** 2
    freqs = np.fft.rfftfreq(SPECTRUM_FRAME, 1.0 / SAMPLE_RATE)
    low = power[:, (freqs >= LOW_BAND_HZ[0]) & (freqs < LOW_BAND_HZ[1])].sum()
    band = (freqs >= HIGH_BAND_HZ[0]) & (freqs < HIGH_BAND_HZ[1])
    high = power[:, band].sum()
    full = (freqs >= LOW_BAND_HZ[0]) & (freqs < HIGH_BAND_HZ[1])
    spectrum = power[:, full].sum(axis=0)
    semitones = 12.0 * np.log2(f0[voiced] / 100.0)
    p10, p50, p90 = np.percentile(semitones, [10, 50, 90])
    starts = np.flatnonzero(np.diff(voiced.astype(np.int8), prepend=0) == 1)
    ends = np.flatnonzero(voiced)
    span_s = (ends[-1] - starts[0] + 1) * HOP / SAMPLE_RATE
    peaks = np.max(np.abs(spectral[voiced]), axis=1)
    out.update(
        level_dbfs=float(10.0 * np.log10(np.mean(energy[voiced]))),
        f0_st=float(p50),
        f0_range_st=float(p90 - p10),
        tilt_db=float(10.0 * np.log10(max(high, 1e-9) / max(low, 1e-9))),
        centroid_hz=float(np.dot(freqs[full], spectrum) / max(spectrum.sum(), 1e-9)),
        voicing_rate_hz=float(starts.size / span_s),
        clip_fraction=float(np.mean(peaks >= CLIP_LEVEL)),
    )
    return out


def model_features(
    measured: Mapping[str, float], reference: Mapping[str, float], segments: int
) -> dict[str, float]:
    """The model's inputs (FEATURES order) for measurements against a baseline reference.

    ``reference`` holds BASELINE_KEYS (a :meth:`SpeakerBaseline.reference`); ``segments`` is how
    many of the caller's utterances stand behind it (0 or 1: the reference is the prior).
    """
    own = 1.0 if segments >= BASELINE_MIN_SEGMENTS else 0.0
    level = measured["level_dbfs"] - reference["level_dbfs"]
    f0 = measured["f0_st"] - reference["f0_st"]
    return {
        "level_delta_db": level,
        "f0_delta_st": f0,
        "tilt_delta_db": measured["tilt_db"] - reference["tilt_db"],
        "centroid_delta_oct": math.log2(
            max(measured["centroid_hz"], 1.0) / max(reference["centroid_hz"], 1.0)
        ),
        "voicing_rate_delta_hz": measured["voicing_rate_hz"] - reference["voicing_rate_hz"],
        "f0_range_st": measured["f0_range_st"],
        "clip_fraction": measured["clip_fraction"],
        "own_baseline": own,
        "level_delta_own_db": level * own,
        "f0_delta_own_st": f0 * own,
        "baseline_segments": float(min(segments, BASELINE_SEGMENTS_CAP)),
    }


class SpeakerBaseline:
    """Per call track: the caller's own normal voice.

    The median of BASELINE_KEYS over the last BASELINE_HISTORY utterances that were not
    shouting; until BASELINE_MIN_SEGMENTS of them exist, a population prior stands in (values in
    the model's sidecar JSON, ``baseline_prior``). Once the caller's own baseline stands,
    shouting never joins it, so a caller who keeps shouting keeps being compared with their calm
    voice. Before that, every measurable utterance joins: a verdict against the population prior
    is too weak to keep a caller out, and keeping them out locks in the failure (a caller whose
    normal voice is bright or whose line is loud would be judged against the prior, and flagged,
    on every utterance of the call). The price: a call that opens with two shouted utterances
    has a raised baseline until calm utterances outnumber them in the median.
    """

    def __init__(self, prior: Mapping[str, float], history: int = BASELINE_HISTORY) -> None:
        self._prior = {k: float(prior[k]) for k in BASELINE_KEYS}
        self._history: deque[dict[str, float]] = deque(maxlen=history)
        self._lock = threading.Lock()

    def observe(self, features: Mapping[str, float], shouting: bool) -> None:
        """Add one finished utterance's measurements unless unmeasurable, or shouting against
        the caller's own baseline."""
        if any(k not in features for k in BASELINE_KEYS):
            return
        with self._lock:
            if shouting and len(self._history) >= BASELINE_MIN_SEGMENTS:
                return
            self._history.append({k: float(features[k]) for k in BASELINE_KEYS})

    @property
    def segments(self) -> int:
        return len(self._history)

    def reference(self) -> tuple[dict[str, float], int]:
        """(values the next utterance is compared with, utterances behind them)."""
        with self._lock:
            rows = list(self._history)
        if len(rows) < BASELINE_MIN_SEGMENTS:
            return dict(self._prior), len(rows)
        return {k: statistics.median(r[k] for r in rows) for k in BASELINE_KEYS}, len(rows)


@dataclass(frozen=True)
class VoiceScore:
    shouting: float  # probability 0..1
    features: dict[str, float]  # measurements and model inputs, JSON-serialisable floats


class ShoutingDetector:
    """Scores caller utterances (and windows of one in progress) for raised voice.

    Thread-safe: the ONNX session is shared, each call track brings its own baseline. One
    3-second utterance costs a few milliseconds on one core, so the session is single-threaded
    by default to leave the cores to ASR.
    """

    def __init__(self, model_path: Path | None = None, *, threads: int = 1) -> None:
        model_path = Path(model_path) if model_path is not None else default_model_path()
        self._session, self._meta = load_onnx_model(model_path, threads)
        if tuple(self._meta["features"]) != FEATURES:
            raise ValueError(
                f"{model_path.name} expects features {self._meta['features']}, this code computes {FEATURES}"
            )
        self._input = self._session.get_inputs()[0].name
        self._output = self._meta["output"]["name"]
        self._column = int(self._meta["output"]["shouting_column"])
        self._threshold = float(self._meta["threshold"])
        self._prior = {k: float(self._meta["baseline_prior"][k]) for k in BASELINE_KEYS}

    @property
    def threshold(self) -> float:
        """Decision threshold on ``VoiceScore.shouting``, picked on the validation split."""
        return self._threshold

    @property
    def metadata(self) -> dict:
        """The model's sidecar JSON: features, threshold, prior, data, metrics, versions."""
        return self._meta

    def warm_up(self) -> None:
        """Run the whole path once (ONNX Runtime allocates on its first run; numpy's FFT plans)."""
        t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
        tone = 3000.0 * np.sin(2 * np.pi * 150.0 * t) + 1500.0 * np.sin(2 * np.pi * 450.0 * t)
        baseline = self.new_baseline()
        self.score_window(tone.astype("<i2").tobytes(), baseline)

    def new_baseline(self) -> SpeakerBaseline:
        return SpeakerBaseline(self._prior)

    def probability(self, features: Mapping[str, float]) -> float:
        """The model's probability for one row of FEATURES."""
        row = np.array([[features[k] for k in FEATURES]], dtype=np.float32)
        out = self._session.run([self._output], {self._input: row})[0]
        return float(np.asarray(out)[0, self._column])

    def _score(self, pcm16: bytes, baseline: SpeakerBaseline, sample_rate: int) -> VoiceScore:
        measured = measure(pcm16, sample_rate)
        if measured["voiced_s"] < MIN_VOICED_S:
            return VoiceScore(0.0, measured)
        reference, segments = baseline.reference()
        features = model_features(measured, reference, segments)
        return VoiceScore(self.probability(features), {**measured, **features})

    def score_segment(
        self, pcm16: bytes, baseline: SpeakerBaseline, sample_rate: int = SAMPLE_RATE
    ) -> VoiceScore:
        """A finished utterance (one VAD segment); then adds it to ``baseline`` unless shouting."""
        score = self._score(pcm16, baseline, sample_rate)
        baseline.observe(score.features, score.shouting >= self._threshold)
        return score

    def score_window(
        self,
        pcm16: bytes,
        baseline: SpeakerBaseline,
        sample_rate: int = SAMPLE_RATE,
        window_s: float = 1.5,
    ) -> VoiceScore:
        """The last ``window_s`` of an utterance still being spoken; leaves ``baseline`` alone."""
        keep = int(window_s * sample_rate) * 2
        return self._score(pcm16[-keep:] if keep else b"", baseline, sample_rate)
