"""Asterisk AudioSocket (TCP; Asterisk connects to us) → media events.

Wire format: frames of a 1-byte type, a 2-byte big-endian payload length and the payload.
  0x00 hangup · 0x01 the call's UUID (16 bytes, always first) · 0x03 one ASCII DTMF digit ·
  0x10 signed linear 16-bit little-endian mono PCM at 8 kHz (the AudioSocket() dialplan app
  always sends this: 20 ms = 320 B) · 0x11-0x18 the same at 12, 16, 24, 32, 44.1, 48, 96 and
  192 kHz (chan_audiosocket with a slinNN codec, Asterisk 20.17/22.7/23+) · 0xff an error,
  payload = optional error code.
Asterisk sends no hangup frame when the channel hangs up: app_audiosocket just closes the
socket, so a close at a frame boundary is the normal end of a call. A hangup frame ends it too.

The audio is what Asterisk reads from its channel: one party, delivered as the caller track.
AudioSocket carries no call metadata beyond the UUID (`carrier_call_id`): ad-source tags cannot
travel over it.

Sources: https://docs.asterisk.org/Configuration/Channel-Drivers/AudioSocket/ (types),
asterisk res/res_audiosocket.c (send/receive, kinds), apps/app_audiosocket.c (close on hangup).
One intermediate Asterisk revision numbered slin16 0x11; the released numbering (above) is used.
"""

from __future__ import annotations

import logging
import struct
import uuid

from .events import Audio, CallEnded, CallStarted, MediaEvent

log = logging.getLogger(__name__)

CARRIER = "audiosocket"
HEADER = struct.Struct("!BH")
KIND_HANGUP, KIND_UUID, KIND_DTMF, KIND_ERROR = 0x00, 0x01, 0x03, 0xFF
KIND_SLIN = 0x10  # 8 kHz: what the AudioSocket() dialplan app sends
AUDIO_RATES = {
    KIND_SLIN: 8000, 0x11: 12000, 0x12: 16000, 0x13: 24000, 0x14: 32000,
    0x15: 44100, 0x16: 48000, 0x17: 96000, 0x18: 192000,
}
# 20 ms at 192 kHz is 7680 B; anything over this is not audio Asterisk sends.
MAX_PAYLOAD_BYTES = 16384
# Error codes this server sends before closing (application-specific range, see the docs).
ERROR_NOT_ALLOWED = 0x10
ERROR_PROTOCOL = 0x11
ERROR_BUSY = 0x12  # over a stream limit: try again later


class ProtocolError(ValueError):
    """The byte stream cannot be followed any further: the connection is closed."""


def frame(kind: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


def error_frame(code: int) -> bytes:
    return frame(KIND_ERROR, bytes([code]))


class AudioSocketStream:
    """Parses one AudioSocket connection from arbitrary TCP chunks.

    `feed` returns the events of every whole frame received so far. A frame that can be
    skipped (odd-length audio, unknown type) is counted in `bad_frames` and dropped; an error
    that loses the framing or the call's identity sets `error` and stops parsing — the events
    already returned stand, so everything received before it is recorded. After a hangup frame
    or an error `feed` takes nothing more: the call is over, and a peer could otherwise make the
    server hold whatever it keeps sending.
    """

    carrier = CARRIER

    def __init__(self, max_bad_frames: int = 100) -> None:
        self.max_bad_frames = max_bad_frames
        self.call_id = ""
        self.sample_rate = 0  # set by the first audio frame
        self.started = False  # the UUID frame arrived
        self.announced = False  # CallStarted was returned
        self.ended = False
        self.error: str | None = None
        self.bad_frames = 0
        self._buffer = bytearray()
        self._samples = 0
        self._unknown_seen: set[int] = set()

    def feed(self, data: bytes) -> list[MediaEvent]:
        if self.ended or self.error:
            return []  # nothing after a hangup (or a lost framing) counts, so nothing is kept for it
        self._buffer += data
        events: list[MediaEvent] = []
        try:
            while not self.ended and len(self._buffer) >= HEADER.size:
                kind, length = HEADER.unpack_from(self._buffer)
                if length > MAX_PAYLOAD_BYTES:
                    raise ProtocolError(f"frame type 0x{kind:02x} of {length} bytes (over {MAX_PAYLOAD_BYTES})")
                if len(self._buffer) < HEADER.size + length:
                    break
                payload = bytes(self._buffer[HEADER.size : HEADER.size + length])
                del self._buffer[: HEADER.size + length]
                events += self._on_frame(kind, payload)
            if self.ended:
                self._buffer.clear()  # bytes that followed the hangup in the same read
        except ProtocolError as exc:
            self.error = str(exc)
            self._buffer.clear()
        return events

    def finish(self) -> CallEnded:
        """The peer closed the socket: a close between frames is how Asterisk ends a call."""
        if self._buffer:
            log.warning("audiosocket: call %s closed inside a frame (%d bytes left)", self.call_id, len(self._buffer))
            return CallEnded("disconnected")
        return CallEnded("completed")

    def _skip(self, why: str) -> list[MediaEvent]:
        self.bad_frames += 1
        log.warning("audiosocket: dropped frame on call %s (%d so far): %s", self.call_id, self.bad_frames, why)
        if self.bad_frames > self.max_bad_frames:
            raise ProtocolError(f"too many malformed frames; last: {why}")
        return []

    def _on_frame(self, kind: int, payload: bytes) -> list[MediaEvent]:
        if kind == KIND_UUID:
            return self._on_uuid(payload)
        if kind == KIND_HANGUP:
            self.ended = True
            return [*self.unannounced_start(), CallEnded("completed")] if self.started else []
        if not self.started:
            raise ProtocolError(f"frame type 0x{kind:02x} before the UUID frame")
        if kind in AUDIO_RATES:
            return self._on_audio(AUDIO_RATES[kind], payload)
        if kind == KIND_DTMF:
            log.debug("audiosocket dtmf on call %s: %r", self.call_id, payload[:1])
            return []
        if kind == KIND_ERROR:
            log.warning("audiosocket: call %s: Asterisk error frame, code %s", self.call_id,
                        f"0x{payload[0]:02x}" if payload else "none")
            return []
        if kind not in self._unknown_seen:
            self._unknown_seen.add(kind)
            log.warning("audiosocket: ignoring unknown frame type 0x%02x on call %s", kind, self.call_id)
        return []

    def _on_uuid(self, payload: bytes) -> list[MediaEvent]:
        if self.started:
            log.warning("audiosocket: second UUID frame on call %s ignored", self.call_id)
            return []
        if len(payload) != 16:
            raise ProtocolError(f"UUID frame of {len(payload)} bytes (16 expected)")
        self.call_id = str(uuid.UUID(bytes=payload))
        self.started = True
        return []  # CallStarted waits for the first audio frame, which fixes the sample rate

    def _on_audio(self, rate: int, pcm16: bytes) -> list[MediaEvent]:
        if not pcm16 or len(pcm16) % 2:
            return self._skip(f"audio frame of {len(pcm16)} bytes (16-bit samples)")
        events: list[MediaEvent] = []
        if not self.sample_rate:
            self.sample_rate = rate
            events += self.unannounced_start()
        elif rate != self.sample_rate:
            return self._skip(f"audio at {rate} Hz in a {self.sample_rate} Hz call")
        t = self._samples / self.sample_rate
        self._samples += len(pcm16) // 2
        events.append(Audio(track="caller", pcm16=pcm16, sample_rate=self.sample_rate, t=t))
        return events

    def unannounced_start(self) -> list[MediaEvent]:
        """CallStarted, once, after the UUID: at the first audio frame (whose type fixes the
        sample rate), or when the call ends before any audio (8 kHz, the dialplan app's rate)."""
        if not self.started or self.announced:
            return []
        self.announced = True
        return [CallStarted(
            carrier=CARRIER,
            tracks=("caller",),
            metadata={},
            carrier_call_id=self.call_id,
            stream_id=self.call_id,
            sample_rate=self.sample_rate or 8000,
        )]
