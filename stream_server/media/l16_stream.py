"""jambonz `listen` / FreeSWITCH mod_audio_fork (and mod_audio_stream) WebSocket → media events.

Wire format: one JSON text frame first — the call's attributes (`callSid`, `from`, `to`,
`direction`...) plus `sampleRate` and `mixType`, with the `listen` verb's `metadata` object
merged in at the top level (jambonz does `Object.assign({sampleRate, mixType}, callInfo,
metadata)`: that is where ad-source tags travel). Then binary frames of 16-bit little-endian
PCM; `mixType` "stereo" interleaves two channels sample by sample. DTMF arrives as JSON text
frames `{"event": "dtmf", "dtmf": "5", "duration": ...}` (listen `passDtmf`). There is no goodbye
message: the call ends when jambonz closes the socket.

Channels: "mono" is the caller's audio, "mixed" both parties summed (delivered as the caller
track, as Vonage's mix is), "stereo" the caller on channel 0 and the other party on channel 1:
FreeSWITCH's media bug in SMBF_STEREO puts the read stream (what the leg the bug sits on says:
the caller, for `listen` on an inbound call or nested in its `dial`) on the left and the write
stream on the right (switch_core_media_bug.c; SMBF_STEREO_SWAP swaps them, unused by jambonz).

Sources: https://docs.jambonz.org/verbs/verbs/listen (first text frame, metadata, mixType,
sampleRate, passDtmf, wsAuth), jambonz-feature-server lib/tasks/listen.js (metadata merge,
DTMF frame), drachtio-freeswitch-modules mod_audio_fork README (subprotocol, mix types).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import numpy as np

from .credentials import any_secret_matches, basic_password, bearer_value
from .errors import MalformedMessage, UnsupportedStream
from .events import Audio, CallEnded, CallStarted, MediaEvent, Track
from .frames import HeldMedia, UnknownEvents, parse_json_object
from .metadata import metadata_from_parameters

log = logging.getLogger(__name__)

CARRIER = "stream"
SUBPROTOCOLS = ("audio.jambonz.org", "audio.drachtio.org")
DEFAULT_RATE = 8000  # jambonz's default `sampleRate`
SUPPORTED_RATES = (8000, 16000, 24000, 32000, 44100, 48000, 64000)
MIX_CHANNELS = {"mono": 1, "mixed": 1, "stereo": 2}
PROTOCOL_KEYS = ("sampleRate", "mixType")
# Nested objects whose keys are call metadata too: `metadata` (mod_audio_fork users who nest it),
# `customerData` (jambonz `tag` data, which callInfo carries).
NESTED_METADATA_KEYS = ("metadata", "customerData")
CALL_ID_KEYS = ("callSid", "call_sid", "uuid", "callId")
# A normal close (1000) ends the call normally. Not 1005 ("no status code"): uvicorn reports a
# connection dropped without any close frame as 1005 too, so it cannot mean a clean hangup.
NORMAL_CLOSE_CODES = (1000,)
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(k?)(?:hz)?\s*$", re.IGNORECASE)


def offered_subprotocol(offered: list[str]) -> str | None:
    """The subprotocol to accept: jambonz's or drachtio's when offered, else the first offered
    (MOD_AUDIO_FORK_SUBPROTOCOL_NAME can rename it; the name carries no meaning here)."""
    for name in SUBPROTOCOLS:
        if name in offered:
            return name
    return offered[0] if offered else None


def token_matches(expected: str, query_token: str | None, authorization: str | None) -> bool:
    """Constant-time check of the stream token: `Authorization: Bearer <token>`, `Basic` with the
    token as the password (jambonz `wsAuth` {username, password}), or `?token=`."""
    return any_secret_matches(expected, [query_token, bearer_value(authorization), basic_password(authorization)])


def parse_sample_rate(value: Any) -> int:
    """`8000`, `"16000"`, `"16k"` → Hz. Missing → jambonz's 8000. Raises UnsupportedStream."""
    if value is None:
        return DEFAULT_RATE
    match = _RATE.match(str(value)[:32])
    if not match:
        raise UnsupportedStream(f"unreadable sampleRate {str(value)[:32]!r}")
    rate = round(float(match.group(1)) * (1000 if match.group(2) else 1))
    if rate in SUPPORTED_RATES:
        return rate
    raise UnsupportedStream(f"unsupported sampleRate {str(value)[:32]!r}")


def metadata_from_connect(msg: dict[str, Any]) -> dict[str, str]:
    """The first frame → call metadata: top-level attributes, then nested user metadata that
    does not shadow them; protocol keys dropped. Bounded like Twilio's customParameters."""
    flat: dict[str, Any] = {k: v for k, v in msg.items() if k not in PROTOCOL_KEYS and k not in NESTED_METADATA_KEYS}
    for key in NESTED_METADATA_KEYS:
        nested = msg.get(key)
        if isinstance(nested, dict):
            for k, v in nested.items():
                flat.setdefault(k, v)
        elif nested is not None:
            flat.setdefault(key, nested)
    return metadata_from_parameters(flat)


class L16MediaStream:
    """Parses one jambonz / mod_audio_fork WebSocket connection, message by message."""

    carrier = CARRIER

    def __init__(self) -> None:
        self.started = False
        self.sample_rate = DEFAULT_RATE
        self.channels = 1
        self.call_id = ""
        self._samples = 0  # per channel
        self._held: HeldMedia[bytes] = HeldMedia()
        self._unknown = UnknownEvents(log, CARRIER)

    @property
    def tracks(self) -> tuple[Track, ...]:
        return ("caller", "agent") if self.channels == 2 else ("caller",)

    def feed(self, message: str | bytes) -> list[MediaEvent]:
        """Turn one WebSocket message into zero or more media events.

        Raises MalformedMessage for a message that must be dropped (bad JSON, an audio frame
        that is not whole samples of every channel) and UnsupportedStream for a sample rate or
        mix type this server cannot take.
        """
        if isinstance(message, bytes):
            if not message:
                raise MalformedMessage("empty audio frame")
            if not self.started:  # audio before the metadata frame: held (bounded), not dropped
                self._held.hold(message)
                return []
            return self._on_audio(message)
        msg = parse_json_object(message)
        event = msg.get("event")
        if event == "dtmf":
            log.debug("stream dtmf on call %s: %s", self.call_id, str(msg.get("dtmf"))[:8])
            return []
        if not self.started and event is None:
            return self._on_metadata(msg)
        name = "metadata" if event is None else str(event)[:64]
        if self._unknown.first(name):
            log.warning("stream: ignoring %s text frame on call %s", name if event else "a second metadata",
                        self.call_id)
        return []

    def on_close(self, code: int | None) -> CallEnded | None:
        """jambonz ends a stream by closing the socket: a closing handshake is a completed call;
        a dropped connection is left to the caller's default (an abnormal disconnect)."""
        return CallEnded("completed") if self.started and code in NORMAL_CLOSE_CODES else None

    def _on_metadata(self, msg: dict[str, Any]) -> list[MediaEvent]:
        self.sample_rate = parse_sample_rate(msg.get("sampleRate"))
        mix_type = str(msg.get("mixType") or "mono").lower()[:16]
        if mix_type not in MIX_CHANNELS:
            raise UnsupportedStream(f"unsupported mixType {mix_type!r} (mono, mixed, stereo)")
        self.channels = MIX_CHANNELS[mix_type]
        metadata = metadata_from_connect(msg)
        self.call_id = next((metadata[k] for k in CALL_ID_KEYS if metadata.get(k)), "")
        self.started = True
        started = CallStarted(
            carrier=CARRIER,
            tracks=self.tracks,
            metadata=metadata,
            carrier_call_id=self.call_id,
            stream_id=self.call_id,
            sample_rate=self.sample_rate,
        )
        return [started, *self._held.replay(self._on_audio, log, "stream: dropping held audio")]

    def _on_audio(self, frame: bytes) -> list[MediaEvent]:
        """Any whole number of sample frames is accepted; stream time advances by the samples."""
        width = 2 * self.channels
        if len(frame) % width:
            raise MalformedMessage(f"audio frame of {len(frame)} bytes is not whole {self.channels}-channel "
                                   "16-bit samples")
        t = self._samples / self.sample_rate
        self._samples += len(frame) // width
        if self.channels == 1:
            return [Audio(track="caller", pcm16=frame, sample_rate=self.sample_rate, t=t)]
        samples = np.frombuffer(frame, dtype="<i2").reshape(-1, 2)
        return [
            Audio(track=track, pcm16=samples[:, i].tobytes(), sample_rate=self.sample_rate, t=t)
            for i, track in enumerate(self.tracks)
        ]
