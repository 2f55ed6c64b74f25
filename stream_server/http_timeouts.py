"""uvicorn's HTTP protocol with a deadline on a request's headers (slow loris).

uvicorn closes idle keep-alive connections, but a connection that sends nothing, or trickles a
header a byte at a time, is held for as long as the peer likes: a few hundred of them take
every slot of `limit_concurrency` or every file descriptor. This subclass gives each request
`timeout_s` from its first byte (a new connection: from connecting) to the end of its headers,
then closes the connection. WebSocket upgrades end their headers like any request; what comes
after is the media endpoints' own start and idle timeouts.

It subclasses uvicorn's httptools protocol (the one `uvicorn[standard]` runs) and uses only its
parser callbacks; tests/test_hostile_limits.py checks it against the installed uvicorn.
"""

from __future__ import annotations

import asyncio
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)


class HeaderDeadlineProtocol(HttpToolsProtocol):
    timeout_s = 10.0  # set per server: see with_header_timeout

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._header_deadline: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_deadline is None:  # the next request on a kept-alive connection
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._header_deadline = self.loop.call_later(self.timeout_s, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            client = "%s:%d" % self.client if self.client else "?"
            log.warning("%s: request headers not complete within %g s; closing the connection", client, self.timeout_s)
            self.transport.close()


def with_header_timeout(timeout_s: float) -> type[HeaderDeadlineProtocol]:
    """The protocol class to hand uvicorn (`http=`) for a server whose deadline is `timeout_s`."""
    return type("HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"timeout_s": timeout_s})
