"""Vonage Voice API WebSocket (NCCO `connect` to a `websocket` endpoint) → media events.

Wire format: one JSON text frame first, `{"event": "websocket:connected", "content-type":
"audio/l16;rate=16000", ...}` with the endpoint's custom `headers` flattened into it — the only
place call metadata travels. Then binary frames of 16-bit little-endian mono PCM, 20 ms each
(320 B at 8 kHz, 640 B at 16 kHz), and JSON `websocket:dtmf` text frames. There is no goodbye
message: the call ends when Vonage closes the socket.

Vonage sends the mix of the call (caller and agent together) on one socket. It is delivered as
the `caller` track, so every line — the agent's too — is transcribed and scored as the caller's.

Source: https://developer.vonage.com/voice/voice-api/concepts/websockets (connected frame,
content types, binary L16 frames, DTMF event).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from .credentials import any_secret_matches, bearer_value
from .errors import MalformedMessage, UnsupportedStream
from .events import Audio, CallEnded, CallStarted, MediaEvent
from .frames import HeldMedia, UnknownEvents, parse_json_object
from .metadata import metadata_from_parameters

log = logging.getLogger(__name__)

CARRIER = "vonage"
SUPPORTED_RATES = (8000, 16000, 24000)
DEFAULT_RATE = 16000
PROTOCOL_KEYS = ("event", "content-type")
# Header names an app may use to pass Vonage's call id (the answer webhook's `uuid`).
CALL_ID_KEYS = ("uuid", "call_uuid", "conversation_uuid")
_RATE = re.compile(r"rate\s*=\s*(\d+)", re.IGNORECASE)
NORMAL_CLOSE = 1000


def token_matches(expected: str, query_token: str | None, authorization: str | None) -> bool:
    """Constant-time check of the stream token, from `?token=` or `Authorization: Bearer`.

    Vonage signs nothing on a WebSocket; a secret in the endpoint URI or in the NCCO endpoint's
    `authorization` (sent as the Authorization header) is what proves the caller is Vonage.
    """
    # A bare header value is accepted too: the NCCO `authorization` is sent as written.
    bare = authorization.strip() if authorization and not bearer_value(authorization) else None
    return any_secret_matches(expected, [query_token, bearer_value(authorization), bare])


def sample_rate_from_content_type(content_type: Any) -> int:
    """`audio/l16;rate=16000` → 16000. Raises UnsupportedStream for anything but mono L16 at a
    supported rate; a missing content type is taken as Vonage's 16 kHz."""
    if content_type is None:
        log.warning("vonage: no content-type in websocket:connected; assuming %d Hz", DEFAULT_RATE)
        return DEFAULT_RATE
    text = str(content_type)[:100]
    if not text.strip().lower().startswith("audio/l16"):
        raise UnsupportedStream(f"unsupported content-type {text!r} (audio/l16 only)")
    match = _RATE.search(text)
    rate = int(match.group(1)) if match else DEFAULT_RATE
    if rate not in SUPPORTED_RATES:
        raise UnsupportedStream(f"unsupported sample rate {rate} in {text!r}")
    return rate


class VonageMediaStream:
    """Parses one Vonage WebSocket connection, message by message."""

    carrier = CARRIER

    def __init__(self) -> None:
        self.started = False
        self.sample_rate = DEFAULT_RATE
        self.call_id = ""
        self._samples = 0
        self._held: HeldMedia[bytes] = HeldMedia()
        self._unknown = UnknownEvents(log, CARRIER)

    def feed(self, message: str | bytes) -> list[MediaEvent]:
        """Turn one WebSocket message into zero or more media events.

        Raises MalformedMessage for a message that must be dropped (bad JSON, an audio frame
        of odd length) and UnsupportedStream for a content type other than mono L16.
        """
        if isinstance(message, bytes):
            if not self.started:  # audio before the connected frame: held, not dropped
                self._check_audio(message)
                self._held.hold(message)
                return []
            return [self._on_audio(message)]
        msg = parse_json_object(message)
        event = msg.get("event")
        if event == "websocket:connected":
            return self._on_connected(msg)
        if event == "websocket:dtmf":
            log.debug("vonage dtmf on call %s: %s", self.call_id, str(msg.get("digit"))[:8])
            return []
        return self._unknown.ignore(event)

    def on_close(self, code: int | None) -> CallEnded | None:
        """Vonage ends a call by closing the socket: a normal close (1000) is a completed call;
        any other close is left to the caller's default (an abnormal disconnect)."""
        return CallEnded("completed") if self.started and code == NORMAL_CLOSE else None

    def _on_connected(self, msg: dict[str, Any]) -> list[MediaEvent]:
        if self.started:
            log.warning("vonage: duplicate websocket:connected on call %s ignored", self.call_id)
            return []
        self.sample_rate = sample_rate_from_content_type(msg.get("content-type"))
        headers = {k: v for k, v in msg.items() if k not in PROTOCOL_KEYS}
        metadata = metadata_from_parameters(headers)
        self.call_id = next((metadata[k] for k in CALL_ID_KEYS if metadata.get(k)), "")
        self.started = True
        started = CallStarted(
            carrier=CARRIER,
            tracks=("caller",),  # the mix of the call: see the module docstring
            metadata=metadata,
            carrier_call_id=self.call_id,
            stream_id=self.call_id,
            sample_rate=self.sample_rate,
        )
        # Held frames were checked on arrival, so none is dropped here.
        return [started, *self._held.replay(lambda frame: [self._on_audio(frame)], log, "vonage: dropping held audio")]

    @staticmethod
    def _check_audio(frame: bytes) -> None:
        if not frame:
            raise MalformedMessage("empty audio frame")
        if len(frame) % 2:
            raise MalformedMessage(f"audio frame of odd length {len(frame)} (16-bit samples)")

    def _on_audio(self, frame: bytes) -> Audio:
        """Any even length is accepted; stream time advances by the samples received."""
        self._check_audio(frame)
        t = self._samples / self.sample_rate
        self._samples += len(frame) // 2
        return Audio(track="caller", pcm16=frame, sample_rate=self.sample_rate, t=t)
