"""Alerts: list, and the supervisor's actions on one (acknowledge, escalate, mark false).

Each action is stored with who and when (store.act_on_alert) and published on the bus as
`alert.action`, so every open console updates; acknowledging also publishes the older
`alert.acknowledged` event.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool

from .auth import require_api_token
from .schemas import AlertOut

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])

AlertAction = Literal["acknowledge", "escalate", "false_alarm"]
AlertStatus = Literal["open", "acknowledged", "escalated", "false_alarm"]


@router.get("", response_model=list[AlertOut], dependencies=[Depends(require_api_token)])
def list_alerts(
    request: Request,
    call_id: str | None = None,
    acknowledged: bool | None = None,
    since: datetime | None = Query(None, description="Alerts created at or after (ISO 8601)."),
    status: AlertStatus | None = Query(None, description="Only alerts in this state."),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> list[dict]:
    return request.app.state.services.store.list_alerts(call_id, acknowledged, since, limit, offset, status)


async def _act(request: Request, alert_id: str, action: str, by: str, note: str) -> dict:
    services = request.app.state.services
    alert = await run_in_threadpool(services.store.act_on_alert, alert_id, action, by, note)
    if alert is None:
        raise HTTPException(404, f"no alert {alert_id!r}")
    event = {"call_id": alert["call_id"], "alert_id": alert_id}
    await services.bus.publish({"type": "alert.action", **event, "action": action, "status": alert["status"],
                                "by": by, "note": note})
    if action == "acknowledge":
        await services.bus.publish({"type": "alert.acknowledged", **event, "by": alert["acknowledged_by"]})
    return alert


@router.post("/{alert_id}/ack", response_model=AlertOut)
async def acknowledge_alert(
    request: Request,
    alert_id: str,
    by: str | None = Body(None, embed=True, max_length=128, description="Who acknowledges (supervisor name)."),
    caller: str = Depends(require_api_token),
) -> dict:
    return await _act(request, alert_id, "acknowledge", by or caller, "")


@router.post("/{alert_id}/actions", response_model=AlertOut)
async def act_on_alert(
    request: Request,
    alert_id: str,
    action: AlertAction = Body(..., embed=True, description="acknowledge, escalate or false_alarm."),
    by: str | None = Body(None, embed=True, max_length=128, description="Who acts (supervisor name)."),
    note: str = Body("", embed=True, max_length=4000, description="Why (an escalation's note)."),
    caller: str = Depends(require_api_token),
) -> dict:
    """Record what a supervisor did with an alert; the alert's `status` follows the latest action."""
    return await _act(request, alert_id, action, by or caller, note)
