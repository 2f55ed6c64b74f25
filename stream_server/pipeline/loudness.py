"""Running loudness of one track and of each utterance against the speaker's own baseline.

Raised voice is relative: a loud line is loud *for this caller*, so every utterance is
compared with the median level of the caller's earlier utterances.
"""

from __future__ import annotations

import statistics
from collections import deque

import numpy as np

from ..media.codecs import SILENCE_DBFS, rms_dbfs


def active_level_dbfs(pcm16: bytes, frame_samples: int = 320, floor_dbfs: float = -50.0) -> float:
    """Level of the frames that carry sound: pauses inside an utterance don't dilute it."""
    samples = np.frombuffer(pcm16, dtype="<i2").astype(np.float32)
    n = samples.size // frame_samples
    if n == 0:
        return rms_dbfs(pcm16)
    frames = samples[: n * frame_samples].reshape(n, frame_samples)
    energy = np.mean(frames * frames, axis=1)
    levels = 10.0 * np.log10(np.maximum(energy, 1e-9) / 32768.0**2)
    active = energy[levels > floor_dbfs]
    if active.size == 0:
        return SILENCE_DBFS
    return float(10.0 * np.log10(np.mean(active) / 32768.0**2))


class LoudnessMeter:
    def __init__(self, smoothing: float = 0.2, baseline_utterances: int = 20) -> None:
        self.level_dbfs = SILENCE_DBFS  # short-term level, exponentially smoothed per frame
        self._alpha = smoothing
        self._history: deque[float] = deque(maxlen=baseline_utterances)

    def update(self, pcm16: bytes) -> float:
        level = rms_dbfs(pcm16)
        self.level_dbfs += self._alpha * (level - self.level_dbfs)
        return self.level_dbfs

    def baseline_dbfs(self) -> float | None:
        return statistics.median(self._history) if len(self._history) >= 2 else None

    def observe_utterance(self, pcm16: bytes) -> tuple[float, float | None]:
        """Returns (level, level minus the speaker's baseline so far, if one exists)."""
        level = active_level_dbfs(pcm16)
        baseline = self.baseline_dbfs()
        self._history.append(level)
        return level, (None if baseline is None else level - baseline)
