"""Vonage Voice WebSocket client: `websocket:connected` with the call's headers, then binary
16 kHz L16 frames of the call's mix, then a normal close (Vonage has no goodbye message).

Vonage delivers one mixed leg, so caller and agent audio are summed before sending. The token,
when given, goes both in the URL (`?token=`) and as `Authorization: Bearer`.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import websockets

from ..media.codecs import StreamResampler, mix_pcm16, ulaw_to_pcm16
from .call import (
    FRAME_S,
    SimulatedCall,
    SimulationResult,
    frames_to_send,
    send_pcm_frames,
)

RATE = 16000
FRAME_BYTES = int(RATE * FRAME_S) * 2  # 640 B: 20 ms of 16-bit mono


def connected_message(call: SimulatedCall, rate: int = RATE) -> dict:
    """The first frame: the NCCO endpoint's `headers` flattened next to the content type."""
    return {"event": "websocket:connected", "content-type": f"audio/l16;rate={rate}",
            "uuid": call.call_sid, **call.parameters}


def mixed_pcm16(call: SimulatedCall, rate: int = RATE) -> bytes:
    """Caller + agent (8 kHz μ-law) summed into one 16-bit little-endian track at `rate`."""
    caller = ulaw_to_pcm16(call.caller)
    agent = ulaw_to_pcm16(call.agent or b"")
    length = max(len(caller), len(agent))
    mix = mix_pcm16(caller.ljust(length, b"\x00"), agent.ljust(length, b"\x00"))
    return StreamResampler(8000, rate).process(mix, last=True)


def with_token(url: str, token: str | None) -> str:
    if not token:
        return url
    parts = urlsplit(url)
    query = urlencode([*parse_qsl(parts.query), ("token", token)])
    return urlunsplit(parts._replace(query=query))


async def stream_call(
    url: str,
    call: SimulatedCall,
    speed: float = 1.0,
    drop_after: float | None = None,
    auth_token: str | None = None,
) -> SimulationResult:
    """Play one call; `drop_after` seconds of audio in, the socket is cut without a close."""
    frames = frames_to_send(call, drop_after)
    audio = mixed_pcm16(call)
    headers = {"Authorization": f"Bearer {auth_token}"} if auth_token else {}
    async with websockets.connect(with_token(url, auth_token), additional_headers=headers, max_size=2**20) as ws:
        await ws.send(json.dumps(connected_message(call)))
        return await send_pcm_frames(ws, call, audio, FRAME_BYTES, frames, speed, drop_after)
