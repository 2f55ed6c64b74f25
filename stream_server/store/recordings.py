"""Call recordings: one WAV file per track, written as audio arrives.

Every write patches the WAV header and flushes to the OS, so a process killed mid-call
(or a socket dropped) leaves a playable file up to the last frame received.
"""

from __future__ import annotations

import io
import re
import shutil
import wave
from pathlib import Path

import numpy as np

_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class TrackRecorder:
    def __init__(self, path: Path, sample_rate: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.sample_rate = sample_rate
        self.samples_written = 0
        self._file = open(path, "wb")  # noqa: SIM115 - kept open for the whole call
        self._wav = wave.open(self._file, "wb")
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(sample_rate)
        self._wav.writeframes(b"")  # a valid (empty) file exists from the first moment

    def write(self, pcm16: bytes) -> None:
        self._wav.writeframes(pcm16)  # wave patches the header's sizes on every call
        self._file.flush()
        self.samples_written += len(pcm16) // 2

    def close(self) -> None:
        if not self._file.closed:
            self._wav.close()
            self._file.close()


class RecordingStore:
    """Where recordings live: `<root>/<call_id>/<track>.wav`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, call_id: str, track: str) -> Path:
        if not _SAFE_ID.match(call_id) or not _SAFE_ID.match(track):
            raise ValueError("invalid call id or track")
        return self.root / call_id / f"{track}.wav"

    def open_track(self, call_id: str, track: str, sample_rate: int) -> TrackRecorder:
        return TrackRecorder(self.path(call_id, track), sample_rate)

    def tracks(self, call_id: str) -> list[str]:
        folder = self.root / call_id
        if not _SAFE_ID.match(call_id) or not folder.is_dir():
            return []
        order = {"caller": 0, "agent": 1}
        return sorted((p.stem for p in folder.glob("*.wav")), key=lambda t: (order.get(t, 9), t))

    def delete(self, call_id: str) -> list[str]:
        """Remove a call's recordings (its whole folder) for retention or a deletion request;
        the names of the files removed, [] for a call without recordings."""
        if not _SAFE_ID.match(call_id):
            raise ValueError("invalid call id")
        folder = self.root / call_id
        if not folder.is_dir():
            return []
        names = sorted(p.name for p in folder.iterdir())
        try:
            shutil.rmtree(folder)
        except FileNotFoundError:
            pass  # another node sharing the data directory is removing it at the same moment
        return names

    def read_track(self, call_id: str, track: str) -> tuple[np.ndarray, int]:
        with wave.open(str(self.path(call_id, track)), "rb") as wav:
            rate = wav.getframerate()
            frames = wav.readframes(wav.getnframes())
        return np.frombuffer(frames, dtype="<i2"), rate

    def render(self, call_id: str, tracks: list[str]) -> bytes:
        """One WAV of the named tracks: mono for one, one channel per track otherwise.

        Tracks are aligned on audio time (both start at the stream's start), the shorter
        padded with silence.
        """
        signals = [self.read_track(call_id, t) for t in tracks]
        rate = signals[0][1]
        length = max(len(s) for s, _ in signals)
        channels = np.zeros((length, len(signals)), dtype="<i2")
        for i, (samples, _) in enumerate(signals):
            channels[: len(samples), i] = samples
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as wav:
            wav.setnchannels(len(signals))
            wav.setsampwidth(2)
            wav.setframerate(rate)
            wav.writeframes(channels.tobytes())
        return buffer.getvalue()
