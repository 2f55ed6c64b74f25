"""Liveness and a few numbers an operator looks at first."""

from __future__ import annotations

from fastapi import APIRouter, Request

from .schemas import HealthOut

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut)
def healthz(request: Request) -> dict:
    state = request.app.state
    return {
        "status": "ok",
        "active_calls": len(state.active_calls),
        "asr_model": state.settings.asr_model,
        "asr_queue_depth": state.services.asr.queue_depth,
        "supervisors": getattr(state.services.bus, "subscriber_count", 0),
    }
