"""Start-up recovery: the calls a killed process left behind.

A process that dies mid-call (kill -9, OOM, power cut) leaves its calls `active` in the
database and their WAV headers up to a second behind the audio in the files. At start the
node marks its own unfinished calls `interrupted`, sets each file's header to the audio it
really holds, records the call's duration from it and seals the files (their SHA-256), so the
recording is evidence like any other.
"""

from __future__ import annotations

import logging
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

from ..evidence.integrity import sha256_file
from .recordings import HEADER_BYTES, RecordingStore, wav_header
from .repository import CallStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RepairedFile:
    path: Path
    seconds: float
    header_seconds: float  # what the header said before the repair


@dataclass
class RecoveredCall:
    call_id: str
    files: list[RepairedFile] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return max((f.seconds for f in self.files), default=0.0)


def repair_wav(path: Path) -> RepairedFile | None:
    """Make the header of a WAV that TrackRecorder wrote match the audio in the file (a trailing
    odd byte, half a sample, is cut). None for a file that is not such a WAV (left untouched)."""
    with open(path, "r+b") as file:
        header = file.read(HEADER_BYTES)
        if len(header) < HEADER_BYTES or header[:4] != b"RIFF" or header[8:16] != b"WAVE" + b"fmt " \
                or header[36:40] != b"data":
            return None
        channels, rate = struct.unpack_from("<HI", header, 22)
        said = struct.unpack_from("<I", header, 40)[0]
        size = os.fstat(file.fileno()).st_size
        data = (size - HEADER_BYTES) // (2 * channels) * (2 * channels)
        if HEADER_BYTES + data < size:
            file.truncate(HEADER_BYTES + data)
        if data != said:
            file.seek(0)
            file.write(wav_header(rate, data, channels))
        bytes_per_second = 2 * channels * rate
        return RepairedFile(path, data / bytes_per_second, said / bytes_per_second)


def recover_calls(store: CallStore, recordings: RecordingStore, call_ids: list[str]) -> list[RecoveredCall]:
    """Repair, time and seal the recordings of calls just marked interrupted."""
    recovered = []
    for call_id in call_ids:
        call = RecoveredCall(call_id)
        for track in recordings.tracks(call_id):
            path = recordings.path(call_id, track)
            try:
                repaired = repair_wav(path)
            except OSError as exc:
                log.error("recovery: cannot repair %s: %s", path, exc)
                continue
            if repaired is None:
                log.error("recovery: %s is not a WAV this server wrote; left as it is", path)
                continue
            if repaired.seconds != repaired.header_seconds:
                log.warning("recovery: %s header said %.2f s, the file holds %.2f s; repaired", path,
                            repaired.header_seconds, repaired.seconds)
            call.files.append(repaired)
        if call.files:
            store.set_duration(call_id, call.duration)
            store.seal_call(call_id, {f.path.name: sha256_file(f.path) for f in call.files})
        recovered.append(call)
    return recovered
