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
        "asr_pipeline": state.settings.asr_pipeline,
        "asr_queue_depth": state.services.asr.queue_depth,
        "asr_queued": state.services.asr.queued(),
        "asr_batches": state.services.asr.stats.batches,
        "asr_largest_batch": state.services.asr.stats.largest_batch,
        "asr_load": round(state.services.asr.load, 3),
        "asr_busy_seconds": {k: round(v, 1) for k, v in state.services.asr.stats.busy_by_class.items()},
        "supervisors": getattr(state.services.bus, "subscriber_count", 0),  # on this node
        "bus": state.services.bus.kind,
        "bus_connected": getattr(state.services.bus, "connected", True),
    }
