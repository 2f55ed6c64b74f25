"""Genesys Cloud AudioHook client: `open` → `opened`, stereo PCMU frames, `ping`, `close` → `closed`.

Plays a session as Genesys does: signed upgrade request, media offered as the reference
client offers it (stereo, then each channel alone), 200 ms binary frames with the caller
("external") and the agent ("internal") sample-interleaved in the order the server chose.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import json
import os
import time
import uuid
from dataclasses import dataclass, field

import websockets
from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms

from ..media.audiohook import SIGNED_COMPONENTS, http_url
from .call import (
    FRAME_BYTES,
    FRAME_S,
    SimulatedCall,
    SimulationResult,
    frames_to_send,
    injected,
    paced,
)

FRAMES_PER_MESSAGE = 10  # 200 ms per binary frame, as the reference client sends
OFFERED_CHANNELS = (["external", "internal"], ["external"], ["internal"])


@dataclass
class _Request:
    """What http_message_signatures signs: the upgrade request."""

    url: str
    headers: dict[str, str]
    method: str = "GET"


def upgrade_headers(url: str, auth_token: str | None, organization_id: str, session_id: str,
                    correlation_id: str | None = None, created: int | None = None) -> dict[str, str]:
    """The headers Genesys puts on the upgrade request; `auth_token` is "API_KEY[:BASE64_SECRET]".

    With a secret the request is signed (RFC 9421, label sig1, hmac-sha256, 30 s lifetime);
    `created` (Unix seconds) lets tests sign a stale request.
    """
    headers = {
        "Audiohook-Organization-Id": organization_id,
        "Audiohook-Session-Id": session_id,
        "Audiohook-Correlation-Id": correlation_id or str(uuid.uuid4()),
    }
    if not auth_token:
        return headers
    api_key, _, secret = auth_token.partition(":")
    headers["X-API-KEY"] = api_key
    if not secret:
        return headers
    request = _Request(http_url(url), headers)
    key = base64.b64decode(secret)
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.HMAC_SHA256,
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={api_key: key}),
    )
    created_at = datetime.datetime.fromtimestamp(created if created is not None else int(time.time()),
                                                 tz=datetime.UTC)
    signer.sign(
        request,
        key_id=api_key,
        created=created_at,
        expires=created_at + datetime.timedelta(seconds=30),
        nonce=base64.b64encode(os.urandom(18)).decode(),
        label="sig1",
        covered_component_ids=SIGNED_COMPONENTS,
    )
    return request.headers


def offered_media(stereo: bool = True) -> list[dict]:
    channels = OFFERED_CHANNELS if stereo else OFFERED_CHANNELS[1:2]
    return [{"type": "audio", "format": "PCMU", "channels": list(c), "rate": 8000} for c in channels]


def open_parameters(call: SimulatedCall, organization_id: str, conversation_id: str) -> dict:
    """`open.parameters`: caller number as participant.ani, every call parameter as an input variable."""
    params = call.parameters
    parameters = {
        "organizationId": organization_id,
        "conversationId": conversation_id,
        "participant": {
            "id": str(uuid.uuid4()),
            "ani": params.get("from", ""),
            "aniName": params.get("caller_name", ""),
            "dnis": params.get("to") or params.get("tracking_number", ""),
        },
        "media": offered_media(call.agent is not None),
        "customConfig": {},
        "inputVariables": dict(params),
    }
    if params.get("language"):
        parameters["language"] = params["language"]
    return parameters


@dataclass
class ClientSession:
    """Client side of the envelope: seq counts up from 1, serverseq echoes the server."""

    session_id: str
    seq: int = 0
    serverseq: int = 0
    position_s: float = 0.0
    received: list[dict] = field(default_factory=list)

    def message(self, type_: str, parameters: dict | None = None) -> str:
        self.seq += 1
        return json.dumps({
            "version": "2", "id": self.session_id, "type": type_, "seq": self.seq,
            "serverseq": self.serverseq, "position": f"PT{self.position_s:.3f}S", "parameters": parameters or {},
        })

    def of_type(self, type_: str) -> list[dict]:
        return [m for m in self.received if m.get("type") == type_]


async def _read(ws, session: ClientSession, arrived: asyncio.Event) -> None:
    with contextlib.suppress(websockets.ConnectionClosed):
        async for raw in ws:
            if isinstance(raw, str):
                msg = json.loads(raw)
                session.received.append(msg)
                if isinstance(msg.get("seq"), int):
                    session.serverseq = msg["seq"]
                arrived.set()


async def _wait_for(session: ClientSession, arrived: asyncio.Event, type_: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        for msg in session.received:
            if msg.get("type") in (type_, "disconnect"):
                if msg["type"] == "disconnect" and type_ != "disconnect":
                    raise ConnectionError(f"server disconnected: {msg.get('parameters')}")
                return msg
        arrived.clear()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no {type_!r} from the server in {timeout} s")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(arrived.wait(), remaining)


def interleave(call: SimulatedCall, first: int, count: int, channels: list[str]) -> bytes:
    """`count` 20 ms frames from `first` on, one byte per channel per sample, in `channels` order."""
    tracks = [b"".join(call.frame("caller" if c == "external" else "agent", i) for i in range(first, first + count))
              for c in channels]
    if len(tracks) == 1:
        return tracks[0]
    out = bytearray(len(tracks[0]) * 2)
    out[0::2], out[1::2] = tracks[0], tracks[1]
    return bytes(out)


async def stream_call(
    url: str,
    call: SimulatedCall,
    speed: float = 1.0,
    drop_after: float | None = None,
    auth_token: str | None = None,
) -> SimulationResult:
    """Play one session; `drop_after` seconds of audio in, the socket is cut without `close`."""
    organization_id, conversation_id = str(uuid.uuid4()), str(uuid.uuid4())
    session = ClientSession(str(uuid.uuid4()))
    headers = upgrade_headers(url, auth_token, organization_id, session.session_id)
    frames = frames_to_send(call, drop_after)
    messages = -(-frames // FRAMES_PER_MESSAGE)
    arrived = asyncio.Event()
    async with websockets.connect(url, additional_headers=headers, max_size=2**20) as ws:
        reader = asyncio.create_task(_read(ws, session, arrived))
        await ws.send(session.message("open", open_parameters(call, organization_id, conversation_id)))
        opened = await _wait_for(session, arrived, "opened", 30)
        [media] = opened["parameters"]["media"]
        started_wall = time.time()
        async for m in paced(messages, speed, FRAME_S * FRAMES_PER_MESSAGE):
            first = m * FRAMES_PER_MESSAGE
            count = min(FRAMES_PER_MESSAGE, frames - first)
            for message in injected(call, first, count):
                await ws.send(message)
            await ws.send(interleave(call, first, count, media["channels"]))
            session.position_s = (first + count) * FRAME_S
            if m == messages // 2:
                await ws.send(session.message("ping"))
        if drop_after is not None:
            ws.transport.abort()  # a dropped line: no close transaction
            reader.cancel()
            return SimulationResult(conversation_id, session.session_id, frames, frames * FRAME_S, started_wall,
                                    False, None)
        await ws.send(session.message("close", {"reason": "end"}))
        await _wait_for(session, arrived, "closed", 300)
        await ws.close()
        await reader
        return SimulationResult(conversation_id, session.session_id, frames, frames * FRAME_S, started_wall,
                                True, ws.close_code)


__all__ = ["FRAME_BYTES", "ClientSession", "interleave", "offered_media", "open_parameters", "stream_call",
           "upgrade_headers"]
