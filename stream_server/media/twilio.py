"""Twilio Media Streams (`<Start><Stream>` / `<Connect><Stream>`) → media events.

Wire format: JSON text frames `connected`, `start`, `media`, `dtmf`, `mark`, `stop`;
numeric counters arrive as strings; audio is base64 8 kHz μ-law in ~20 ms chunks.
`inbound` is the caller leg, `outbound` the agent leg.
"""

from __future__ import annotations

import logging
from typing import Any

from twilio.request_validator import RequestValidator

from .codecs import ulaw_to_pcm16
from .errors import MalformedMessage, UnsupportedStream
from .event_stream import JsonEventStream
from .events import Audio, CallStarted, MediaEvent, Track
from .frames import decode_payload
from .metadata import metadata_from_parameters

log = logging.getLogger(__name__)

CARRIER = "twilio"
SAMPLE_RATE = 8000
TRACK_ROLES: dict[str, Track] = {"inbound": "caller", "outbound": "agent"}
SUPPORTED_ENCODINGS = {"audio/x-mulaw"}


def verify_signature(auth_token: str, url: str, signature: str | None) -> bool:
    """Check `X-Twilio-Signature` on the WebSocket upgrade request.

    Twilio signs the stream URL as `wss://host/path?query` with no POST parameters.
    """
    if not signature:
        return False
    return RequestValidator(auth_token).validate(url, {}, signature)


class TwilioMediaStream(JsonEventStream):
    """Parses one Twilio media WebSocket connection, message by message."""

    carrier = CARRIER
    binary_frame_reason = "binary frame: Twilio sends JSON text frames only"
    track_roles = TRACK_ROLES

    def __init__(self) -> None:
        super().__init__(log)
        self.call_sid = ""

    def _on_event(self, event: Any, msg: dict[str, Any]) -> list[MediaEvent]:
        if event in ("dtmf", "mark"):
            log.debug("twilio %s on stream %s: %s", event, self.stream_id, msg.get(event))
            return []
        return self._unknown.ignore(event)

    def _call_started(self, msg: dict[str, Any], start: dict[str, Any]) -> CallStarted:
        media_format = start.get("mediaFormat") or {}
        encoding = media_format.get("encoding", "audio/x-mulaw") if isinstance(media_format, dict) else None
        if not isinstance(encoding, str) or encoding not in SUPPORTED_ENCODINGS:
            raise UnsupportedStream(f"unsupported encoding {str(encoding)[:40]!r}")
        self.stream_id = str(start.get("streamSid") or msg.get("streamSid") or "")
        self.call_sid = str(start.get("callSid") or "")
        raw_tracks = start.get("tracks") or ["inbound"]
        if not isinstance(raw_tracks, list):
            raise MalformedMessage("start.tracks is not a list")
        tracks = tuple(dict.fromkeys(TRACK_ROLES[t] for t in raw_tracks if isinstance(t, str) and t in TRACK_ROLES)) or ("caller",)
        return CallStarted(
            carrier=CARRIER,
            tracks=tracks,
            metadata=metadata_from_parameters(start.get("customParameters")),
            carrier_call_id=self.call_sid,
            stream_id=self.stream_id,
            sample_rate=SAMPLE_RATE,
        )

    def _audio(self, media: dict[str, Any], track: Track) -> Audio:
        ulaw = decode_payload(media.get("payload"))
        seen = self._samples_seen.get(track, 0)
        self._samples_seen[track] = seen + len(ulaw)
        try:
            t = float(media["timestamp"]) / 1000.0
        except (KeyError, TypeError, ValueError, OverflowError):  # OverflowError: a 400-digit int
            t = seen / SAMPLE_RATE  # no usable timestamp: assume back-to-back chunks
        if not 0.0 <= t < 86_400.0:
            raise MalformedMessage(f"timestamp out of range: {media.get('timestamp')!r}")
        return Audio(track=track, pcm16=ulaw_to_pcm16(ulaw), sample_rate=SAMPLE_RATE, t=t)
