"""Asterisk AudioSocket client (`tcp://host:port`): a UUID frame, then 20 ms slin frames
(type 0x10, 8 kHz, 320 B) of the caller's audio, then the socket is closed — as Asterisk's
AudioSocket() application does when the channel hangs up (it sends no hangup frame).

AudioSocket carries one direction and no metadata: the agent track and the call's parameters
are not sent, and there are no credentials (the server admits peers by address).
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
import uuid
from urllib.parse import urlsplit

from ..media.audiosocket import KIND_SLIN, KIND_UUID, frame
from ..media.codecs import ulaw_to_pcm16
from .call import FRAME_S, SimulatedCall, SimulationResult, frames_to_send, injected, paced

FRAME_BYTES = 320  # 20 ms of 8 kHz 16-bit mono


def call_uuid(call: SimulatedCall) -> uuid.UUID:
    """The call's UUID: its call_sid when that is one, else derived from it (stable per call)."""
    try:
        return uuid.UUID(call.call_sid)
    except ValueError:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"simulated-call:{call.call_sid}")


def parse_url(url: str) -> tuple[str, int]:
    parts = urlsplit(url if "://" in url else f"tcp://{url}")
    if parts.scheme != "tcp" or not parts.hostname or not parts.port:
        raise ValueError(f"AudioSocket URL must be tcp://host:port, not {url!r}")
    return parts.hostname, parts.port


async def stream_call(
    url: str,
    call: SimulatedCall,
    speed: float = 1.0,
    drop_after: float | None = None,
    auth_token: str | None = None,
) -> SimulationResult:
    """Play the caller track; `drop_after` seconds in, the connection is reset (no clean close)."""
    host, port = parse_url(url)
    call_id = str(call_uuid(call))
    frames = frames_to_send(call, drop_after)
    audio = ulaw_to_pcm16(call.caller)
    _, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(frame(KIND_UUID, uuid.UUID(call_id).bytes))
        started_wall = time.time()
        async for i in paced(frames, speed):
            for junk in injected(call, i):
                writer.write(junk if isinstance(junk, bytes) else junk.encode())
            writer.write(frame(KIND_SLIN, audio[i * FRAME_BYTES : (i + 1) * FRAME_BYTES].ljust(FRAME_BYTES, b"\x00")))
            await writer.drain()
        if drop_after is not None:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()  # RST: a dropped line, not a hangup
            return SimulationResult(call_id, call_id, frames, frames * FRAME_S, started_wall, False, None)
        await writer.drain()
    finally:
        if not writer.transport.is_closing():
            writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), 30)
        except (ConnectionError, OSError, TimeoutError):
            pass
    return SimulationResult(call_id, call_id, frames, frames * FRAME_S, started_wall, True, None)
