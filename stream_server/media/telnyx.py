"""Telnyx Media Streaming (`stream_url` on Call Control / TeXML `<Stream>`) → media events.

Wire format: JSON text frames `connected`, `start`, `media`, `dtmf`, `mark`, `error`, `stop` —
Twilio's shape in snake_case (`sequence_number`, top-level `stream_id`). Audio is a base64 RTP
payload without header in the codec `start.media_format` names: PCMU, PCMA or L16. `inbound` is
the caller leg, `outbound` the agent leg. Telnyx does not promise frame order; the pipeline's
FrameOrderer puts frames back in order by the stream time each one carries here.

Source: https://developers.telnyx.com/api-reference/websockets/stream-call-media-over-websocket
(AsyncAPI spec: connected / start / media / dtmf / error / stop frames; "when a streaming auth
token is configured, Telnyx includes it in the connected.x-telnyx-streaming-auth-token field and
sends it as the x-telnyx-streaming-auth-token WebSocket header").
"""

from __future__ import annotations

import json
import logging
from typing import Any

from .codecs import alaw_to_pcm16, swap16, ulaw_to_pcm16
from .credentials import secret_matches
from .errors import MalformedMessage, UnsupportedStream
from .event_stream import JsonEventStream
from .events import Audio, CallStarted, MediaEvent, Track
from .frames import decode_payload
from .metadata import MAX_PARAMETER_CHARS, metadata_from_parameters

log = logging.getLogger(__name__)

CARRIER = "telnyx"
TOKEN_HEADER = "x-telnyx-streaming-auth-token"
TRACK_ROLES: dict[str, Track] = {
    "inbound": "caller", "inbound_track": "caller", "outbound": "agent", "outbound_track": "agent",
}
# media_format.encoding → codec. Older docs show Twilio's "audio/x-mulaw".
ENCODINGS = {
    "PCMU": "PCMU", "AUDIO/X-MULAW": "PCMU", "AUDIO/PCMU": "PCMU",
    "PCMA": "PCMA", "AUDIO/X-ALAW": "PCMA", "AUDIO/PCMA": "PCMA",
    "L16": "L16", "AUDIO/L16": "L16",
}
MIN_RATE, MAX_RATE = 8000, 48000
# start-level fields that are call metadata in their own right (they win over custom_parameters:
# the carrier saw the caller's number, a custom parameter is only what the app wrote).
CARRIER_FIELDS = ("from", "to")


def token_matches(expected: str, presented: str | None) -> bool:
    """Constant-time check of a `stream_auth_token`."""
    return secret_matches(expected, presented)


def connected_token(message: str | bytes) -> str | None:
    """The auth token a `connected` frame carries (`connected.x-telnyx-streaming-auth-token`;
    the top level is accepted too), or None when `message` is not such a frame."""
    try:
        msg = json.loads(message)
    except (ValueError, RecursionError):  # bad JSON, bad UTF-8, a JSON int over 4300 digits
        return None
    if not isinstance(msg, dict) or msg.get("event") != "connected":
        return None
    nested = msg.get("connected")
    token = nested.get(TOKEN_HEADER) if isinstance(nested, dict) else None
    token = token if token is not None else msg.get(TOKEN_HEADER)
    return token if isinstance(token, str) else None


def metadata_from_start(start: dict[str, Any]) -> dict[str, str]:
    """`start.custom_parameters` plus the caller/called numbers, tags and client_state."""
    metadata = metadata_from_parameters(start.get("custom_parameters"))
    tags = start.get("tags")
    if isinstance(tags, list) and tags:
        metadata["tags"] = ",".join(str(t) for t in tags)[:MAX_PARAMETER_CHARS]
    if isinstance(start.get("client_state"), str) and start["client_state"]:
        metadata["client_state"] = start["client_state"][:MAX_PARAMETER_CHARS]
    for key in CARRIER_FIELDS:
        value = start.get(key)
        if isinstance(value, str | int) and str(value):
            metadata[key] = str(value)[:MAX_PARAMETER_CHARS]
    return metadata


class TelnyxMediaStream(JsonEventStream):
    """Parses one Telnyx media WebSocket connection, message by message."""

    carrier = CARRIER
    binary_frame_reason = "binary frame: Telnyx sends JSON text frames only"
    track_roles = TRACK_ROLES

    def __init__(self) -> None:
        super().__init__(log)
        self.call_control_id = ""
        self.codec = "PCMU"
        self.sample_rate = 8000

    def _on_event(self, event: Any, msg: dict[str, Any]) -> list[MediaEvent]:
        if event == "error":
            # Telnyx reports a streaming problem; the stream may well go on, so it is only logged.
            error = msg.get("error") or msg.get("payload") or {}
            log.warning("telnyx: error frame on stream %s: %s", self.stream_id, str(error)[:300])
            return []
        if event in ("dtmf", "mark"):
            log.debug("telnyx %s on stream %s: %s", event, self.stream_id, str(msg.get(event))[:200])
            return []
        return self._unknown.ignore(event)

    def _call_started(self, msg: dict[str, Any], start: dict[str, Any]) -> CallStarted:
        media_format = start.get("media_format") or {}
        if not isinstance(media_format, dict):
            raise MalformedMessage("start.media_format is not an object")
        encoding = str(media_format.get("encoding") or "PCMU")
        codec = ENCODINGS.get(encoding.upper())
        if codec is None:
            raise UnsupportedStream(f"unsupported encoding {encoding[:40]!r} (PCMU, PCMA or L16)")
        try:
            rate = int(media_format.get("sample_rate") or 8000)
            channels = int(media_format.get("channels") or 1)
        except (TypeError, ValueError, OverflowError):  # OverflowError: JSON's Infinity
            raise MalformedMessage("start.media_format sample_rate/channels are not numbers") from None
        if not MIN_RATE <= rate <= MAX_RATE:
            raise UnsupportedStream(f"unsupported sample rate {rate}")
        if channels != 1:
            raise UnsupportedStream(f"unsupported channel count {channels}")
        self.codec, self.sample_rate = codec, rate
        self.stream_id = str(msg.get("stream_id") or start.get("stream_id") or "")
        self.call_control_id = str(start.get("call_control_id") or "")
        return CallStarted(
            carrier=CARRIER,
            # Telnyx does not say which tracks it streams (stream_track was chosen when the
            # stream was requested): the agent track is opened when its first frame arrives.
            tracks=("caller",),
            metadata=metadata_from_start(start),
            carrier_call_id=self.call_control_id,
            stream_id=self.stream_id,
            sample_rate=rate,
        )

    def _decode(self, payload: bytes) -> bytes:
        if self.codec == "PCMU":
            return ulaw_to_pcm16(payload)
        if self.codec == "PCMA":
            return alaw_to_pcm16(payload)
        # L16 is an RTP payload, so network byte order (RFC 3551 §4.5.11): big-endian.
        if len(payload) % 2:
            raise MalformedMessage(f"L16 payload of odd length {len(payload)}")
        return swap16(payload)

    def _audio(self, media: dict[str, Any], track: Track) -> Audio:
        pcm16 = self._decode(decode_payload(media.get("payload")))
        samples = len(pcm16) // 2
        seen = self._samples_seen.get(track, 0)
        self._samples_seen[track] = seen + samples
        t = self._stream_time(media, samples, seen)
        if not 0.0 <= t < 86_400.0:
            raise MalformedMessage(f"timestamp out of range: {str(media.get('timestamp'))[:40]!r}")
        return Audio(track=track, pcm16=pcm16, sample_rate=self.sample_rate, t=t)

    def _stream_time(self, media: dict[str, Any], samples: int, seen: int) -> float:
        """Seconds from stream start: `timestamp` (ms, as Twilio's), else the `chunk` number
        times this frame's length, else back-to-back after what this track already sent."""
        try:
            return float(media["timestamp"]) / 1000.0
        except (KeyError, TypeError, ValueError, OverflowError):  # OverflowError: a 400-digit int
            pass
        try:
            return (int(media["chunk"]) - 1) * samples / self.sample_rate
        except (KeyError, TypeError, ValueError, OverflowError):
            return seen / self.sample_rate
