"""`GET /metrics`: this node's Prometheus metrics (text exposition format).

Open like `/healthz` while no token is configured in dev mode (production mode never opens it). Once `api_token` or `metrics_token` is
set, a scraper must send either as `Authorization: Bearer`: `metrics_token` exists so the
monitoring system need not hold the token that also reads transcripts.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response, status

from ..media.credentials import secret_matches
from ..metrics import CONTENT_TYPE, LiveState, ServerMetrics

router = APIRouter(tags=["health"])


def watch_app(metrics: ServerMetrics, state: object) -> None:
    """Let `metrics` read the app's active calls, ASR scheduler and bus when scraped."""

    def live() -> LiveState:
        services = getattr(state, "services", None)  # absent until start-up has finished
        return LiveState(
            carriers=[session.started.carrier for session in list(state.active_calls.values())],
            asr=getattr(services, "asr", None),
            bus=getattr(services, "bus", None),
            storage=getattr(getattr(services, "recordings", None), "health", None),
        )

    metrics.watch(live)


def scrape_allowed(request: Request) -> bool:
    settings = request.app.state.settings
    tokens = [t for t in (settings.api_token, settings.metrics_token) if t]
    if not tokens:
        return settings.mode == "dev"
    header = request.headers.get("authorization") or ""
    presented = header[7:].strip() if header[:7].lower() == "bearer " else None
    return presented is not None and any(secret_matches(token, presented) for token in tokens)


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE: {}}}})
async def metrics(request: Request) -> Response:
    """Async on purpose: the collectors read the scheduler's queue on the event loop that changes it."""
    if not scrape_allowed(request):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"}
        )
    return Response(request.app.state.metrics.exposition(), media_type=CONTENT_TYPE)
