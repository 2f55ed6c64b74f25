"""A recording's level over time (dBFS per step), for the console's loudness curve."""

from __future__ import annotations

import math

import numpy as np

from .codecs import SILENCE_DBFS

_CHUNK_SAMPLES = 1 << 20  # bounded working memory: a 30-minute call is ~29 M samples at 16 kHz


def curve_step(step: float, seconds: float, max_points: int, quantum: float = 0.05) -> float:
    """The step to draw `seconds` of audio with: `step`, or, where that would give more than
    `max_points` points, the smallest multiple of `quantum` that does not."""
    if seconds <= step * max_points:
        return step
    widened = math.ceil(seconds / max_points / quantum - 1e-9) * quantum
    return round(max(widened, step), 6)


def level_curve(samples: np.ndarray, rate: int, step: float) -> np.ndarray:
    """RMS level of 16-bit PCM in dBFS for each `step` seconds (the last window may be shorter),
    floored at SILENCE_DBFS: the same measure as codecs.rms_dbfs, over the whole track at once."""
    hop = max(1, round(step * rate))
    count = -(-len(samples) // hop)
    levels = np.empty(count, dtype=np.float64)
    windows_per_chunk = max(1, _CHUNK_SAMPLES // hop)
    for first in range(0, count, windows_per_chunk):
        chunk = samples[first * hop : (first + windows_per_chunk) * hop].astype(np.float64)
        starts = np.arange(0, len(chunk), hop)
        energy = np.add.reduceat(chunk * chunk, starts) / np.diff(np.append(starts, len(chunk)))
        levels[first : first + len(starts)] = 20.0 * np.log10(np.maximum(np.sqrt(energy), 1e-9) / 32768.0)
    return np.maximum(levels, SILENCE_DBFS)
