"""Reading audio files for the simulator and offline analysis.

Raw `.ulaw`/`.mulaw`/`.pcmu` files are 8 kHz μ-law (what Twilio sends); anything else is
read with libsndfile (WAV, FLAC, OGG...). A stereo file is caller (left) and agent (right),
the layout of this server's own recording.wav.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile
import soxr

from .codecs import float_to_pcm16, pcm16_to_ulaw, ulaw_to_pcm16

RAW_ULAW_SUFFIXES = {".ulaw", ".mulaw", ".pcmu", ".ul"}
TELEPHONE_RATE = 8000


class AudioFileError(ValueError):
    pass


def read_channels(path: Path) -> tuple[list[bytes], int]:
    """Each channel as 16-bit PCM, and the sample rate."""
    path = Path(path)
    if not path.is_file():
        raise AudioFileError(f"{path}: no such file")
    if path.suffix.lower() in RAW_ULAW_SUFFIXES:
        return [ulaw_to_pcm16(path.read_bytes())], TELEPHONE_RATE
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as exc:
        raise AudioFileError(f"{path}: not a readable audio file ({exc})") from None
    return [float_to_pcm16(data[:, i]) for i in range(data.shape[1])], int(rate)


def read_telephone_ulaw(path: Path, channel: int = 0) -> bytes:
    """One channel as 8 kHz μ-law, converting rate and encoding if needed."""
    path = Path(path)
    if path.suffix.lower() in RAW_ULAW_SUFFIXES and path.is_file() and channel == 0:
        return path.read_bytes()  # already what Twilio sends
    channels, rate = read_channels(path)
    if channel >= len(channels):
        raise AudioFileError(f"{path}: has no channel {channel}")
    pcm = channels[channel]
    if rate != TELEPHONE_RATE:
        samples = np.frombuffer(pcm, dtype="<i2")
        pcm = soxr.resample(samples, rate, TELEPHONE_RATE).astype("<i2").tobytes()
    return pcm16_to_ulaw(pcm)
