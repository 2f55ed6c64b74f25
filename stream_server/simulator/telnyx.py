"""Telnyx Media Streaming client: JSON `connected`, `start`, `media` (base64 PCMU), `stop`.

The caller's number travels as `start.from` (and `to` as `start.to`) as Telnyx sends them; every
other call parameter goes in `start.custom_parameters`. The stream token, when given, is sent
both ways Telnyx does: the `x-telnyx-streaming-auth-token` header and the `connected` frame.
"""

from __future__ import annotations

import base64
import json

import websockets

from ..media.telnyx import TOKEN_HEADER
from .call import (
    FRAME_S,
    SimulatedCall,
    SimulationResult,
    frames_to_send,
    send_media_events,
)


def connected_message(auth_token: str | None = None) -> dict:
    message: dict = {"event": "connected", "version": "1.0.0"}
    if auth_token:
        message["connected"] = {TOKEN_HEADER: auth_token}
    return message


def start_message(call: SimulatedCall, encoding: str = "PCMU", sample_rate: int = 8000) -> dict:
    custom = {k: v for k, v in call.parameters.items() if k not in ("from", "to")}
    return {
        "event": "start",
        "sequence_number": "1",
        "stream_id": call.stream_sid,
        "start": {
            "user_id": "00000000-0000-4000-8000-000000000000",
            "call_control_id": "v3:" + call.call_sid,
            "call_session_id": call.stream_sid,
            "from": call.parameters.get("from", ""),
            "to": call.parameters.get("to", ""),
            "client_state": None,
            "custom_parameters": custom,
            "media_format": {"encoding": encoding, "sample_rate": sample_rate, "channels": 1},
        },
    }


def media_message(call: SimulatedCall, sequence: int, track: str, chunk: int, payload: bytes,
                  frame_s: float = FRAME_S) -> dict:
    return {
        "event": "media",
        "sequence_number": str(sequence),
        "stream_id": call.stream_sid,
        "media": {
            "track": track,
            "chunk": str(chunk),
            "timestamp": str(round((chunk - 1) * frame_s * 1000)),
            "payload": base64.b64encode(payload).decode(),
        },
    }


def stop_message(call: SimulatedCall, sequence: int) -> dict:
    return {"event": "stop", "sequence_number": str(sequence), "stream_id": call.stream_sid,
            "stop": {"call_control_id": "v3:" + call.call_sid}}


def auth_headers(auth_token: str | None) -> dict[str, str]:
    return {TOKEN_HEADER: auth_token} if auth_token else {}


async def stream_call(
    url: str,
    call: SimulatedCall,
    speed: float = 1.0,
    drop_after: float | None = None,
    auth_token: str | None = None,
) -> SimulationResult:
    """Play one call; `drop_after` seconds of audio in, the socket is cut without `stop`."""
    frames = frames_to_send(call, drop_after)
    async with websockets.connect(url, additional_headers=auth_headers(auth_token), max_size=2**20) as ws:
        await ws.send(json.dumps(connected_message(auth_token)))
        await ws.send(json.dumps(start_message(call)))
        return await send_media_events(ws, call, frames, speed, drop_after, media_message, stop_message)
