"""Genesys Cloud AudioHook (protocol version "2") → media events.

Genesys is the client. Text frames are JSON envelopes {version, id, type, seq, serverseq,
position, parameters}; binary frames are audio in the media the server chose in `opened`
(PCMU or L16 at 8 kHz, sample-interleaved in the order of `channels`: "external" is the
customer, "internal" the agent). The server answers `open`/`ping`/`update`/`close` itself
(`Reply` items) and signals any protocol error with `disconnect`, then closes: AudioHook
treats a session with a broken sequence as unrecoverable.
Message shapes follow purecloudlabs/audiohook-reference-implementation.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hmac
import json
import logging
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from http_message_signatures import (
    HTTPMessageSignaturesException,
    HTTPMessageVerifier,
    InvalidSignature,
    MappingKeyResolver,
    algorithms,
)

from .codecs import ulaw_to_pcm16
from .events import AdapterOutput, Audio, CallEnded, CallStarted, Reply, Track
from .metadata import metadata_from_parameters

log = logging.getLogger(__name__)

CARRIER = "audiohook"
VERSION = "2"
SAMPLE_RATE = 8000
CHANNEL_ROLES: dict[str, Track] = {"external": "caller", "internal": "agent"}
NULL_UUID = "00000000-0000-0000-0000-000000000000"  # conversationId of Genesys' connection probe
MAX_TEXT_CHARS = 65535  # the protocol's limit for one text frame
MAX_POSITION_S = 86_400.0
DURATION = re.compile(r"PT(\d*\.)?\d+S", re.ASCII)  # used with fullmatch: no trailing "\n"
UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
CLIENT_TYPES = {"open", "close", "ping", "paused", "resumed", "update", "discarded", "error"}
CLOSE_REASONS = {"end": "completed", "disconnect": "completed", "error": "carrier_error", "reconnect": "reconnect"}

# What Genesys signs on the WebSocket upgrade (RFC 9421, label sig1, hmac-sha256).
SIGNED_COMPONENTS = ("@request-target", "@authority", "audiohook-organization-id", "audiohook-session-id",
                     "audiohook-correlation-id", "x-api-key")
MAX_SIGNATURE_AGE = datetime.timedelta(seconds=10)
CLOCK_SKEW = datetime.timedelta(seconds=3)


@dataclass(frozen=True)
class UpgradeRequest:
    """The WebSocket upgrade request as http_message_signatures reads it."""

    url: str  # absolute http(s) URL as the client dialled it (for @authority)
    request_target: str  # path?query as sent on the request line
    headers: Any  # items() gives every (name, value) field line
    method: str = "GET"


def http_url(ws_url: str) -> str:
    """ws(s)://… → http(s)://…: signatures cover the HTTP request, and default ports drop out."""
    for ws, http in (("wss://", "https://"), ("ws://", "http://")):
        if ws_url.startswith(ws):
            return http + ws_url[len(ws):]
    return ws_url


def check_upgrade(request: UpgradeRequest, api_key: str, client_secret: str | None,
                  max_age: datetime.timedelta | None = MAX_SIGNATURE_AGE) -> str | None:
    """Authenticate the upgrade request; None when it passes, else why not (for the log).

    X-API-KEY must be the configured key. With a client secret the request must also carry
    a valid `sig1` signature keyed by the base64-decoded secret, covering SIGNED_COMPONENTS,
    created under 10 s ago and not expired. Without a secret, Genesys sends no signature
    and the API key alone is checked (as the reference implementation allows).
    """
    sent_key = request.headers.get("x-api-key") or ""
    if not hmac.compare_digest(sent_key.encode(), api_key.encode()):
        return "wrong API key" if sent_key else "no X-API-KEY header"
    if client_secret is None:
        return None
    try:
        secret = base64.b64decode(client_secret, validate=True)
    except (binascii.Error, ValueError):
        log.error("audiohook: audiohook_client_secret is not base64; every session is refused")
        return "server misconfigured (client secret is not base64)"
    verifier = HTTPMessageVerifier(
        signature_algorithm=algorithms.HMAC_SHA256,
        key_resolver=MappingKeyResolver(public_keys={api_key: secret}, private_keys={}),
    )
    verifier.max_clock_skew = CLOCK_SKEW
    try:
        verifier.verify(request, max_age=max_age, require_components=SIGNED_COMPONENTS)
    except (InvalidSignature, HTTPMessageSignaturesException) as exc:
        return f"signature rejected: {exc}"[:200]
    return None


def parse_duration(value: Any) -> float | None:
    """ISO 8601 "PT1.25S" → seconds; None when it is not the protocol's duration form."""
    if not isinstance(value, str) or not DURATION.fullmatch(value):
        return None
    return float(value[2:-1])


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return "" if value is None else json.dumps(value, ensure_ascii=False)


def _number(value: Any) -> str:
    """Genesys sends numbers as tel: URIs ("tel:+815011112222"); keep the number as Twilio gives it."""
    text = _text(value).strip()
    return text[4:] if text.lower().startswith("tel:") else text


def metadata_from_open(parameters: dict[str, Any]) -> dict[str, str]:
    """`open.parameters` → call metadata, named as Twilio's customParameters are.

    Caller number `from` = participant.ani, `to` = dnis (tel: dropped); ad-source tags come from
    `inputVariables` (Architect) and `customConfig` (integration), inputVariables winning.
    The protocol's own fields come first so the 64-entry bound never drops them.
    """
    participant = parameters.get("participant")
    participant = participant if isinstance(participant, dict) else {}
    own = {
        "from": _number(participant.get("ani")),
        "to": _number(participant.get("dnis")),
        "caller_name": _text(participant.get("aniName")),
        "language": _text(parameters.get("language")),
    }
    merged: dict[str, Any] = {k: v for k, v in own.items() if v}
    for source in ("customConfig", "inputVariables"):
        tags = parameters.get(source)
        if isinstance(tags, dict):
            for key, value in list(tags.items())[:256]:
                if not own.get(key):  # the carrier's own caller number beats a tag's
                    merged[key] = _text(value)
    return metadata_from_parameters(merged)


def choose_media(offered: Any) -> dict[str, Any] | None:
    """Pick one offered media: PCMU stereo, else PCMU mono (external first), else L16 alike."""
    if not isinstance(offered, list):
        return None
    usable = [
        m for m in offered
        if isinstance(m, dict) and m.get("type", "audio") == "audio" and m.get("format") in ("PCMU", "L16")
        and m.get("rate") == SAMPLE_RATE and isinstance(m.get("channels"), list)
        and 1 <= len(m["channels"]) <= 2 and all(isinstance(c, str) and c in CHANNEL_ROLES for c in m["channels"])
        and len(set(m["channels"])) == len(m["channels"])
    ]

    def rank(m: dict[str, Any]) -> tuple[int, int, int]:
        return (m["format"] != "PCMU", len(m["channels"]) != 2, m["channels"][0] != "external")

    return min(usable, key=rank) if usable else None


class AudioHookSession:
    """Parses one AudioHook WebSocket connection, message by message, and answers it.

    `refusal` is set when the upgrade request failed authentication: the client's first
    message is then answered with `disconnect` {reason: unauthorized} and no call starts.
    """

    carrier = CARRIER

    def __init__(self, session_id: str | None = None, organization_id: str | None = None,
                 refusal: str | None = None) -> None:
        self.session_id = session_id if session_id and UUID_RE.fullmatch(session_id) else ""
        self.organization_id = organization_id
        self.refusal = refusal
        self.clientseq = 0
        self.serverseq = 0
        self.state = "preparing"  # → active ⇄ paused → ended
        self.probe = False
        self.media: dict[str, Any] | None = None
        self.tracks: tuple[Track, ...] = ()
        self.conversation_id = ""
        self._timeline = 0  # samples: stream position of the next audio sample, gaps included
        self._max_samples = int(MAX_POSITION_S * SAMPLE_RATE)

    # -- server messages ---------------------------------------------------------------
    def _reply(self, type_: str, parameters: dict[str, Any] | None = None) -> Reply:
        self.serverseq += 1
        return Reply(json.dumps({
            "version": VERSION, "type": type_, "id": self.session_id or NULL_UUID, "seq": self.serverseq,
            "clientseq": self.clientseq, "parameters": parameters or {},
        }))

    def _disconnect(self, reason: str, info: str, end: str) -> list[AdapterOutput]:
        """Tell the client why and end: AudioHook does not recover from a client error."""
        log.warning("audiohook session %s: disconnect (%s): %s", self.session_id or "?", reason, info)
        self.state = "ended"
        return [self._reply("disconnect", {"reason": reason, "info": info[:200]}), CallEnded(end)]

    def _error(self, info: str) -> list[AdapterOutput]:
        return self._disconnect("error", f"Client Error: {info}", "protocol_error")

    # -- client messages ---------------------------------------------------------------
    def feed(self, message: str | bytes) -> list[AdapterOutput]:
        """Turn one WebSocket message into replies and media events (never raises)."""
        if self.state == "ended":
            return []
        if self.refusal is not None:
            self._adopt_envelope(message)
            return self._disconnect("unauthorized", "Authentication failed", "unauthorized")
        if isinstance(message, bytes):
            return self._on_audio(message)
        if len(message) > MAX_TEXT_CHARS:
            return self._error(f"Text message too large (>64K). Length: {len(message)}")
        try:
            msg = json.loads(message)
        except (ValueError, RecursionError):  # ValueError: also a JSON int over 4300 digits
            return self._error("Text message not valid JSON")
        problem = self._check_envelope(msg)
        if problem:
            return self._error(problem)
        self.clientseq = msg["seq"]
        handler = getattr(self, f"_on_{msg['type']}")
        parameters = msg["parameters"]
        if msg["type"] != "open":
            self._align_to(parse_duration(msg["position"]))
        return handler(parameters)

    def refuse(self, message: str | bytes, info: str) -> list[AdapterOutput]:
        """The server cannot take a session now (a stream limit): answer the client's first
        message with `disconnect` {reason: error}, in its own session id and sequence."""
        self._adopt_envelope(message)
        return self._disconnect("error", info, "refused")

    def _adopt_envelope(self, message: str | bytes) -> None:
        """Best effort: answer a refused client in its own session id and sequence."""
        try:
            msg = json.loads(message) if isinstance(message, str) and len(message) <= MAX_TEXT_CHARS else None
        except (ValueError, RecursionError):  # ValueError: also a JSON int over 4300 digits
            msg = None
        if isinstance(msg, dict):
            if not self.session_id and isinstance(msg.get("id"), str) and UUID_RE.fullmatch(msg["id"]):
                self.session_id = msg["id"]
            if type(msg.get("seq")) is int and msg["seq"] >= 0:
                self.clientseq = msg["seq"]

    def _check_envelope(self, msg: Any) -> str | None:
        """What the reference server requires of every client message; None when it is fine."""
        if not isinstance(msg, dict):
            return "Message not a well-formed client message"
        seq, serverseq = msg.get("seq"), msg.get("serverseq")
        if (msg.get("version") != VERSION or not isinstance(msg.get("id"), str) or not UUID_RE.fullmatch(msg["id"])
                or not isinstance(msg.get("type"), str) or type(seq) is not int or seq < 0
                or type(serverseq) is not int or serverseq < 0 or not isinstance(msg.get("parameters"), dict)
                or parse_duration(msg.get("position")) is None):
            return "Message not a well-formed client message"
        if seq != self.clientseq + 1:
            return f"Invalid seq value (not monotonically increasing): expected {self.clientseq + 1}, got {seq}"
        if serverseq > self.serverseq:
            return "Invalid serverseq value"
        if not self.session_id:
            self.session_id = msg["id"]
        elif msg["id"].lower() != self.session_id.lower():
            return "Session identifier mismatch"
        if msg["type"] not in CLIENT_TYPES:
            return f"Invalid Message: {msg['type'][:64]!r} is not a supported client message"
        return None

    def _align_to(self, position: float | None) -> None:
        """Client positions count audio sent and discarded: never let our timeline lag them."""
        if position is not None and position <= MAX_POSITION_S:
            self._timeline = max(self._timeline, round(position * SAMPLE_RATE))

    def _on_open(self, parameters: dict[str, Any]) -> list[AdapterOutput]:
        if self.state != "preparing":
            log.warning("audiohook session %s: ignoring 'open' in state %s", self.session_id, self.state)
            return []
        conversation_id = parameters.get("conversationId")
        if not isinstance(conversation_id, str) or not isinstance(parameters.get("media"), list):
            return self._error("Invalid Message: Invalid/missing parameters")
        org = parameters.get("organizationId")
        if self.organization_id is not None and str(org).lower() != self.organization_id.lower():
            return self._disconnect("unauthorized", "Organization id of 'open' differs from the "
                                    "Audiohook-Organization-Id header", "unauthorized")
        self.media = choose_media(parameters["media"])
        self.conversation_id = conversation_id[:128]
        self.probe = conversation_id == NULL_UUID
        if self.media is None and not self.probe:
            return self._disconnect("error", "No supported media offered (PCMU or L16 at 8000 Hz)",
                                    "unsupported_stream")
        self.state = "active"
        opened = self._reply("opened", {"media": [self.media] if self.media else [], "startPaused": False})
        if self.probe:  # Genesys checking the endpoint: answer, but there is no call
            log.info("audiohook session %s: connection probe", self.session_id)
            return [opened]
        assert self.media is not None
        self.tracks = tuple(CHANNEL_ROLES[c] for c in self.media["channels"])
        started = CallStarted(
            carrier=CARRIER,
            tracks=self.tracks,
            metadata=metadata_from_open(parameters),
            carrier_call_id=self.conversation_id,
            stream_id=self.session_id,
            sample_rate=SAMPLE_RATE,
        )
        return [opened, started]

    def _on_audio(self, data: bytes) -> list[AdapterOutput]:
        if self.state == "preparing":
            return self._error("Received audio in state PREPARING (before 'opened')")
        if self.probe or self.media is None or not data:
            return []
        channels = len(self.tracks)
        width = 1 if self.media["format"] == "PCMU" else 2
        if len(data) % (width * channels):
            return self._error(f"Binary data not a valid audio frame: {len(data)} bytes is not a whole "
                               f"number of {channels}-channel {self.media['format']} samples")
        samples = len(data) // (width * channels)
        if self._timeline + samples > self._max_samples:
            return self._error("Audio position beyond 24 hours")
        t = self._timeline / SAMPLE_RATE
        self._timeline += samples
        events: list[AdapterOutput] = []
        for index, track in enumerate(self.tracks):
            if width == 1:
                pcm16 = ulaw_to_pcm16(data[index::channels])
            else:  # L16 as the reference implementation sends it: 16-bit little-endian
                pcm16 = np.frombuffer(data, dtype="<i2")[index::channels].tobytes()
            events.append(Audio(track=track, pcm16=pcm16, sample_rate=SAMPLE_RATE, t=t))
        return events

    def _on_ping(self, parameters: dict[str, Any]) -> list[AdapterOutput]:
        return [self._reply("pong")]

    def _on_update(self, parameters: dict[str, Any]) -> list[AdapterOutput]:
        log.info("audiohook session %s: update %s", self.session_id, str(parameters)[:200])
        return [self._reply("updated")]

    def _on_paused(self, parameters: dict[str, Any]) -> list[AdapterOutput]:
        if self.state == "active":
            self.state = "paused"
        return []

    def _on_resumed(self, parameters: dict[str, Any]) -> list[AdapterOutput]:
        return self._gap(parameters, resume=True)

    def _on_discarded(self, parameters: dict[str, Any]) -> list[AdapterOutput]:
        return self._gap(parameters, resume=False)

    def _gap(self, parameters: dict[str, Any], resume: bool) -> list[AdapterOutput]:
        """Audio the client did not send (on hold, or dropped): audio time jumps past it."""
        start, discarded = parse_duration(parameters.get("start")), parse_duration(parameters.get("discarded"))
        if start is None or discarded is None:
            return self._error("Invalid Message: Invalid/missing parameters")
        self._align_to(start + discarded)
        if resume and self.state == "paused":
            self.state = "active"
        return []

    def _on_error(self, parameters: dict[str, Any]) -> list[AdapterOutput]:
        log.warning("audiohook session %s: client error %s", self.session_id, str(parameters)[:300])
        return []

    def _on_close(self, parameters: dict[str, Any]) -> list[AdapterOutput]:
        reason = CLOSE_REASONS.get(str(parameters.get("reason")), "completed")
        self.state = "ended"
        return [self._reply("closed"), CallEnded(reason)]
