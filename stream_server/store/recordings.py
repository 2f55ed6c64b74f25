"""Call recordings: one WAV file per track, written as audio arrives.

Every frame goes to the file with os.write at once, so a process killed mid-call (kill -9,
OOM) loses nothing the OS was given; the header's sizes are patched at most once a second,
so such a file plays up to its last patched second as it is, and start-up recovery
(store/recovery.py) sets them to the full length. The `wave` module cannot do the rest: when
the disk refuses a write (full, quota), the audio is held in memory, bounded, and written
when space returns, so the file stays aligned with the call's time.
"""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
import struct
import time
import wave
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .storage_health import RECORDINGS, StorageHealth

log = logging.getLogger(__name__)

_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
HEADER_BYTES = 44  # RIFF + fmt (16-bit PCM, mono) + data chunk header
HEADER_PATCH_S = 1.0  # how stale the header's sizes may be while a call runs
RETRY_S = 1.0  # a refused write is tried again this long after (not on every 20 ms frame)
_ZEROS = bytes(64 * 1024)


def wav_header(sample_rate: int, data_bytes: int, channels: int = 1) -> bytes:
    """The 44-byte header of a 16-bit PCM WAV whose data chunk holds `data_bytes`."""
    block = 2 * channels
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + data_bytes, b"WAVE", b"fmt ", 16, 1, channels,
                       sample_rate, sample_rate * block, block, 16, b"data", data_bytes)


class TrackRecorder:
    """One track's WAV file, written frame by frame; see the module docstring."""

    def __init__(self, path: Path, sample_rate: int, health: StorageHealth | None = None,
                 max_held_bytes: int = 300 * 16000, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.sample_rate = sample_rate
        self.samples_received = 0  # what the call sent, written or still held
        self.samples_lost = 0  # held audio dropped over max_held_bytes: written as silence
        self.health = health or StorageHealth()
        self.max_held_bytes = max_held_bytes
        self._clock = clock
        self._fd: int | None = None
        self._opened = False
        self._file_bytes = 0  # bytes in the file, header included
        self._held: deque[bytes] = deque([wav_header(sample_rate, 0)])  # the header goes first
        self._held_bytes = HEADER_BYTES
        self._silence_owed = 0  # bytes of dropped audio to write as zeros before what is held
        self._header_patched_at = -HEADER_PATCH_S
        self._retry_at = 0.0
        self.retry_s = RETRY_S
        self.error: OSError | None = None  # the last refused write, while refused
        self.closed = False
        self._drain()  # a valid, empty WAV exists from the first moment (when the disk allows)

    @property
    def samples_written(self) -> int:
        """Samples in the file now (the rest is held in memory)."""
        return max(0, self._file_bytes - HEADER_BYTES) // 2

    @property
    def held_seconds(self) -> float:
        return (self._held_bytes + self._silence_owed) / 2 / self.sample_rate

    @property
    def complete(self) -> bool:
        """Everything received is in the file."""
        return self._opened and not self._held and not self._silence_owed

    def write(self, pcm16: bytes) -> None:
        """Append audio; never raises for a full disk (it is held and retried)."""
        if self.closed:
            raise ValueError("recording is closed")
        self.samples_received += len(pcm16) // 2
        self._held.append(pcm16)
        self._held_bytes += len(pcm16)
        if self.error is None or self._clock() >= self._retry_at:
            self._drain()
        if self.error is not None:
            self._bound_held()

    def retry(self) -> bool:
        """Try to write what is held now (the disk may have room again); True when complete."""
        if not self.complete:
            self._drain(force_header=self.closed)  # a closed file's header is final
        if self.closed and self.complete:
            self._close_file()
        return self.complete

    def close(self) -> bool:
        """Write what is held and close the file; False when the disk still refuses, in which
        case the file stays open and `retry()` finishes it."""
        self.closed = True
        self._drain(force_header=True)
        if self.complete:
            self._close_file()
        return self.complete

    # -- the file ---------------------------------------------------------------------------

    def _drain(self, force_header: bool = False) -> None:
        try:
            if not self._opened:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                self._opened = True
            self._write_held()
            now = self._clock()
            if self._file_bytes >= HEADER_BYTES and (force_header or now - self._header_patched_at >= HEADER_PATCH_S):
                data = (self._file_bytes - HEADER_BYTES) & ~1
                os.pwrite(self._fd, wav_header(self.sample_rate, data), 0)
                self._header_patched_at = now
        except OSError as exc:
            if self.error is None:
                log.error("recording %s: write refused (%s); holding audio in memory", self.path, exc.strerror or exc)
            self.error, self._retry_at = exc, self._clock() + self.retry_s
            self.health.failed(RECORDINGS, exc)
            return
        if self.error is not None:
            log.warning("recording %s: writing again, %.1f s of held audio written", self.path,
                        self.samples_written / self.sample_rate)
            self.error = None
        self.health.ok(RECORDINGS)

    def _write_held(self) -> None:
        """The header, then silence owed (it stands for the oldest audio, dropped), then what is
        held, in order; a partial write keeps the rest for next time."""
        assert self._fd is not None
        while self._held and self._file_bytes < HEADER_BYTES:
            self._write_first_held()
        while self._silence_owed:
            written = os.write(self._fd, _ZEROS[: min(self._silence_owed, len(_ZEROS))])
            self._silence_owed -= written
            self._file_bytes += written
        while self._held:
            self._write_first_held()

    def _write_first_held(self) -> None:
        chunk = self._held[0]
        written = os.write(self._fd, chunk)
        self._file_bytes += written
        self._held_bytes -= written
        if written < len(chunk):
            self._held[0] = chunk[written:]
        else:
            self._held.popleft()

    def _bound_held(self) -> None:
        """Over the bound, the oldest held audio is dropped and owed as silence, so what follows
        still lands at its own time in the file (the header, held first, is never dropped)."""
        while self._held_bytes > self.max_held_bytes and len(self._held) > 1:
            index = 1 if self._file_bytes < HEADER_BYTES else 0
            chunk = self._held[index]
            del self._held[index]
            self._held_bytes -= len(chunk)
            self._silence_owed += len(chunk)
            self.samples_lost += len(chunk) // 2

    def _close_file(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class RecordingStore:
    """Where recordings live: `<root>/<call_id>/<track>.wav`.

    `max_held_s`: how much audio per track is held in memory while the disk refuses writes;
    beyond it the oldest is dropped (and written as silence once the disk takes writes again).
    """

    def __init__(self, root: Path, health: StorageHealth | None = None, max_held_s: float = 300.0) -> None:
        self.root = root
        self.health = health or StorageHealth()
        self.max_held_s = max_held_s
        self._unfinished: set[TrackRecorder] = set()  # open, or closed with audio still held
        root.mkdir(parents=True, exist_ok=True)

    def path(self, call_id: str, track: str) -> Path:
        if not _SAFE_ID.match(call_id) or not _SAFE_ID.match(track):
            raise ValueError("invalid call id or track")
        return self.root / call_id / f"{track}.wav"

    def open_track(self, call_id: str, track: str, sample_rate: int) -> TrackRecorder:
        recorder = TrackRecorder(self.path(call_id, track), sample_rate, self.health,
                                 max_held_bytes=int(self.max_held_s * sample_rate * 2))
        self._unfinished.add(recorder)
        return recorder

    def retry_held(self) -> list[str]:
        """Write held audio where the disk has room again (called every second or so). The ids of
        ended calls whose audio is now all on disk (their files closed, ready to be sealed)."""
        finished = set()
        for recorder in list(self._unfinished):
            if recorder.error is not None or recorder.closed:
                recorder.retry()
            if recorder.closed and recorder.complete:
                self._unfinished.discard(recorder)
                finished.add(recorder.path.parent.name)
        self.health.set_held(RECORDINGS, self.held_seconds())
        still_writing = {recorder.path.parent.name for recorder in self._unfinished}
        return sorted(finished - still_writing)

    def held_seconds(self) -> float:
        """Audio received but not yet on disk, all tracks together."""
        return sum(recorder.held_seconds for recorder in list(self._unfinished))

    def close_track(self, recorder: TrackRecorder) -> bool:
        """Close a track at the end of its call; False while the disk still refuses what is held
        (`retry_held` finishes it and returns it once it is complete)."""
        if recorder.close():
            self._unfinished.discard(recorder)
            return True
        return False

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
