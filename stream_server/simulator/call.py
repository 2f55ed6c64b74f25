"""What every simulated carrier plays: one call's audio and what came of it."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

FRAME_BYTES = 160  # 20 ms of 8 kHz μ-law
FRAME_S = 0.02


@dataclass
class SimulatedCall:
    caller: bytes  # 8 kHz μ-law
    agent: bytes | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    call_sid: str = field(default_factory=lambda: "CA" + uuid.uuid4().hex)
    stream_sid: str = field(default_factory=lambda: "MZ" + uuid.uuid4().hex)
    # Hostile input (benchmarks/soak.py): frame index → raw messages sent just before that frame,
    # as they are (text or binary; AudioSocket writes bytes to the stream). Empty for a
    # well-behaved carrier.
    injections: dict[int, list[str | bytes]] = field(default_factory=dict)

    @property
    def duration_frames(self) -> int:
        """20 ms frames in the longer of the two tracks."""
        return max(len(self.caller), len(self.agent or b"")) // FRAME_BYTES

    def frame(self, track: str, i: int) -> bytes:
        """The i-th 20 ms μ-law frame of `caller` or `agent`, padded with silence past the end."""
        audio = self.caller if track == "caller" else (self.agent or b"")
        return audio[i * FRAME_BYTES : (i + 1) * FRAME_BYTES].ljust(FRAME_BYTES, b"\xff")



@dataclass
class SimulationResult:
    call_sid: str
    stream_sid: str
    frames_sent: int
    audio_seconds: float
    started_at: float  # time.time() when the first media frame was sent
    completed: bool  # False when the socket was dropped on purpose (drop_after)
    close_code: int | None



def injected(call: SimulatedCall, first: int, count: int = 1) -> list[str | bytes]:
    """The injected messages due before frames `first` … `first + count - 1`, in frame order."""
    if not call.injections:
        return []
    return [m for i in range(first, first + count) for m in call.injections.get(i, ())]


def frames_to_send(call: SimulatedCall, drop_after: float | None) -> int:
    frames = call.duration_frames
    return frames if drop_after is None else min(frames, int(drop_after / FRAME_S))


async def paced(frames: int, speed: float = 1.0, frame_s: float = FRAME_S) -> AsyncIterator[int]:
    """Yield frame indices at real-time pace (× speed), scheduled against the start so a slow
    loop catches up instead of drifting."""
    start = time.monotonic()
    for i in range(frames):
        yield i
        delay = start + (i + 1) * frame_s / speed - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


async def send_media_events(
    ws: Any,
    call: SimulatedCall,
    frames: int,
    speed: float,
    drop_after: float | None,
    media_message: Callable[[SimulatedCall, int, str, int, bytes], dict],
    stop_message: Callable[[SimulatedCall, int], dict],
) -> SimulationResult:
    """The Twilio-shaped media phase (Twilio, Telnyx), once `start` is sent: every track's frame
    as a JSON `media` message (sequence numbers go on from `start`'s 1), then `stop` and wait for
    the server to close; with `drop_after`, the line is cut instead (no stop, no handshake)."""
    tracks = [("inbound", "caller")] + ([("outbound", "agent")] if call.agent is not None else [])
    sequence = 1
    started_wall = time.time()
    async for i in paced(frames, speed):
        for message in injected(call, i):
            await ws.send(message)
        for track, role in tracks:
            sequence += 1
            await ws.send(json.dumps(media_message(call, sequence, track, i + 1, call.frame(role, i))))
    if drop_after is not None:
        ws.transport.abort()  # a dropped line: no stop message, no closing handshake
        return SimulationResult(call.call_sid, call.stream_sid, frames, frames * FRAME_S, started_wall, False, None)
    await ws.send(json.dumps(stop_message(call, sequence + 1)))
    try:
        await asyncio.wait_for(ws.wait_closed(), timeout=300)
    except TimeoutError:
        pass
    return SimulationResult(call.call_sid, call.stream_sid, frames, frames * FRAME_S, started_wall, True, ws.close_code)


async def send_pcm_frames(
    ws: Any, call: SimulatedCall, audio: bytes, frame_bytes: int, frames: int, speed: float, drop_after: float | None
) -> SimulationResult:
    """The binary-PCM media phase (Vonage, jambonz), once the first text frame is sent: `audio`
    in `frame_bytes` binary frames (the last zero-padded), then a normal close, which is these
    carriers' only goodbye; with `drop_after`, the line is cut instead (no closing handshake)."""
    started_wall = time.time()
    async for i in paced(frames, speed):
        for message in injected(call, i):
            await ws.send(message)
        await ws.send(audio[i * frame_bytes : (i + 1) * frame_bytes].ljust(frame_bytes, b"\x00"))
    if drop_after is not None:
        ws.transport.abort()  # a dropped line: no closing handshake
        return SimulationResult(call.call_sid, call.call_sid, frames, frames * FRAME_S, started_wall, False, None)
    await ws.close(1000)  # the call ended: the carrier closes the socket normally
    return SimulationResult(call.call_sid, call.call_sid, frames, frames * FRAME_S, started_wall, True, ws.close_code)
