"""How many media streams one source, and the server as a whole, may hold open at once.

Every carrier socket (the WebSocket media endpoints in api/media.py and the AudioSocket TCP
listener) takes a slot for as long as it is connected, from before its first message to its last
line of cleanup, so a peer that opens streams faster than it ends them runs into its limit instead
of into the server's memory and ASR capacity. The source is the socket's peer address: behind a
proxy every carrier shares the proxy's address, so there `max_streams_per_source` must be 0 (off)
or sized for all of them, and the proxy should do the per-client limiting.

Each endpoint refuses in its own protocol's terms (close 1013, an AudioHook `disconnect`, an
AudioSocket error frame); this module only counts. All counting happens on the event loop, between
awaits, so it needs no lock.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def source_of(host: str | None) -> str:
    """A peer address as one source: an IPv4 peer seen through a dual-stack socket
    (::ffff:a.b.c.d) counts as a.b.c.d; anything unparsable counts as itself."""
    text = (host or "?").split("%")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return text
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return str(address.ipv4_mapped)
    return str(address)


class StreamLimits:
    """Open media streams, per source and in all; `per_source` / `total` of 0 mean no limit."""

    def __init__(self, per_source: int = 0, total: int = 0) -> None:
        self.per_source = per_source
        self.total = total
        self._by_source: Counter[str] = Counter()

    @property
    def open_streams(self) -> int:
        return sum(self._by_source.values())

    def open_from(self, source: str) -> int:
        return self._by_source[source]

    def refusal(self, source: str) -> str | None:
        """Why a new stream from `source` would be refused now; None when it may open."""
        if self.total and self.open_streams >= self.total:
            return f"server at its limit of {self.total} calls; try again later"
        if self.per_source and self._by_source[source] >= self.per_source:
            return f"{source} has {self._by_source[source]} streams open (limit {self.per_source}); try again later"
        return None

    @contextmanager
    def slot(self, source: str) -> Iterator[str | None]:
        """Take a slot for one stream for the duration of the `with` block: yields None when
        taken, else the refusal (nothing is taken). The slot is given back however the block
        ends: a normal close, an exception, or the task being cancelled at shutdown."""
        refused = self.refusal(source)
        if refused:
            yield refused
            return
        self._by_source[source] += 1
        try:
            yield None
        finally:
            self._by_source[source] -= 1
            if self._by_source[source] <= 0:
                del self._by_source[source]


def stream_limits(state: Any) -> StreamLimits:
    """The app's one StreamLimits (made from its settings on first use), shared by every
    WebSocket carrier and the AudioSocket listener."""
    limits = getattr(state, "stream_limits", None)
    if limits is None:
        settings = state.settings
        limits = state.stream_limits = StreamLimits(settings.max_streams_per_source, settings.max_calls)
    return limits
