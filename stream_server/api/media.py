"""Carrier media endpoints: a socket in, media events out to a CallSession.

`run_media_stream` is the same for every carrier: an adapter parses the wire format into
CallStarted / Audio / CallEnded and the session does the rest. Adding a carrier means a
new adapter module and a route here, never a change to the pipeline.
"""

from __future__ import annotations

import logging
from typing import Protocol

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from ..media import twilio
from ..media.errors import MalformedMessage, UnsupportedStream
from ..media.events import AdapterOutput, Audio, CallEnded, CallStarted, Reply
from ..pipeline.session import CallSession

log = logging.getLogger(__name__)
router = APIRouter(tags=["media"])

NORMAL, UNSUPPORTED_DATA, INVALID_PAYLOAD, POLICY_VIOLATION, TOO_BIG = 1000, 1003, 1007, 1008, 1009


class MediaAdapter(Protocol):
    carrier: str

    def feed(self, message: str | bytes) -> list[AdapterOutput]: ...


def public_websocket_url(websocket: WebSocket, public_url: str | None) -> str:
    """The URL as the carrier dialled it, which is what carriers sign.

    Behind a TLS-terminating proxy the server sees ws://internal-host; `public_url` or
    the X-Forwarded-* headers give back wss://public-host.
    """
    path = websocket.url.path + (f"?{websocket.url.query}" if websocket.url.query else "")
    if public_url:
        return public_url.rstrip("/") + path
    headers = websocket.headers
    proto = headers.get("x-forwarded-proto", websocket.url.scheme).split(",")[0].strip()
    scheme = {"https": "wss", "http": "ws"}.get(proto, proto)
    host = headers.get("x-forwarded-host") or headers.get("host") or websocket.url.netloc
    return f"{scheme}://{host}{path}"


async def send_quietly(websocket: WebSocket, data: str | bytes) -> None:
    """Send a reply to the carrier; a peer that is gone is noticed by the next receive."""
    try:
        if isinstance(data, bytes):
            await websocket.send_bytes(data)
        else:
            await websocket.send_text(data)
    except (RuntimeError, OSError, WebSocketDisconnect):
        pass


async def close_quietly(websocket: WebSocket, code: int, reason: str = "") -> None:
    """Close with a code and reason; the peer may already be gone, which is fine."""
    try:
        await websocket.close(code, reason)
    except RuntimeError:
        pass


@router.websocket("/v1/media/twilio")
async def twilio_media(websocket: WebSocket) -> None:
    settings = websocket.app.state.settings
    await websocket.accept()
    if settings.twilio_auth_token:
        url = public_websocket_url(websocket, settings.public_url)
        signature = websocket.headers.get("x-twilio-signature")
        if not twilio.verify_signature(settings.twilio_auth_token, url, signature):
            log.warning("twilio: rejected stream with %s signature", "a wrong" if signature else "no")
            await close_quietly(websocket, POLICY_VIOLATION, "invalid X-Twilio-Signature")
            return
    await run_media_stream(websocket, twilio.TwilioMediaStream())


async def run_media_stream(websocket: WebSocket, adapter: MediaAdapter) -> None:
    """Pump one carrier socket into a CallSession until the call ends or the socket drops."""
    state = websocket.app.state
    settings = state.settings
    session: CallSession | None = None
    bad_messages = 0
    end = CallEnded("disconnected")  # unless the carrier says the call completed
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            data = message.get("text")
            if data is None:
                data = message.get("bytes") or b""
            if len(data) > settings.max_message_bytes:
                end = CallEnded("message_too_big")
                await close_quietly(websocket, TOO_BIG, f"message over {settings.max_message_bytes} bytes")
                break
            try:
                events = adapter.feed(data)
            except MalformedMessage as exc:
                bad_messages += 1
                log.warning("%s: dropped malformed message (%d so far): %s", adapter.carrier, bad_messages, exc)
                if bad_messages > settings.max_bad_messages:
                    end = CallEnded("protocol_error")
                    await close_quietly(websocket, INVALID_PAYLOAD, f"too many malformed messages; last: {exc}"[:120])
                    break
                continue
            except UnsupportedStream as exc:
                end = CallEnded("unsupported_stream")
                await close_quietly(websocket, UNSUPPORTED_DATA, str(exc)[:120])
                break
            finished = False
            for event in events:
                if isinstance(event, CallStarted):
                    session = CallSession(state.services, event)
                    await session.start()
                    state.active_calls[session.call_id] = session
                    log.info("%s: call %s started (%s)", adapter.carrier, session.call_id, event.carrier_call_id)
                elif isinstance(event, Audio) and session is not None:
                    session.push_audio(event)
                elif isinstance(event, Reply):
                    await send_quietly(websocket, event.data)
                elif isinstance(event, CallEnded):
                    end, finished = event, True
            if finished:
                await close_quietly(websocket, NORMAL)
                break
    finally:
        if session is not None:
            session.bad_messages = bad_messages
            try:
                await session.end(end)
            finally:
                state.active_calls.pop(session.call_id, None)
            log.info("%s: call %s ended (%s)", adapter.carrier, session.call_id, end.reason)
