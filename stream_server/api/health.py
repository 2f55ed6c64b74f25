"""Liveness and a few numbers an operator looks at first."""

from __future__ import annotations

from fastapi import APIRouter, Request

from .schemas import HealthOut

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut, response_model_exclude_none=True)
def healthz(request: Request) -> dict:
    state = request.app.state
    health = {
        "status": "ok",
        "role": state.settings.role,
        "active_calls": len(state.active_calls),
        "asr_model": state.settings.asr_model,
        "asr_pipeline": state.settings.asr_pipeline,
        "supervisors": getattr(state.services.bus, "subscriber_count", 0),  # on this node
        "bus": state.services.bus.kind,
        "bus_connected": getattr(state.services.bus, "connected", True),
        "storage": state.services.recordings.health.snapshot(),
    }
    if state.services.recordings.health.degraded:  # still answering: calls and alerts go on
        health["status"] = "degraded"
    asr = state.services.asr
    worker = getattr(state, "asr_worker", None)
    if asr is not None:  # a gateway transcribes nothing
        health.update({"asr_queue_depth": asr.queue_depth, "asr_queued": asr.queued()})
    if isinstance(getattr(asr, "backlog", None), dict):  # ingest: the model runs on the asr role's nodes
        health["asr_backlog"] = dict(asr.backlog)
    elif asr is not None:
        health.update({
            "asr_batches": asr.stats.batches,
            "asr_largest_batch": asr.stats.largest_batch,
            "asr_load": round(asr.load, 3),
            "asr_busy_seconds": {k: round(v, 1) for k, v in asr.stats.busy_by_class.items()},
        })
    if worker is not None:
        health["asr_worker"] = {"in_flight": worker.in_flight, "claimed": worker.jobs_claimed, "done": worker.jobs_done}
    return health
