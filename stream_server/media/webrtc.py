"""WebRTC softphones (aiortc): an SDP offer in, one decoded audio track out as media events.

Unlike the WebSocket carriers there is no message stream to parse: the browser POSTs an
offer, the server answers recvonly audio, and the media arrives over DTLS-SRTP as Opus
(or G.711) that aiortc decodes to `av.AudioFrame`s — 48 kHz stereo for Opus. This module
checks the offer, converts those frames to 16 kHz mono `Audio` events with stream time, and
owns the peer connection's lifecycle (connected → track ends / closed / failed).

One peer connection carries one party: the offer's `track` says which ("caller" by default,
since alerts read the caller track; a softphone used by an agent sends "agent").
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import av
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.sdp import SessionDescription

from .codecs import PIPELINE_RATE
from .events import TRACKS, Audio, Track
from .metadata import clean_text, metadata_from_parameters

log = logging.getLogger(__name__)
logging.getLogger("aioice").setLevel(logging.WARNING)  # it logs every ICE check at INFO

CARRIER = "webrtc"
SAMPLE_RATE = PIPELINE_RATE  # frames are resampled once here; the session then records 16 kHz as is
MAX_CALL_ID_CHARS = 128
CONNECT_TIMEOUT_S = 30.0  # an answered offer whose ICE never connects is given up after this
RTP_CLOCK_WRAP = 2**32
SETTLE_S = 0.2  # after the first sign of the end, before telling a hang-up from a lost line
MIN_GAP_S = 0.01  # a jump in RTP time larger than this is lost audio, kept as a gap in stream time


class OfferError(ValueError):
    """The offer cannot be answered; the message is safe to return to the client."""


@dataclass(frozen=True)
class Offer:
    sdp: str
    track: Track
    metadata: dict[str, str]
    carrier_call_id: str


def parse_offer(body: bytes) -> Offer:
    """`{"sdp", "type": "offer", "track"?, "metadata"?, "call_id"?}` → Offer, or OfferError."""
    try:
        msg = json.loads(body)
    except (ValueError, RecursionError) as exc:  # ValueError: bad JSON or UTF-8, a JSON int over 4300 digits
        raise OfferError(f"body is not valid JSON: {exc}"[:200]) from None
    if not isinstance(msg, dict):
        raise OfferError("body is not a JSON object")
    if msg.get("type") != "offer":
        raise OfferError('"type" must be "offer"')
    sdp = msg.get("sdp")
    if not isinstance(sdp, str) or not sdp.strip():
        raise OfferError('"sdp" must be a non-empty string')
    track = msg.get("track", "caller")
    if track not in TRACKS:
        raise OfferError(f'"track" must be one of {", ".join(TRACKS)}')
    metadata = msg.get("metadata", {})
    if not isinstance(metadata, dict):
        raise OfferError('"metadata" must be an object of strings')
    call_id = msg.get("call_id")
    carrier_call_id = clean_text(call_id, MAX_CALL_ID_CHARS) if call_id else ""
    carrier_call_id = carrier_call_id or "webrtc-" + uuid.uuid4().hex
    check_sdp(sdp)
    return Offer(sdp, track, metadata_from_parameters(metadata), carrier_call_id)


def check_sdp(sdp: str) -> None:
    """One audio m-line that sends to us and nothing else: video or data channels would make
    aiortc decode media nobody listens to."""
    try:
        description = SessionDescription.parse(sdp)
    except Exception as exc:  # noqa: BLE001 - aiortc's parser raises assorted errors (even AssertionError)
        raise OfferError(f"invalid SDP: {type(exc).__name__} {exc}"[:200]) from None
    kinds = [m.kind for m in description.media]
    if kinds != ["audio"]:
        raise OfferError(f"the offer must have exactly one audio m-line, got {kinds or 'none'}")
    if description.media[0].direction not in (None, "sendonly", "sendrecv"):
        raise OfferError(f"the offer's audio is {description.media[0].direction}: nothing would be sent")


class FrameConverter:
    """Decoded frames (any rate, layout, sample format) → 16 kHz mono PCM16 `Audio`.

    Stream time is counted in output samples, so the pipeline sees a gap-free stream; a jump in
    the RTP timestamps (packets lost beyond what the jitter buffer hid) advances it by the gap.
    """

    def __init__(self, track: Track, out_rate: int = SAMPLE_RATE) -> None:
        self.track = track
        self.out_rate = out_rate
        self._resampler: av.AudioResampler | None = None
        self._input: tuple[str, str, int] | None = None
        self._first_pts: int | None = None
        self._next_in = 0  # expected position of the next frame, in input samples
        self._out_samples = 0

    def convert(self, frame: av.AudioFrame) -> Audio | None:
        rate = frame.sample_rate
        if frame.pts is not None:
            if self._first_pts is None:
                self._first_pts = frame.pts
            position = (frame.pts - self._first_pts) % RTP_CLOCK_WRAP
            if position + frame.samples <= self._next_in:
                return None  # already played: a duplicate or a late frame
            gap = position - self._next_in
            if gap > MIN_GAP_S * rate:
                self._out_samples += round(gap * self.out_rate / rate)
            self._next_in = position + frame.samples
        setup = (frame.format.name, frame.layout.name, rate)
        if self._resampler is None or setup != self._input:
            self._resampler = av.AudioResampler(format="s16", layout="mono", rate=self.out_rate)
            self._input = setup
        pcm = b"".join(out.to_ndarray().tobytes() for out in self._resampler.resample(frame))
        if not pcm:
            return None
        t = self._out_samples / self.out_rate
        self._out_samples += len(pcm) // 2
        return Audio(track=self.track, pcm16=pcm, sample_rate=self.out_rate, t=t)


def ice_configuration(stun_urls: str) -> RTCConfiguration:
    """No STUN unless configured: aiortc would otherwise ask Google's public STUN server."""
    urls = [u.strip() for u in stun_urls.split(",") if u.strip()]
    return RTCConfiguration(iceServers=[RTCIceServer(urls=urls)] if urls else [])


class WebRtcCall:
    """One softphone's peer connection, from offer to the reason the call ended.

    `answer()` returns the answer SDP; audio goes to the sink given to `attach()` (frames wait
    for it); `ended()` resolves with "completed" when the peer hung up (RTCP BYE or a closed
    connection) and "disconnected" when the connection failed (ICE consent lost).
    """

    def __init__(self, offer: Offer, stun_urls: str = "") -> None:
        self.offer = offer
        self.stream_id = "webrtc-" + uuid.uuid4().hex
        self.pc = RTCPeerConnection(ice_configuration(stun_urls))
        self.frames_received = 0
        self.bad_frames = 0
        self._converter = FrameConverter(offer.track)
        self._sink: Callable[[Audio], None] | None = None
        self._attached = asyncio.Event()
        self._connected = asyncio.Event()
        self._ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._failed = False
        self._settling = False
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)

    async def answer(self) -> str:
        """Apply the offer and return the answer SDP (host candidates included, no trickle)."""
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=self.offer.sdp, type="offer"))
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        except Exception as exc:  # noqa: BLE001 - aiortc rejects bad offers with assorted errors
            raise OfferError(f"offer rejected: {type(exc).__name__} {exc}"[:200]) from None
        for transceiver in self.pc.getTransceivers():
            self._watch_ice(transceiver.receiver.transport.transport)
        self._spawn(self._connect_deadline())
        return self.pc.localDescription.sdp

    def attach(self, sink: Callable[[Audio], None]) -> None:
        self._sink = sink
        self._attached.set()

    async def ended(self) -> str:
        return await asyncio.shield(self._ended)

    async def close(self, reason: str = "completed") -> None:
        self._finish(reason)
        await self.pc.close()
        for task in list(self._tasks):
            task.cancel()

    def _finish(self, reason: str) -> None:
        if not self._ended.done():
            self._ended.set_result(reason)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_state(self) -> None:
        state = self.pc.connectionState
        log.debug("webrtc %s: connection %s", self.stream_id, state)
        if state == "connected":
            self._connected.set()
        elif state in ("failed", "closed"):
            self._failed = self._failed or state == "failed"
            self._over()

    def _over(self) -> None:
        """Something says the call is over; which way is known only once the transports settle."""
        if not self._settling and not self._ended.done():
            self._settling = True
            self._spawn(self._settle())

    async def _settle(self) -> None:
        # A hang-up is RTCP BYE + DTLS close_notify with ICE still fine; a dead line is ICE
        # consent expiring, which aiortc reports as DTLS closed first and ICE failed just after.
        await asyncio.sleep(SETTLE_S)
        self._finish("disconnected" if self._failed else "completed")

    def _watch_ice(self, ice: Any) -> None:
        def on_state() -> None:
            if ice.state == "failed":
                self._failed = True

        ice.on("statechange", on_state)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self._spawn(self._pump(track))

    async def _connect_deadline(self) -> None:
        try:
            await asyncio.wait_for(self._connected.wait(), CONNECT_TIMEOUT_S)
        except TimeoutError:
            log.warning("webrtc %s: not connected after %.0f s", self.stream_id, CONNECT_TIMEOUT_S)
            self._finish("connect_timeout")

    async def _pump(self, track: MediaStreamTrack) -> None:
        await self._attached.wait()
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                break  # RTCP BYE from the peer, the connection lost, or our own close
            self.frames_received += 1
            try:
                audio = self._converter.convert(frame)
            except (ValueError, av.FFmpegError) as exc:
                self.bad_frames += 1
                log.warning("webrtc %s: dropped an unconvertible frame: %s", self.stream_id, exc)
                continue
            if audio is not None and self._sink is not None:
                self._sink(audio)
        self._over()
