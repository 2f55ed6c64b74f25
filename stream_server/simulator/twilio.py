"""Twilio Media Streams client: JSON `connected`, `start`, `media` (base64 μ-law), `stop`."""

from __future__ import annotations

import base64
import json

import websockets
from twilio.request_validator import RequestValidator

from .call import (
    FRAME_S,
    SimulatedCall,
    SimulationResult,
    frames_to_send,
    send_media_events,
)


def start_message(call: SimulatedCall) -> dict:
    tracks = ["inbound", "outbound"] if call.agent is not None else ["inbound"]
    return {
        "event": "start",
        "sequenceNumber": "1",
        "streamSid": call.stream_sid,
        "start": {
            "accountSid": "AC" + "0" * 32,
            "streamSid": call.stream_sid,
            "callSid": call.call_sid,
            "tracks": tracks,
            "customParameters": call.parameters,
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        },
    }


def media_message(call: SimulatedCall, sequence: int, track: str, chunk: int, payload: bytes) -> dict:
    return {
        "event": "media",
        "sequenceNumber": str(sequence),
        "streamSid": call.stream_sid,
        "media": {
            "track": track,
            "chunk": str(chunk),
            "timestamp": str(round((chunk - 1) * FRAME_S * 1000)),
            "payload": base64.b64encode(payload).decode(),
        },
    }


def signature_headers(url: str, auth_token: str | None) -> dict[str, str]:
    if not auth_token:
        return {}
    return {"X-Twilio-Signature": RequestValidator(auth_token).compute_signature(url, {})}


def stop_message(call: SimulatedCall, sequence: int) -> dict:
    return {
        "event": "stop",
        "sequenceNumber": str(sequence),
        "streamSid": call.stream_sid,
        "stop": {"accountSid": "AC" + "0" * 32, "callSid": call.call_sid},
    }


async def stream_call(
    url: str,
    call: SimulatedCall,
    speed: float = 1.0,
    drop_after: float | None = None,
    auth_token: str | None = None,
) -> SimulationResult:
    """Play one call; `drop_after` seconds of audio in, the socket is cut without `stop`."""
    frames = frames_to_send(call, drop_after)
    async with websockets.connect(
        url, additional_headers=signature_headers(url, auth_token), max_size=2**20
    ) as ws:
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await ws.send(json.dumps(start_message(call)))
        return await send_media_events(ws, call, frames, speed, drop_after, media_message, stop_message)
