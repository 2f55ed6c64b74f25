"""A Twilio Media Streams client: plays audio files into the server as a live call would.

Used by `stream-server simulate`, the end-to-end tests and the benchmarks. Frames are
20 ms and paced by the clock against the call's start, so a slow loop catches up
instead of drifting.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from dataclasses import dataclass, field

import websockets
from twilio.request_validator import RequestValidator

FRAME_BYTES = 160  # 20 ms of 8 kHz μ-law
FRAME_S = 0.02


@dataclass
class SimulatedCall:
    caller: bytes  # 8 kHz μ-law
    agent: bytes | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    call_sid: str = field(default_factory=lambda: "CA" + uuid.uuid4().hex)
    stream_sid: str = field(default_factory=lambda: "MZ" + uuid.uuid4().hex)


@dataclass
class SimulationResult:
    call_sid: str
    stream_sid: str
    frames_sent: int
    audio_seconds: float
    started_at: float  # time.time() when the first media frame was sent
    completed: bool  # False when the socket was dropped on purpose (drop_after)
    close_code: int | None


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


async def stream_call(
    url: str,
    call: SimulatedCall,
    speed: float = 1.0,
    drop_after: float | None = None,
    auth_token: str | None = None,
) -> SimulationResult:
    """Play one call; `drop_after` seconds of audio in, the socket is cut without `stop`."""
    tracks = [("inbound", call.caller)] + ([("outbound", call.agent)] if call.agent is not None else [])
    frames = max(len(audio) for _, audio in tracks) // FRAME_BYTES
    if drop_after is not None:
        frames = min(frames, int(drop_after / FRAME_S))
    sequence = 1
    async with websockets.connect(
        url, additional_headers=signature_headers(url, auth_token), max_size=2**20
    ) as ws:
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await ws.send(json.dumps(start_message(call)))
        started_wall, started_clock = time.time(), time.monotonic()
        for i in range(frames):
            for track, audio in tracks:
                payload = audio[i * FRAME_BYTES : (i + 1) * FRAME_BYTES]
                if len(payload) == FRAME_BYTES:
                    sequence += 1
                    await ws.send(json.dumps(media_message(call, sequence, track, i + 1, payload)))
            delay = started_clock + (i + 1) * FRAME_S / speed - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        if drop_after is not None:
            ws.transport.abort()  # a dropped line: no stop message, no closing handshake
            return SimulationResult(call.call_sid, call.stream_sid, frames, frames * FRAME_S, started_wall, False, None)
        sequence += 1
        await ws.send(
            json.dumps(
                {
                    "event": "stop",
                    "sequenceNumber": str(sequence),
                    "streamSid": call.stream_sid,
                    "stop": {"accountSid": "AC" + "0" * 32, "callSid": call.call_sid},
                }
            )
        )
        try:
            await asyncio.wait_for(ws.wait_closed(), timeout=300)
        except TimeoutError:
            pass
        return SimulationResult(
            call.call_sid, call.stream_sid, frames, frames * FRAME_S, started_wall, True, ws.close_code
        )
