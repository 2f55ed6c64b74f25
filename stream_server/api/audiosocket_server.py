"""The Asterisk AudioSocket TCP listener: one connection per call, pumped into a CallSession.

AudioSocket has no credentials, so the peer address is the only gate: `audiosocket_allow`
(loopback by default). A refused peer gets an error frame and the socket is closed, as does a
peer over `max_streams_per_source` / `max_calls` (api/stream_limits.py, counted together with
the WebSocket carriers). A peer that sends nothing for `audiosocket_idle_timeout_s` after its
UUID is closed and its call ended (`idle_timeout`). Calls are run with the same session helpers as the WebSocket carriers
(api/media.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from typing import Any

from ..media import audiosocket
from ..media.events import Audio, CallEnded, CallStarted
from ..pipeline.session import CallSession
from .media import close_session, open_session
from .stream_limits import source_of, stream_limits

log = logging.getLogger(__name__)

READ_BYTES = 65536
UUID_TIMEOUT_S = 10.0  # Asterisk sends the UUID frame as soon as it connects

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_allow_list(spec: str) -> list[Network] | None:
    """`"127.0.0.0/8, ::1, 10.1.2.3"` → networks; `*` → None (any peer). Raises ValueError."""
    entries = [e.strip() for e in spec.split(",") if e.strip()]
    if "*" in entries:
        return None
    return [ipaddress.ip_network(e, strict=False) for e in entries]


def peer_allowed(host: str | None, allow: list[Network] | None) -> bool:
    if allow is None:
        return True
    try:
        address = ipaddress.ip_address((host or "").split("%")[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped  # a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d
    return any(address in network for network in allow)


class AudioSocketServer:
    """Owned by the app lifespan: `start()` binds the port, `stop()` ends every call on it."""

    def __init__(self, state: Any, host: str, port: int, allow: str, max_bad_frames: int,
                 idle_timeout_s: float = 30.0) -> None:
        self.state = state
        self.host = host
        self.port = port
        self.allow = parse_allow_list(allow)
        self.max_bad_frames = max_bad_frames
        self.idle_timeout_s = idle_timeout_s  # after the UUID; 0 = wait for ever
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._on_connection, self.host, self.port)
        if self.allow == []:
            log.warning("audiosocket: STREAM_SERVER_AUDIOSOCKET_ALLOW is empty: every peer will be refused")
        log.info("audiosocket: listening on %s:%d (allowed peers: %s)", self.host, self.port,
                 "any" if self.allow is None else ", ".join(map(str, self.allow)))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            pass  # server shutdown: the session was ended in _serve's finally
        except Exception:  # one broken connection must never take the listener down
            log.exception("audiosocket: connection failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 5)
            if task is not None:
                self._connections.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or ("?", 0)
        if not peer_allowed(str(peer[0]), self.allow):
            log.warning("audiosocket: refused connection from %s (not in STREAM_SERVER_AUDIOSOCKET_ALLOW)", peer[0])
            await _send_error(writer, audiosocket.ERROR_NOT_ALLOWED)
            return
        source = source_of(str(peer[0]))
        with stream_limits(self.state).slot(source) as refused:  # shared with the WebSocket carriers
            if refused:
                log.warning("audiosocket: refused connection from %s: %s", source, refused)
                await _send_error(writer, audiosocket.ERROR_BUSY)
                return
            await self._run_call(reader, writer, peer)

    async def _run_call(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: Any) -> None:
        parser = audiosocket.AudioSocketStream(self.max_bad_frames)
        session: CallSession | None = None
        end = CallEnded("disconnected")
        try:
            while not parser.ended:  # a hangup frame ends the call: nothing after it is read
                data = await self._next_chunk(reader, writer, parser, str(peer[0]))
                if isinstance(data, CallEnded):
                    end = data
                    break
                for event in parser.feed(data):
                    if isinstance(event, CallStarted):
                        session = await open_session(self.state, parser.carrier, event)
                    elif isinstance(event, Audio) and session is not None:
                        session.push_audio(event)
                    elif isinstance(event, CallEnded):
                        end = event
                if parser.error:
                    log.warning("audiosocket: closing call %s from %s: %s", parser.call_id, peer[0], parser.error)
                    end = CallEnded("protocol_error")
                    await _send_error(writer, audiosocket.ERROR_PROTOCOL)
                    break
        except asyncio.CancelledError:
            end = CallEnded("server_shutdown")
            raise
        finally:
            if session is None:
                # A call that got as far as its UUID but sent no audio is still recorded (empty).
                for event in parser.unannounced_start():
                    if isinstance(event, CallStarted):
                        session = await open_session(self.state, parser.carrier, event)
            if session is not None:
                await close_session(self.state, parser.carrier, session, end, parser.bad_frames)

    async def _next_chunk(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                          parser: audiosocket.AudioSocketStream, host: str) -> bytes | CallEnded:
        """The peer's next bytes, or how the call ends without them. Waits are bounded so that a
        peer that goes quiet cannot hold its connection (and its call) open for ever."""
        awaiting_uuid = not parser.started
        timeout = UUID_TIMEOUT_S if awaiting_uuid else self.idle_timeout_s or None
        try:
            data = await asyncio.wait_for(reader.read(READ_BYTES), timeout)
        except TimeoutError:
            if awaiting_uuid:
                log.warning("audiosocket: no UUID frame from %s in %.0f s", host, UUID_TIMEOUT_S)
                await _send_error(writer, audiosocket.ERROR_PROTOCOL)
                return CallEnded("protocol_error")
            log.warning("audiosocket: call %s: nothing from %s in %.1f s; ending it", parser.call_id, host, timeout)
            return CallEnded("idle_timeout")
        except (ConnectionError, OSError) as exc:
            log.warning("audiosocket: call %s: connection lost: %s", parser.call_id, exc)
            return CallEnded("disconnected")
        return data or parser.finish()


async def _send_error(writer: asyncio.StreamWriter, code: int) -> None:
    """An error frame before closing; a peer that is already gone is fine."""
    try:
        writer.write(audiosocket.error_frame(code))
        await asyncio.wait_for(writer.drain(), 5)
    except (ConnectionError, OSError, TimeoutError):
        pass
