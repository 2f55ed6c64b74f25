"""The frame routing Twilio and Telnyx share: their media streams are one protocol shape.

JSON text frames named by `event`: `connected`, then `start` (the call and its audio format),
`media` (base64 audio of one track), carrier extras (`dtmf`, `mark`, `error`...), and `stop`.
Only field names differ, so each carrier module reads `start` and `media` itself and this class
does the rest: route frames, hold media that beats `start`, and go quiet after `stop`.
"""

from __future__ import annotations

import logging
from typing import Any

from .errors import MalformedMessage
from .events import Audio, CallEnded, CallStarted, MediaEvent, Track
from .frames import HeldMedia, UnknownEvents, parse_json_object


class JsonEventStream:
    """Base of one Twilio-shaped media WebSocket connection, parsed message by message.

    Subclasses set the class attributes and implement `_call_started` (read `start`), `_audio`
    (read one `media` object) and, for events beyond the shared ones, `_on_event`.
    """

    carrier: str
    binary_frame_reason: str
    track_roles: dict[str, Track]  # the carrier's track names → caller / agent

    def __init__(self, log: logging.Logger) -> None:
        self.stream_id = ""
        self.started = False
        self.stopped = False
        self._log = log
        self._held: HeldMedia[dict[str, Any]] = HeldMedia()
        self._unknown = UnknownEvents(log, self.carrier)
        self._samples_seen: dict[Track, int] = {}

    def feed(self, message: str | bytes) -> list[MediaEvent]:
        """Turn one WebSocket message into zero or more media events.

        Raises MalformedMessage for a message that must be dropped and UnsupportedStream
        when the stream cannot be processed at all.
        """
        msg = parse_json_object(message, self.binary_frame_reason)
        if self.stopped:
            return []
        event = msg.get("event")
        if event == "connected":
            return []
        if event == "start":
            return self._on_start(msg)
        if event == "media":
            if not self.started:
                self._held.hold(msg)
                return []
            return [self._on_media(msg)]
        if event == "stop":
            self.stopped = True
            return [CallEnded("completed")]
        return self._on_event(event, msg)

    def _on_start(self, msg: dict[str, Any]) -> list[MediaEvent]:
        """The call starts: CallStarted first, then the media held until now."""
        if self.started:
            self._log.warning("%s: duplicate start on stream %s ignored", self.carrier, self.stream_id)
            return []
        start = msg.get("start")
        if not isinstance(start, dict):
            raise MalformedMessage("start without a start object")
        started = self._call_started(msg, start)
        self.started = True
        held = self._held.replay(lambda msg: [self._on_media(msg)], self._log, f"{self.carrier}: dropping held media")
        return [started, *held]

    def _on_media(self, msg: dict[str, Any]) -> Audio:
        media = msg.get("media")
        if not isinstance(media, dict):
            raise MalformedMessage("media without a media object")
        track = self.track_roles.get(str(media.get("track", "inbound")))  # no track: the caller's
        if track is None:
            raise MalformedMessage(f"unknown track {str(media.get('track'))[:40]!r}")
        return self._audio(media, track)

    def _on_event(self, event: Any, msg: dict[str, Any]) -> list[MediaEvent]:
        return self._unknown.ignore(event)

    def _call_started(self, msg: dict[str, Any], start: dict[str, Any]) -> CallStarted:
        """The `start` frame (`start` is its start object) → CallStarted; raise to refuse it."""
        raise NotImplementedError

    def _audio(self, media: dict[str, Any], track: Track) -> Audio:
        """One `media` object of `track` → Audio; raise MalformedMessage to drop it."""
        raise NotImplementedError
