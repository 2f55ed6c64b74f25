"""Twilio Media Streams (`<Start><Stream>` / `<Connect><Stream>`) → media events.

Wire format: JSON text frames `connected`, `start`, `media`, `dtmf`, `mark`, `stop`;
numeric counters arrive as strings; audio is base64 8 kHz μ-law in ~20 ms chunks.
`inbound` is the caller leg, `outbound` the agent leg.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections import deque
from typing import Any

from twilio.request_validator import RequestValidator

from .codecs import ulaw_to_pcm16
from .errors import MalformedMessage, UnsupportedStream
from .events import Audio, CallEnded, CallStarted, MediaEvent, Track

log = logging.getLogger(__name__)

CARRIER = "twilio"
SAMPLE_RATE = 8000
TRACK_ROLES: dict[str, Track] = {"inbound": "caller", "outbound": "agent"}
SUPPORTED_ENCODINGS = {"audio/x-mulaw"}
# Caller-controlled metadata is bounded so a hostile `start` cannot bloat every alert.
MAX_PARAMETERS = 64
MAX_PARAMETER_CHARS = 1024
# Media that arrives before `start` is held (not dropped) up to this many chunks (~5 s).
MAX_PENDING_MEDIA = 250


def verify_signature(auth_token: str, url: str, signature: str | None) -> bool:
    """Check `X-Twilio-Signature` on the WebSocket upgrade request.

    Twilio signs the stream URL as `wss://host/path?query` with no POST parameters.
    """
    if not signature:
        return False
    return RequestValidator(auth_token).validate(url, {}, signature)


def metadata_from_parameters(parameters: Any) -> dict[str, str]:
    """`start.customParameters` → call metadata (ad-source tags, caller number...)."""
    if not isinstance(parameters, dict):
        return {}
    metadata: dict[str, str] = {}
    for key, value in list(parameters.items())[:MAX_PARAMETERS]:
        metadata[str(key)[:128]] = ("" if value is None else str(value))[:MAX_PARAMETER_CHARS]
    return metadata


class TwilioMediaStream:
    """Parses one Twilio media WebSocket connection, message by message."""

    carrier = CARRIER

    def __init__(self) -> None:
        self.stream_sid = ""
        self.call_sid = ""
        self.started = False
        self.stopped = False
        self._pending: deque[dict[str, Any]] = deque(maxlen=MAX_PENDING_MEDIA)
        self._unknown_seen: set[str] = set()
        self._samples_seen: dict[Track, int] = {}

    def feed(self, message: str | bytes) -> list[MediaEvent]:
        """Turn one WebSocket message into zero or more media events.

        Raises MalformedMessage for a message that must be dropped and UnsupportedStream
        when the stream cannot be processed at all.
        """
        if isinstance(message, bytes):
            raise MalformedMessage("binary frame: Twilio sends JSON text frames only")
        try:
            msg = json.loads(message)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise MalformedMessage(f"invalid JSON: {exc}") from None
        if not isinstance(msg, dict):
            raise MalformedMessage("message is not a JSON object")
        if self.stopped:
            return []
        event = msg.get("event")
        if event == "connected":
            return []
        if event == "start":
            return self._on_start(msg)
        if event == "media":
            if not self.started:
                self._pending.append(msg)
                return []
            return [self._on_media(msg)]
        if event == "stop":
            self.stopped = True
            return [CallEnded("completed")]
        if event in ("dtmf", "mark"):
            log.debug("twilio %s on stream %s: %s", event, self.stream_sid, msg.get(event))
            return []
        name = str(event)[:64]
        if name not in self._unknown_seen:
            self._unknown_seen.add(name)
            log.warning("twilio: ignoring unknown event %r", name)
        return []

    def _on_start(self, msg: dict[str, Any]) -> list[MediaEvent]:
        if self.started:
            log.warning("twilio: duplicate start on stream %s ignored", self.stream_sid)
            return []
        start = msg.get("start")
        if not isinstance(start, dict):
            raise MalformedMessage("start without a start object")
        media_format = start.get("mediaFormat") or {}
        encoding = media_format.get("encoding", "audio/x-mulaw") if isinstance(media_format, dict) else None
        if encoding not in SUPPORTED_ENCODINGS:
            raise UnsupportedStream(f"unsupported encoding {encoding!r}")
        self.stream_sid = str(start.get("streamSid") or msg.get("streamSid") or "")
        self.call_sid = str(start.get("callSid") or "")
        raw_tracks = start.get("tracks") or ["inbound"]
        if not isinstance(raw_tracks, list):
            raise MalformedMessage("start.tracks is not a list")
        tracks = tuple(dict.fromkeys(TRACK_ROLES[t] for t in raw_tracks if t in TRACK_ROLES)) or ("caller",)
        self.started = True
        events: list[MediaEvent] = [
            CallStarted(
                carrier=CARRIER,
                tracks=tracks,
                metadata=metadata_from_parameters(start.get("customParameters")),
                carrier_call_id=self.call_sid,
                stream_id=self.stream_sid,
                sample_rate=SAMPLE_RATE,
            )
        ]
        pending, self._pending = list(self._pending), deque(maxlen=MAX_PENDING_MEDIA)
        for held in pending:
            try:
                events.append(self._on_media(held))
            except MalformedMessage as exc:
                log.warning("twilio: dropping held media: %s", exc)
        return events

    def _on_media(self, msg: dict[str, Any]) -> Audio:
        media = msg.get("media")
        if not isinstance(media, dict):
            raise MalformedMessage("media without a media object")
        track = TRACK_ROLES.get(str(media.get("track", "inbound")))
        if track is None:
            raise MalformedMessage(f"unknown track {media.get('track')!r}")
        try:
            ulaw = base64.b64decode(media.get("payload") or "", validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise MalformedMessage("payload is not valid base64") from None
        if not ulaw:
            raise MalformedMessage("empty media payload")
        seen = self._samples_seen.get(track, 0)
        self._samples_seen[track] = seen + len(ulaw)
        try:
            t = float(media["timestamp"]) / 1000.0
        except (KeyError, TypeError, ValueError):
            t = seen / SAMPLE_RATE  # no usable timestamp: assume back-to-back chunks
        if not 0.0 <= t < 86_400.0:
            raise MalformedMessage(f"timestamp out of range: {media.get('timestamp')!r}")
        return Audio(track=track, pcm16=ulaw_to_pcm16(ulaw), sample_rate=SAMPLE_RATE, t=t)
