"""Carrier media endpoints: a socket in, media events out to a CallSession.

`run_media_stream` is the same for every carrier: an adapter parses the wire format into
CallStarted / Audio / CallEnded and the session does the rest. Adding a carrier means a
new adapter module and a route here, never a change to the pipeline.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from ..exposure import UNCONFIGURED, carrier_unconfigured
from ..media import audiohook, l16_stream, telnyx, twilio, vonage
from ..media.errors import UNFORESEEN_INPUT_ERRORS, MalformedMessage, UnsupportedStream
from ..media.events import AdapterOutput, Audio, CallEnded, CallStarted, Reply
from ..pipeline.session import CallSession
from .stream_limits import source_of, stream_limits

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


def close_reason(text: str) -> str:
    """A close reason as RFC 6455 allows it: at most 123 bytes of UTF-8. Reasons quote what a
    peer sent, which may be long, non-ASCII or not even encodable (lone surrogates)."""
    return text.encode("utf-8", "replace")[:123].decode("utf-8", "ignore")


async def close_quietly(websocket: WebSocket, code: int, reason: str = "") -> None:
    """Close with a code and reason; the peer may already be gone (a carrier that sends its stop
    and hangs up at once), which is fine."""
    try:
        await websocket.close(code, close_reason(reason))
    except (RuntimeError, OSError, WebSocketDisconnect):
        pass


async def reject(websocket: WebSocket, carrier: str, credential: str, presented: bool, reason: str) -> None:
    """Refuse a stream whose credential is missing or wrong: log which, close with 1008."""
    log.warning("%s: rejected stream with %s %s", carrier, "a wrong" if presented else "no", credential)
    await close_quietly(websocket, POLICY_VIOLATION, reason)


async def refused_unconfigured(websocket: WebSocket, carrier: str) -> bool:
    """Production mode and no credential for this carrier: refuse the stream (1008)."""
    if not carrier_unconfigured(websocket.app.state.settings, carrier):
        return False
    log.warning("%s: refused a stream: no credential configured (production mode)", carrier)
    await close_quietly(websocket, POLICY_VIOLATION, UNCONFIGURED)
    return True


async def token_accepted(websocket: WebSocket, carrier: str, expected: str,
                         token_matches: Callable[[str, str | None, str | None], bool]) -> bool:
    """The `?token=` / Authorization check of carriers that sign nothing (Vonage, jambonz);
    a stream that fails it is rejected here."""
    query_token = websocket.query_params.get("token")
    authorization = websocket.headers.get("authorization")
    if token_matches(expected, query_token, authorization):
        return True
    await reject(websocket, carrier, "token", bool(query_token or authorization), "invalid token")
    return False


@router.websocket("/v1/media/twilio")
async def twilio_media(websocket: WebSocket) -> None:
    settings = websocket.app.state.settings
    await websocket.accept()
    if await refused_unconfigured(websocket, "twilio"):
        return
    if settings.twilio_auth_token:
        url = public_websocket_url(websocket, settings.public_url)
        signature = websocket.headers.get("x-twilio-signature")
        if not twilio.verify_signature(settings.twilio_auth_token, url, signature):
            await reject(websocket, "twilio", "signature", bool(signature), "invalid X-Twilio-Signature")
            return
    await run_media_stream(websocket, twilio.TwilioMediaStream())


FIRST_MESSAGE_TIMEOUT_S = 10.0


@router.websocket("/v1/media/telnyx")
async def telnyx_media(websocket: WebSocket) -> None:
    """Telnyx sends its `stream_auth_token` as the x-telnyx-streaming-auth-token header and in
    the `connected` frame. The header decides when present (a proxy may strip it: then the
    first frame must be a `connected` that carries the token)."""
    settings = websocket.app.state.settings
    await websocket.accept()
    if await refused_unconfigured(websocket, "telnyx"):
        return
    adapter = telnyx.TelnyxMediaStream()
    expected = settings.telnyx_stream_token
    if expected:
        header = websocket.headers.get(telnyx.TOKEN_HEADER)
        if header is None:  # no header: the first frame must be `connected` with the token
            try:
                message = await asyncio.wait_for(websocket.receive(), FIRST_MESSAGE_TIMEOUT_S)
            except TimeoutError:
                message = {}
            data = message.get("text") or message.get("bytes") or b""
            if message.get("type") == "websocket.disconnect":
                return
            header = telnyx.connected_token(data) if len(data) <= settings.max_message_bytes else None
        if not telnyx.token_matches(expected, header):
            await reject(websocket, "telnyx", "stream token", bool(header), "invalid stream auth token")
            return
    await run_media_stream(websocket, adapter)


@router.websocket("/v1/media/vonage")
async def vonage_media(websocket: WebSocket) -> None:
    settings = websocket.app.state.settings
    await websocket.accept()
    if await refused_unconfigured(websocket, "vonage"):
        return
    if settings.vonage_token and not await token_accepted(websocket, "vonage", settings.vonage_token,
                                                         vonage.token_matches):
        return
    await run_media_stream(websocket, vonage.VonageMediaStream())


AUDIOHOOK_REFUSAL_WAIT_S = 5.0


@router.websocket("/v1/media/audiohook")
async def audiohook_media(websocket: WebSocket) -> None:
    """Genesys AudioHook: auth failures are answered in-protocol (`disconnect` unauthorized to the
    client's first message, as the reference server does), so the socket is always accepted; a
    refused client gets AUDIOHOOK_REFUSAL_WAIT_S to send it, then the answer comes anyway."""
    settings = websocket.app.state.settings
    await websocket.accept()
    headers = websocket.headers
    refusal = organization_id = None
    if carrier_unconfigured(settings, "audiohook"):  # refused in-protocol, like a bad key
        refusal = UNCONFIGURED
    elif settings.audiohook_api_key:
        url = public_websocket_url(websocket, settings.public_url)
        target = websocket.url.path + (f"?{websocket.url.query}" if websocket.url.query else "")
        request = audiohook.UpgradeRequest(audiohook.http_url(url), target, headers)
        refusal = audiohook.check_upgrade(request, settings.audiohook_api_key, settings.audiohook_client_secret)
        organization_id = headers.get("audiohook-organization-id", "")
        if refusal:
            log.warning("audiohook: refusing session %s: %s", headers.get("audiohook-session-id", "?")[:64], refusal)
    adapter = audiohook.AudioHookSession(headers.get("audiohook-session-id"), organization_id, refusal)
    if refusal:
        try:
            message = await asyncio.wait_for(websocket.receive(), AUDIOHOOK_REFUSAL_WAIT_S)
        except TimeoutError:
            message = {"type": "websocket.receive", "text": ""}
        if message["type"] != "websocket.disconnect":
            data = message.get("text")
            for reply in adapter.feed(data if data is not None else message.get("bytes") or b""):
                if isinstance(reply, Reply):
                    await send_quietly(websocket, reply.data)
            await close_quietly(websocket, NORMAL)
        return
    await run_media_stream(websocket, adapter)


@router.websocket("/v1/media/stream")
async def l16_stream_media(websocket: WebSocket) -> None:
    """jambonz `listen` / mod_audio_fork: the subprotocol the client offers is accepted; with
    `stream_token` set, Bearer, Basic (token as password: jambonz `wsAuth`) or `?token=`."""
    settings = websocket.app.state.settings
    await websocket.accept(subprotocol=l16_stream.offered_subprotocol(websocket.scope.get("subprotocols") or []))
    if await refused_unconfigured(websocket, "stream"):
        return
    if settings.stream_token and not await token_accepted(websocket, "stream", settings.stream_token,
                                                         l16_stream.token_matches):
        return
    await run_media_stream(websocket, l16_stream.L16MediaStream())


async def open_session(state: Any, carrier: str, started: CallStarted) -> CallSession:
    """Create, start and register the CallSession of a new call (every carrier, any socket)."""
    session = CallSession(state.services, started)
    await session.start()
    state.active_calls[session.call_id] = session
    log.info("%s: call %s started (%s)", carrier, session.call_id, started.carrier_call_id)
    return session


async def close_session(state: Any, carrier: str, session: CallSession, end: CallEnded, bad_messages: int) -> None:
    """End and unregister a call; the recording is closed whatever the reason."""
    session.bad_messages = bad_messages
    try:
        await session.end(end)
    finally:
        state.active_calls.pop(session.call_id, None)
    log.info("%s: call %s ended (%s)", carrier, session.call_id, end.reason)


TRY_AGAIN_LATER = 1013


async def run_media_stream(websocket: WebSocket, adapter: MediaAdapter) -> None:
    """Pump one carrier socket into a CallSession until the call ends or the socket drops,
    holding one of its source's stream slots throughout (api/stream_limits.py)."""
    source = source_of(websocket.client.host if websocket.client else None)
    with stream_limits(websocket.app.state).slot(source) as refused:
        if refused:
            await refuse_stream(websocket, adapter, source, refused)
            return
        await pump_media_stream(websocket, adapter)


async def refuse_stream(websocket: WebSocket, adapter: MediaAdapter, source: str, reason: str) -> None:
    """Over a stream limit: no call. AudioHook is answered in-protocol first, as it is refused a
    bad key (`disconnect` to the client's first message, here with reason `error`); every carrier
    then gets close 1013 (Try Again Later) with the reason."""
    log.warning("%s: refused a stream from %s: %s", adapter.carrier, source, reason)
    refuse = getattr(adapter, "refuse", None)
    if refuse is not None:
        try:
            message = await asyncio.wait_for(websocket.receive(), AUDIOHOOK_REFUSAL_WAIT_S)
        except TimeoutError:
            message = {"type": "websocket.receive", "text": ""}
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("text")
        for reply in refuse(data if data is not None else message.get("bytes") or b"", reason):
            if isinstance(reply, Reply):
                await send_quietly(websocket, reply.data)
    await close_quietly(websocket, TRY_AGAIN_LATER, reason)


async def next_message(websocket: WebSocket, timeout: float | None) -> dict[str, Any] | None:
    """The socket's next ASGI message, or None when none came within `timeout` seconds (None:
    wait for ever). A message trickled in byte by byte still has to be whole in that time."""
    if timeout is not None and timeout <= 0:
        return None
    try:
        return await asyncio.wait_for(websocket.receive(), timeout)
    except TimeoutError:
        return None


async def pump_media_stream(websocket: WebSocket, adapter: MediaAdapter) -> None:
    """The carrier socket's messages → its adapter → the call's CallSession. A stream has
    `media_start_timeout_s` from connecting to start its call and may then go silent for at most
    `media_idle_timeout_s`: a socket that sends nothing cannot hold a slot and a call for ever."""
    state = websocket.app.state
    settings = state.settings
    session: CallSession | None = None
    bad_messages = 0
    end = CallEnded("disconnected")  # unless the carrier says the call completed
    loop = asyncio.get_running_loop()
    start_deadline = loop.time() + settings.media_start_timeout_s
    try:
        while True:
            if session is None:
                message = await next_message(websocket, start_deadline - loop.time())
            else:
                message = await next_message(websocket, settings.media_idle_timeout_s or None)
            if message is None:
                if session is None:
                    log.warning("%s: no call started within %.0f s; closing", adapter.carrier,
                                settings.media_start_timeout_s)
                    await close_quietly(websocket, POLICY_VIOLATION,
                                        f"no call started within {settings.media_start_timeout_s:g} s")
                else:
                    log.warning("%s: call %s: nothing received for %.0f s; ending it", adapter.carrier,
                                session.call_id, settings.media_idle_timeout_s)
                    end = CallEnded("idle_timeout")
                    await close_quietly(websocket, POLICY_VIOLATION,
                                        f"idle: nothing received for {settings.media_idle_timeout_s:g} s")
                break
            if message["type"] == "websocket.disconnect":
                if message.get("code") == TOO_BIG:  # uvicorn refused a message over ws_max_size itself
                    end = CallEnded("message_too_big")
                # Carriers with no goodbye message (Vonage) end a call by closing the socket.
                on_close = getattr(adapter, "on_close", None)
                if on_close is not None:
                    end = on_close(message.get("code")) or end
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
            except UnsupportedStream as exc:
                end = CallEnded("unsupported_stream")
                await close_quietly(websocket, UNSUPPORTED_DATA, str(exc)[:120])
                break
            except UNFORESEEN_INPUT_ERRORS as exc:
                bad_messages += 1
                reason = str(exc) if isinstance(exc, MalformedMessage) else f"{type(exc).__name__}: {exc}"
                log.warning("%s: dropped malformed message (%d so far): %s", adapter.carrier, bad_messages, reason[:200])
                if bad_messages > settings.max_bad_messages:
                    end = CallEnded("protocol_error")
                    await close_quietly(websocket, INVALID_PAYLOAD, f"too many malformed messages; last: {reason}"[:120])
                    break
                continue
            finished = False
            for event in events:
                if isinstance(event, CallStarted):
                    session = await open_session(state, adapter.carrier, event)
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
            await close_session(state, adapter.carrier, session, end, bad_messages)
