"""G.711 decoding and streaming resampling to the 16 kHz the pipeline runs on."""

from __future__ import annotations

import warnings

import numpy as np
import soxr

with warnings.catch_warnings():
    # audioop is deprecated in 3.11/3.12 and comes from audioop-lts on 3.13+; it is still
    # the fastest correct G.711 codec available without a hand-written table.
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

PIPELINE_RATE = 16000
SAMPLE_WIDTH = 2


def ulaw_to_pcm16(payload: bytes) -> bytes:
    """μ-law (PCMU) bytes → signed 16-bit little-endian PCM, same rate."""
    return audioop.ulaw2lin(payload, SAMPLE_WIDTH)


def alaw_to_pcm16(payload: bytes) -> bytes:
    """A-law (PCMA) bytes → signed 16-bit little-endian PCM, same rate."""
    return audioop.alaw2lin(payload, SAMPLE_WIDTH)


def pcm16_to_ulaw(pcm16: bytes) -> bytes:
    return audioop.lin2ulaw(pcm16, SAMPLE_WIDTH)


def swap16(pcm: bytes) -> bytes:
    """Swap the byte order of 16-bit samples: big-endian L16 (RTP network order) ⇄ little-endian
    PCM; the same call converts either way. The length must be even."""
    return audioop.byteswap(pcm, SAMPLE_WIDTH)


def mix_pcm16(a: bytes, b: bytes) -> bytes:
    """Sum two equal-length 16-bit PCM signals, clipping instead of wrapping (one mixed leg)."""
    return audioop.add(a, b, SAMPLE_WIDTH)


SILENCE_DBFS = -90.0


def rms_dbfs(pcm16: bytes) -> float:
    """RMS level of 16-bit PCM in dB below full scale, floored at SILENCE_DBFS."""
    samples = np.frombuffer(pcm16, dtype="<i2").astype(np.float32)
    if samples.size == 0:
        return SILENCE_DBFS
    rms = float(np.sqrt(np.mean(samples * samples)))
    return max(SILENCE_DBFS, 20.0 * float(np.log10(max(rms, 1e-9) / 32768.0)))


def pcm16_to_float(pcm16: bytes) -> np.ndarray:
    return np.frombuffer(pcm16, dtype="<i2").astype(np.float32) / 32768.0


def float_to_pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


class StreamResampler:
    """Resamples one track chunk by chunk without clicks at chunk borders.

    soxr keeps filter state between calls, so 20 ms frames come out as if the whole
    stream had been resampled at once (minus a few ms of filter delay).
    """

    def __init__(self, in_rate: int, out_rate: int = PIPELINE_RATE) -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._stream = None if in_rate == out_rate else soxr.ResampleStream(in_rate, out_rate, 1, dtype="int16")

    def process(self, pcm16: bytes, last: bool = False) -> bytes:
        if self._stream is None:
            return pcm16
        samples = np.frombuffer(pcm16, dtype="<i2")
        return self._stream.resample_chunk(samples, last=last).astype("<i2").tobytes()
