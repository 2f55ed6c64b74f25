"""Pieces every WebSocket carrier adapter needs to read its frames.

Carriers differ in field names, not in these rules: a text frame is one JSON object, audio in
JSON is base64, media that comes before the call's first frame is held rather than lost, and an
event this server does not know is logged once, not once per 20 ms frame.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from .errors import UNFORESEEN_INPUT_ERRORS, MalformedMessage
from .events import MediaEvent

# Media that arrives before the call starts is held (not dropped) up to this many chunks (~5 s).
MAX_PENDING_MEDIA = 250

T = TypeVar("T")


def parse_json_object(message: str | bytes, binary: str = "binary frame: JSON text frames only") -> dict[str, Any]:
    """One text frame → its JSON object. Raises MalformedMessage (with `binary` as the reason
    for a binary frame) when it is not one: the connection survives, the frame is dropped."""
    if isinstance(message, bytes):
        raise MalformedMessage(binary)
    try:
        msg = json.loads(message)
    except (ValueError, RecursionError) as exc:  # ValueError: also a JSON int over 4300 digits
        raise MalformedMessage(f"invalid JSON: {exc}") from None
    if not isinstance(msg, dict):
        raise MalformedMessage("message is not a JSON object")
    return msg


def decode_payload(payload: Any) -> bytes:
    """A media frame's base64 `payload` → audio bytes. Raises MalformedMessage when it is not
    strict base64 or holds no audio."""
    try:
        audio = base64.b64decode(payload or "", validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise MalformedMessage("payload is not valid base64") from None
    if not audio:
        raise MalformedMessage("empty media payload")
    return audio


class HeldMedia(Generic[T]):
    """Media frames received before the frame that starts the call.

    Carriers do not promise that order, so early audio is kept; bounded (oldest dropped first)
    so a client that never starts cannot grow memory.
    """

    def __init__(self) -> None:
        self._frames: deque[T] = deque(maxlen=MAX_PENDING_MEDIA)

    def hold(self, frame: T) -> None:
        self._frames.append(frame)

    def replay(self, handle: Callable[[T], list[MediaEvent]], log: logging.Logger, dropping: str) -> list[MediaEvent]:
        """Run every held frame through `handle`, once, in arrival order. A frame it rejects is
        logged as `dropping: reason` and skipped: the call has started and goes on."""
        frames, self._frames = list(self._frames), deque(maxlen=MAX_PENDING_MEDIA)
        events: list[MediaEvent] = []
        for frame in frames:
            try:
                events += handle(frame)
            except MalformedMessage as exc:
                log.warning("%s: %s", dropping, exc)
            except UNFORESEEN_INPUT_ERRORS as exc:
                log.warning("%s: %s: %s", dropping, type(exc).__name__, str(exc)[:200])
        return events


class UnknownEvents:
    """Event names already warned about: a carrier repeating one every frame must not flood the log."""

    def __init__(self, log: logging.Logger, carrier: str) -> None:
        self._log = log
        self._carrier = carrier
        self._seen: set[str] = set()

    def first(self, name: str) -> bool:
        """True the first time `name` is seen on this connection."""
        if name in self._seen:
            return False
        self._seen.add(name)
        return True

    def ignore(self, event: Any) -> list[MediaEvent]:
        """Warn (once per name) that `event` is ignored; nothing comes of it."""
        name = str(event)[:64]
        if self.first(name):
            self._log.warning("%s: ignoring unknown event %r", self._carrier, name)
        return []
