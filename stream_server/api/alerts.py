"""Alerts: list and acknowledge."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool

from .auth import require_api_token
from .schemas import AlertOut

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])


@router.get("", response_model=list[AlertOut], dependencies=[Depends(require_api_token)])
def list_alerts(
    request: Request,
    call_id: str | None = None,
    acknowledged: bool | None = None,
    since: datetime | None = Query(None, description="Alerts created at or after (ISO 8601)."),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> list[dict]:
    return request.app.state.services.store.list_alerts(call_id, acknowledged, since, limit, offset)


@router.post("/{alert_id}/ack", response_model=AlertOut)
async def acknowledge_alert(
    request: Request,
    alert_id: str,
    by: str | None = Body(None, embed=True, max_length=128, description="Who acknowledges (supervisor name)."),
    caller: str = Depends(require_api_token),
) -> dict:
    services = request.app.state.services
    alert = await run_in_threadpool(services.store.acknowledge_alert, alert_id, by or caller)
    if alert is None:
        raise HTTPException(404, f"no alert {alert_id!r}")
    await services.bus.publish(
        {"type": "alert.acknowledged", "call_id": alert["call_id"], "alert_id": alert_id, "by": alert["acknowledged_by"]}
    )
    return alert
