"""WebRTC softphones: `POST /v1/webrtc/offer` answers an SDP offer and runs the call.

The HTTP request only negotiates; the call lives on in a background task that feeds the
peer connection's audio to a CallSession and ends it when the peer hangs up or is lost.
`GET /v1/webrtc/softphone` is a small browser page that does the browser's half.
"""

from __future__ import annotations

import asyncio
import logging
from importlib import resources

from fastapi import APIRouter, HTTPException, Request, Response, status
from starlette.datastructures import State

from ..config import Settings
from ..media import webrtc
from ..media.credentials import bearer_value, secret_matches
from ..media.events import CallEnded, CallStarted
from ..pipeline.session import CallSession
from .media import close_session, open_session

log = logging.getLogger(__name__)
router = APIRouter(tags=["webrtc"])

# The page loads nothing but its own script and talks only to this server.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; media-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _web_file(name: str) -> str:
    return resources.files("stream_server").joinpath("web", name).read_text(encoding="utf-8")


def _open_calls(state: State) -> set[webrtc.WebRtcCall]:
    calls = getattr(state, "webrtc_calls", None)
    if calls is None:
        calls = state.webrtc_calls = set()
    return calls


def _call_tasks(state: State) -> set[asyncio.Task[None]]:
    """The tasks running this app's calls: held here so they are not collected mid-call, and so
    shutdown can wait for them."""
    tasks = getattr(state, "webrtc_tasks", None)
    if tasks is None:
        tasks = state.webrtc_tasks = set()
    return tasks


def offer_token(settings: Settings) -> str | None:
    """The token an offer must carry: the softphones' own, else the API token, so that a server
    with an API token never takes offers from anyone (open only in dev mode, both unset)."""
    return settings.webrtc_token or settings.api_token


def offer_allowed(settings: Settings, presented: str | None) -> bool:
    """A constant-time token match; with no token configured, open in dev mode only."""
    expected = offer_token(settings)
    if not expected:
        return settings.mode == "dev"
    return secret_matches(expected, presented)


async def close_all_calls(state: State) -> None:
    """Server shutdown: hang up every softphone and wait until each call is ended
    (`server_shutdown`) and its recording closed, while the store and bus are still up."""
    for call in list(_open_calls(state)):
        await call.close("server_shutdown")
    tasks = list(_call_tasks(state))
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)


async def _read_body(request: Request, limit: int) -> bytes:
    too_big = HTTPException(413, f"offer body over {limit} bytes")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_big
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_big
    return bytes(body)


@router.post("/v1/webrtc/offer")
async def webrtc_offer(request: Request) -> dict[str, str]:
    """Answer a softphone's offer (recvonly audio) and start the call; returns its call_id."""
    state = request.app.state
    settings = state.settings
    if not offer_allowed(settings, bearer_value(request.headers.get("authorization"))):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"}
        )
    body = await _read_body(request, settings.webrtc_max_offer_bytes)
    try:
        offer = webrtc.parse_offer(body)
    except webrtc.OfferError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    calls = _open_calls(state)
    if len(calls) >= settings.webrtc_max_calls:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"{len(calls)} WebRTC calls open; the limit is {settings.webrtc_max_calls}",
            headers={"Retry-After": "5"},
        )
    call = webrtc.WebRtcCall(offer, settings.webrtc_stun_urls)
    calls.add(call)  # the slot is taken before the first await
    try:
        answer = await call.answer()
        session = await open_session(state, webrtc.CARRIER, CallStarted(
            carrier=webrtc.CARRIER,
            tracks=(offer.track,),
            metadata=offer.metadata,
            carrier_call_id=offer.carrier_call_id,
            stream_id=call.stream_id,
            sample_rate=webrtc.SAMPLE_RATE,
        ))
    except BaseException as exc:
        calls.discard(call)
        await call.close()
        if isinstance(exc, webrtc.OfferError):
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
        raise
    call.attach(session.push_audio)
    tasks = _call_tasks(state)
    task = asyncio.get_running_loop().create_task(_run_call(state, call, session))
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    log.debug("webrtc: call %s takes the %s track", session.call_id, offer.track)
    return {"sdp": answer, "type": "answer", "call_id": session.call_id}


async def _run_call(state: State, call: webrtc.WebRtcCall, session: CallSession) -> None:
    """Wait for the peer to hang up (or be lost, or the server to close it), then end the session."""
    reason = "server_shutdown"
    try:
        reason = await call.ended()
    finally:
        try:
            await call.close(reason)
        finally:
            _open_calls(state).discard(call)
            log.debug("webrtc: call %s: %d frames received", session.call_id, call.frames_received)
            await close_session(state, webrtc.CARRIER, session, CallEnded(reason), call.bad_frames)


@router.get("/v1/webrtc/softphone", include_in_schema=False)
async def softphone_page() -> Response:
    """Test softphone: microphone → this server. getUserMedia needs https or localhost."""
    return Response(_web_file("softphone.html"), media_type="text/html; charset=utf-8",
                    headers={"Content-Security-Policy": PAGE_CSP, "X-Content-Type-Options": "nosniff"})


@router.get("/v1/webrtc/softphone.js", include_in_schema=False)
async def softphone_script() -> Response:
    return Response(_web_file("softphone.js"), media_type="text/javascript; charset=utf-8",
                    headers={"Content-Security-Policy": PAGE_CSP, "X-Content-Type-Options": "nosniff"})
