"""WebRTC softphone client (aiortc): POST an offer, send the caller audio as Opus, hang up.

A softphone is one microphone, so one peer connection carries one track: this plays
`call.caller` as the "caller" track and ignores `call.agent`. Metadata (`call.parameters`)
travels in the offer body, the softphone's own call id as `call_id`.
"""

from __future__ import annotations

import asyncio
import fractions
import time

import av
import httpx
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from ..media.codecs import ulaw_to_pcm16
from .call import FRAME_S, SimulatedCall, SimulationResult, frames_to_send

RATE = 8000
FRAME_SAMPLES = int(RATE * FRAME_S)
CONNECT_WAIT_S = 60.0  # ICE + DTLS must be up by then, or the call is given up
TAIL_S = 0.5  # after the last frame, before hanging up: the jitter buffer releases the end


class CallerTrack(MediaStreamTrack):
    """The caller's 8 kHz μ-law as 20 ms `av.AudioFrame`s, paced in real time (× speed);
    aiortc's Opus encoder resamples to 48 kHz."""

    kind = "audio"

    def __init__(self, call: SimulatedCall, frames: int, speed: float) -> None:
        super().__init__()
        self.call, self.frames, self.speed = call, frames, speed
        self.sent = 0
        self.started_at: float | None = None  # time.time() of the first frame
        self.done = asyncio.Event()
        self._start = 0.0

    async def recv(self) -> av.AudioFrame:
        if self.sent >= self.frames:
            self.done.set()
            self.stop()
            raise MediaStreamError
        if self.started_at is None:
            self.started_at, self._start = time.time(), time.monotonic()
        delay = self._start + self.sent * FRAME_S / self.speed - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        frame = av.AudioFrame(format="s16", layout="mono", samples=FRAME_SAMPLES)
        frame.planes[0].update(ulaw_to_pcm16(self.call.frame("caller", self.sent)))
        frame.sample_rate = RATE
        frame.pts = self.sent * FRAME_SAMPLES
        frame.time_base = fractions.Fraction(1, RATE)
        self.sent += 1
        return frame


async def _ice_gathered(pc: RTCPeerConnection) -> None:
    while pc.iceGatheringState != "complete":
        await asyncio.sleep(0.05)


async def negotiate(url: str, pc: RTCPeerConnection, body: dict, auth_token: str | None) -> dict:
    """Send our offer (extra fields in `body`), apply the answer; returns the server's reply."""
    await pc.setLocalDescription(await pc.createOffer())
    await _ice_gathered(pc)
    headers = {"Authorization": f"Bearer {auth_token}"} if auth_token else {}
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(url, json={"type": "offer", "sdp": pc.localDescription.sdp, **body}, headers=headers)
    response.raise_for_status()
    answer = response.json()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type=answer["type"]))
    return answer


async def stream_call(
    url: str,
    call: SimulatedCall,
    speed: float = 1.0,
    drop_after: float | None = None,
    auth_token: str | None = None,
) -> SimulationResult:
    """Play the caller track; `drop_after` seconds in, the line goes dead (no RTCP BYE), so the
    server only notices when ICE consent fails."""
    frames = frames_to_send(call, drop_after)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    track = CallerTrack(call, frames, speed)
    pc.addTransceiver(track, direction="sendonly")
    try:
        await negotiate(url, pc, {"track": "caller", "metadata": call.parameters, "call_id": call.call_sid}, auth_token)
        await asyncio.wait_for(track.done.wait(), frames * FRAME_S / speed + CONNECT_WAIT_S)
        if drop_after is not None:
            for transceiver in pc.getTransceivers():  # close the sockets before anything says goodbye
                await transceiver.sender.transport.transport.stop()
        else:
            await asyncio.sleep(TAIL_S / speed)
    finally:
        await pc.close()
    return SimulationResult(
        call.call_sid, call.stream_sid, track.sent, track.sent * FRAME_S, track.started_at or time.time(),
        drop_after is None, None,
    )
