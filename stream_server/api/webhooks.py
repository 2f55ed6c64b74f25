"""Alert webhooks: the configured targets and how their recent deliveries went.

Targets are shown by name, format and host only; the URL's path and query (an incoming
webhook's credential) and the signing secret never leave the server.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from .access import require

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


@router.get("", dependencies=[Depends(require("live"))])
def webhook_deliveries(request: Request, limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
    """`{"targets": [...], "deliveries": [...newest first], "failed": n, "delivered": n, "dropped": n}`;
    `failed` counts every delivery that gave up since start, `dropped` those a full queue refused."""
    return request.app.state.webhooks.report(limit)
