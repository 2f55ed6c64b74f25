"""The supervisor console: the live board (/), call search (/calls), QA replay (/calls/{id})
and reports (/reports), as static pages served by this server.

The pages are plain HTML and JavaScript modules (no build step, no CDN): everything they show
comes from the REST API and the supervisor WebSocket, so there is no second back end. Each
page is sent with a Content-Security-Policy that allows only this server's own scripts, so
caller-controlled text that slipped past the pages' text-only rendering still could not run.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from .. import __version__
from ..alerts.alert import SEVERITIES, AbuseCategory
from .access import api_is_open

router = APIRouter(tags=["console"])

ASSETS = resources.files("stream_server") / "web" / "console"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _page(name: str) -> FileResponse:
    return FileResponse(str(ASSETS / name), media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


@router.get("/", include_in_schema=False)
def live_board() -> FileResponse:
    return _page("board.html")


@router.get("/calls", include_in_schema=False)
def call_search() -> FileResponse:
    return _page("calls.html")


@router.get("/calls/{call_id}", include_in_schema=False)
def call_replay(call_id: str) -> FileResponse:  # the page reads the id from its own URL
    return _page("call.html")


@router.get("/reports", include_in_schema=False)
def reports() -> FileResponse:
    return _page("reports.html")


@router.get("/v1/console/config")
def console_config(request: Request) -> dict:
    """What the pages need before they sign in: language, time zone, the call rules' limits,
    the alert vocabulary, and whether the API wants a token."""
    settings = request.app.state.settings
    return {
        "version": __version__,
        "language": settings.ui_language,
        "timezone": settings.timezone,
        "auth_required": not api_is_open(request.app.state),
        "mode": settings.mode,
        # Dev mode's open endpoints, for the console's warning banner.
        "open_doors": [door.what for door in getattr(request.app.state, "open_doors", [])],
        "prolonged_call_minutes": settings.prolonged_call_minutes,
        "repeat_calls": settings.repeat_calls,
        "categories": [c.value for c in AbuseCategory],
        "severities": list(SEVERITIES),
    }


def mount_assets(app) -> None:
    """Scripts and styles under /console/ (the pages link them from there)."""
    app.mount("/console", StaticFiles(directory=str(ASSETS)), name="console")
