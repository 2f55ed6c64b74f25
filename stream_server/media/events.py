"""The three events every carrier adapter produces, whatever its wire format.

Adapters turn protocol messages into these; the pipeline never sees a carrier's JSON.
Time is audio time: seconds since the start of the media stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .metadata import MAX_ID_CHARS, clean_text, metadata_from_parameters

Track = Literal["caller", "agent"]
TRACKS: tuple[Track, ...] = ("caller", "agent")


@dataclass(frozen=True)
class CallStarted:
    carrier: str
    tracks: tuple[Track, ...]
    metadata: dict[str, str] = field(default_factory=dict)
    carrier_call_id: str = ""  # e.g. Twilio CallSid
    stream_id: str = ""  # e.g. Twilio StreamSid
    sample_rate: int = 8000

    def __post_init__(self) -> None:
        # Safe by construction, whichever adapter built it: these strings come from the
        # carrier's side and go to the database, the bus and every alert.
        object.__setattr__(self, "metadata", metadata_from_parameters(self.metadata))
        object.__setattr__(self, "carrier_call_id", clean_text(self.carrier_call_id, MAX_ID_CHARS))
        object.__setattr__(self, "stream_id", clean_text(self.stream_id, MAX_ID_CHARS))


@dataclass(frozen=True)
class Audio:
    track: Track
    pcm16: bytes  # signed 16-bit little-endian mono
    sample_rate: int
    t: float  # seconds from stream start of the first sample


@dataclass(frozen=True)
class CallEnded:
    reason: str  # "completed" when the carrier said so; anything else is abnormal

    @property
    def abnormal(self) -> bool:
        return self.reason != "completed"


MediaEvent = CallStarted | Audio | CallEnded


@dataclass(frozen=True)
class Reply:
    """Not a pipeline event: a message the adapter needs sent back on the carrier's socket, in
    order with the events around it (AudioHook `opened`/`pong`/`closed`, error frames)."""

    data: str | bytes


AdapterOutput = MediaEvent | Reply
