"""jambonz `listen` client: subprotocol `audio.jambonz.org`, a metadata text frame (call info +
sampleRate + mixType + the call's parameters merged at the top level, as jambonz merges the
verb's `metadata`), binary L16 frames, then a normal close (there is no goodbye message).

With an agent track the stream is `stereo` (caller on channel 0, agent on channel 1), else
`mono`. The token, when given, is sent as jambonz's `wsAuth` does: HTTP Basic, token as password.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import websockets

from ..media.codecs import StreamResampler, ulaw_to_pcm16
from .call import (
    FRAME_S,
    SimulatedCall,
    SimulationResult,
    frames_to_send,
    send_pcm_frames,
)

RATE = 16000
SUBPROTOCOL = "audio.jambonz.org"


def metadata_message(call: SimulatedCall, rate: int = RATE) -> dict:
    """The first frame jambonz sends: `{sampleRate, mixType, ...callInfo, ...metadata}`."""
    return {
        "sampleRate": rate,
        "mixType": "stereo" if call.agent is not None else "mono",
        "callSid": call.call_sid,
        "direction": "inbound",
        "from": call.parameters.get("from", ""),
        "to": call.parameters.get("to") or call.parameters.get("tracking_number", ""),
        "callId": call.stream_sid,
        "callStatus": "in-progress",
        **call.parameters,
    }


def l16_audio(call: SimulatedCall, rate: int = RATE) -> tuple[bytes, int]:
    """The call's audio as jambonz sends it: (interleaved 16-bit little-endian PCM, channels)."""
    caller = StreamResampler(8000, rate).process(ulaw_to_pcm16(call.caller), last=True)
    if call.agent is None:
        return caller, 1
    agent = StreamResampler(8000, rate).process(ulaw_to_pcm16(call.agent), last=True)
    length = max(len(caller), len(agent))
    left = np.frombuffer(caller.ljust(length, b"\x00"), dtype="<i2")
    right = np.frombuffer(agent.ljust(length, b"\x00"), dtype="<i2")
    return np.column_stack((left, right)).astype("<i2").tobytes(), 2


def basic_auth(token: str, username: str = "jambonz") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{token}".encode()).decode()}


async def stream_call(
    url: str,
    call: SimulatedCall,
    speed: float = 1.0,
    drop_after: float | None = None,
    auth_token: str | None = None,
) -> SimulationResult:
    """Play one call; `drop_after` seconds of audio in, the socket is cut without a close."""
    frames = frames_to_send(call, drop_after)
    audio, channels = l16_audio(call)
    frame_bytes = int(RATE * FRAME_S) * 2 * channels
    headers = basic_auth(auth_token) if auth_token else {}
    async with websockets.connect(url, additional_headers=headers, subprotocols=[SUBPROTOCOL],
                                  max_size=2**20) as ws:
        await ws.send(json.dumps(metadata_message(call)))
        return await send_pcm_frames(ws, call, audio, frame_bytes, frames, speed, drop_after)
