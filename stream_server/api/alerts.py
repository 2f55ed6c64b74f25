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

from .access import Principal, call_in_scope, require
from .schemas import MAX_OFFSET, AlertOut

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])

AlertAction = Literal["acknowledge", "escalate", "false_alarm"]
AlertStatus = Literal["open", "acknowledged", "escalated", "false_alarm"]


@router.get("", response_model=list[AlertOut])
def list_alerts(
    request: Request,
    call_id: str | None = None,
    acknowledged: bool | None = None,
    since: datetime | None = Query(None, description="Alerts created at or after (ISO 8601)."),
    status: AlertStatus | None = Query(None, description="Only alerts in this state."),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    principal: Principal = Depends(require("live")),
) -> list[dict]:
    store = request.app.state.services.store
    return store.list_alerts(call_id, acknowledged, since, limit, offset, status, principal.scope)


def actor_name(principal: Principal, by: str | None) -> str:
    """Who the action is recorded under: a user token's own name (verified, whatever `by` says);
    with the shared bootstrap token or in dev mode, the name the console sends (self-declared)."""
    if principal.kind == "user":
        return principal.name
    return by or principal.name


def _alert_in_scope(request: Request, principal: Principal, alert_id: str) -> None:
    call_id = request.app.state.services.store.alert_call_id(alert_id)
    if call_id is None:
        raise HTTPException(404, f"no alert {alert_id!r}")
    try:
        call_in_scope(request, principal, call_id)
    except HTTPException:
        raise HTTPException(404, f"no alert {alert_id!r}") from None


async def _act(request: Request, principal: Principal, alert_id: str, action: str, by: str | None, note: str) -> dict:
    services = request.app.state.services
    await run_in_threadpool(_alert_in_scope, request, principal, alert_id)
    by = actor_name(principal, by)
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
    principal: Principal = Depends(require("alerts.act")),
) -> dict:
    return await _act(request, principal, alert_id, "acknowledge", by, "")


@router.post("/{alert_id}/actions", response_model=AlertOut)
async def act_on_alert(
    request: Request,
    alert_id: str,
    action: AlertAction = Body(..., embed=True, description="acknowledge, escalate or false_alarm."),
    by: str | None = Body(None, embed=True, max_length=128, description="Who acts (supervisor name)."),
    note: str = Body("", embed=True, max_length=4000, description="Why (an escalation's note)."),
    principal: Principal = Depends(require("alerts.act")),
) -> dict:
    """Record what a supervisor did with an alert; the alert's `status` follows the latest action."""
    return await _act(request, principal, alert_id, action, by, note)
