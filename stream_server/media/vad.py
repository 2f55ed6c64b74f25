"""Speech segmentation with webrtcvad: turns a track's 16 kHz PCM into utterances.

Endpointing is what sets alert latency: an utterance is handed to ASR only after
`endpoint_ms` of non-speech, so that value is the floor under every final transcript.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import webrtcvad

from .codecs import rms_dbfs

SAMPLE_RATE = 16000
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000
FRAME_BYTES = FRAME_SAMPLES * 2


@dataclass(frozen=True)
class VadOptions:
    aggressiveness: int = 2  # webrtcvad mode 0-3; 3 rejects more noise and more soft speech
    start_window_ms: int = 200  # speech starts when...
    start_ratio: float = 0.6  # ...this share of the window is voiced
    endpoint_ms: int = 600  # trailing non-speech that ends an utterance...
    # ...unless it is still short: Whisper mis-hears isolated 1 s phrases (殺すぞ → 殺しちゃう)
    # that it gets right as part of the sentence, so a short phrase waits a little longer
    # for its continuation. Long utterances keep the fast endpoint.
    short_endpoint_ms: int = 900
    short_utterance_s: float = 2.0
    pre_roll_ms: int = 300  # audio kept before the detected start (Whisper needs onsets)
    tail_ms: int = 200  # audio kept after the last voiced frame
    min_speech_ms: int = 250  # shorter voiced runs are clicks and breaths
    max_utterance_s: float = 15.0  # force a cut so a tirade still gets transcribed
    energy_floor_dbfs: float = -55.0  # quieter frames are never speech (line hiss)


@dataclass(frozen=True)
class Utterance:
    start: float  # seconds of track audio, including pre-roll
    end: float
    pcm16: bytes  # 16 kHz mono, start..end
    forced: bool = False  # cut at max_utterance_s rather than at a pause

    @property
    def duration(self) -> float:
        return self.end - self.start


class SpeechSegmenter:
    """Feeds 16 kHz PCM in any chunk size; returns completed utterances."""

    def __init__(self, options: VadOptions | None = None) -> None:
        self.options = o = options or VadOptions()
        self._vad = webrtcvad.Vad(o.aggressiveness)
        self._pending = b""
        self._frames_seen = 0  # frames since stream start: defines audio time
        self._window: deque[bool] = deque(maxlen=max(1, o.start_window_ms // FRAME_MS))
        self._pre_roll: deque[bytes] = deque(maxlen=max(1, o.pre_roll_ms // FRAME_MS))
        self._in_speech = False
        self._frames: list[bytes] = []
        self._start_frame = 0
        self._last_voiced = 0  # index into _frames of the last voiced frame
        self._voiced_count = 0
        self._silence_run = 0

    @property
    def time(self) -> float:
        return self._frames_seen * FRAME_MS / 1000.0

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    def current_span(self) -> tuple[float, float] | None:
        """(start, end of the last voiced frame) of the utterance in progress; cheap."""
        if not self._in_speech:
            return None
        start = self._start_frame * FRAME_MS / 1000.0
        return start, start + (self._last_voiced + 1) * FRAME_MS / 1000.0

    def current(self) -> Utterance | None:
        """The utterance in progress so far (for partial transcripts), or None."""
        if not self._in_speech:
            return None
        frames = self._frames[: self._last_voiced + 1]
        return self._make(frames, forced=False)

    def push(self, pcm16: bytes) -> list[Utterance]:
        self._pending += pcm16
        done: list[Utterance] = []
        while len(self._pending) >= FRAME_BYTES:
            frame, self._pending = self._pending[:FRAME_BYTES], self._pending[FRAME_BYTES:]
            utterance = self._push_frame(frame)
            if utterance is not None:
                done.append(utterance)
        return done

    def flush(self) -> list[Utterance]:
        """End of stream: close the utterance in progress, if it has enough speech."""
        if not self._in_speech:
            return []
        utterance = self._finish(forced=False)
        return [utterance] if utterance else []

    def _is_speech(self, frame: bytes) -> bool:
        if rms_dbfs(frame) < self.options.energy_floor_dbfs:
            return False
        return self._vad.is_speech(frame, SAMPLE_RATE)

    def _push_frame(self, frame: bytes) -> Utterance | None:
        o = self.options
        voiced = self._is_speech(frame)
        self._frames_seen += 1
        if not self._in_speech:
            self._window.append(voiced)
            self._pre_roll.append(frame)
            if voiced and sum(self._window) >= o.start_ratio * self._window.maxlen:
                self._in_speech = True
                self._frames = list(self._pre_roll)
                self._start_frame = self._frames_seen - len(self._frames)
                self._last_voiced = len(self._frames) - 1
                self._voiced_count = sum(self._window)
                self._silence_run = 0
                self._pre_roll.clear()
                self._window.clear()
            return None
        self._frames.append(frame)
        if voiced:
            self._voiced_count += 1
            self._last_voiced = len(self._frames) - 1
            self._silence_run = 0
        else:
            self._silence_run += 1
        speech_s = (self._last_voiced + 1) * FRAME_MS / 1000.0
        endpoint_ms = o.endpoint_ms if speech_s >= o.short_utterance_s else max(o.endpoint_ms, o.short_endpoint_ms)
        if self._silence_run * FRAME_MS >= endpoint_ms:
            return self._finish(forced=False)
        if len(self._frames) * FRAME_MS >= o.max_utterance_s * 1000:
            return self._finish(forced=True)
        return None

    def _finish(self, forced: bool) -> Utterance | None:
        o = self.options
        tail = 0 if forced else o.tail_ms // FRAME_MS
        keep = self._frames[: min(len(self._frames), self._last_voiced + 1 + tail)]
        enough = self._voiced_count * FRAME_MS >= o.min_speech_ms
        utterance = self._make(keep, forced) if enough else None
        self._in_speech = forced  # a forced cut continues straight into the next utterance
        self._frames = []
        self._start_frame = self._frames_seen
        self._last_voiced = -1
        self._voiced_count = 0
        self._silence_run = 0
        return utterance

    def _make(self, frames: list[bytes], forced: bool) -> Utterance:
        start = self._start_frame * FRAME_MS / 1000.0
        return Utterance(
            start=start,
            end=start + len(frames) * FRAME_MS / 1000.0,
            pcm16=b"".join(frames),
            forced=forced,
        )
