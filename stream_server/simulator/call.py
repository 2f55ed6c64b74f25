"""What every simulated carrier plays: one call's audio and what came of it."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

FRAME_BYTES = 160  # 20 ms of 8 kHz μ-law
FRAME_S = 0.02


@dataclass
class SimulatedCall:
    caller: bytes  # 8 kHz μ-law
    agent: bytes | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    call_sid: str = field(default_factory=lambda: "CA" + uuid.uuid4().hex)
    stream_sid: str = field(default_factory=lambda: "MZ" + uuid.uuid4().hex)

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
