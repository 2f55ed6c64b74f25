"""Carrier clients that play audio files into the server as a live call would.

Used by `stream-server simulate`, the end-to-end tests and the benchmarks. One module per
protocol, each with the same entry point::

    stream_call(url, call, speed=1.0, drop_after=None, auth_token=None) -> SimulationResult

Frames are 20 ms and paced by the clock (`call.paced`); `drop_after` seconds in, the
connection is cut without the protocol's goodbye, as a dropped line would.
"""

from __future__ import annotations

import importlib

from .call import FRAME_BYTES, FRAME_S, SimulatedCall, SimulationResult
from .twilio import media_message, signature_headers, start_message

# protocol → (module in this package, media path on the server; AudioSocket is raw TCP)
PROTOCOLS: dict[str, tuple[str, str]] = {
    "twilio": ("twilio", "/v1/media/twilio"),
    "telnyx": ("telnyx", "/v1/media/telnyx"),
    "vonage": ("vonage", "/v1/media/vonage"),
    "audiohook": ("audiohook", "/v1/media/audiohook"),
    "stream": ("stream", "/v1/media/stream"),
    "audiosocket": ("audiosocket", ""),
    "webrtc": ("webrtc", "/v1/webrtc/offer"),
}


def default_url(protocol: str, host: str = "127.0.0.1", port: int = 8080, audiosocket_port: int = 9092) -> str:
    """Where a server on default ports takes `protocol`'s media."""
    if protocol == "audiosocket":
        return f"tcp://{host}:{audiosocket_port}"
    scheme = "http" if protocol == "webrtc" else "ws"
    return f"{scheme}://{host}:{port}{PROTOCOLS[protocol][1]}"


async def stream_call(
    url: str,
    call: SimulatedCall,
    speed: float = 1.0,
    drop_after: float | None = None,
    auth_token: str | None = None,
    protocol: str = "twilio",
) -> SimulationResult:
    """Play one call to `url` as `protocol`'s carrier would."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; one of {', '.join(PROTOCOLS)}")
    module = importlib.import_module(f"{__name__}.{PROTOCOLS[protocol][0]}")
    return await module.stream_call(url, call, speed, drop_after, auth_token)


__all__ = ["FRAME_BYTES", "FRAME_S", "PROTOCOLS", "SimulatedCall", "SimulationResult", "default_url",
           "media_message", "signature_headers", "start_message", "stream_call"]
