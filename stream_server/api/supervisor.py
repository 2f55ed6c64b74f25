"""The supervisor feed: every call's live events as JSON over a WebSocket.

Events: call.started, transcript.partial, transcript.final, alert, alert.action, alert.acknowledged,
call.ended; each carries `call_id`. On connect the client first gets `hello` with the
calls already in progress, so a supervisor who joins mid-call is not blind.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from ..store.repository import CallFilter
from .auth import websocket_token_ok

router = APIRouter(tags=["supervisor"])

POLICY_VIOLATION = 1008


async def calls_in_progress(state: Any, call_id: str | None) -> list[dict[str, Any]]:
    """What `hello` lists: this node's live sessions; on a gateway, which runs no calls itself,
    every ingest node's active calls from the shared store."""
    if state.settings.role != "gateway":
        return [s.summary() for s in state.active_calls.values() if call_id in (None, s.call_id)]
    rows = await asyncio.to_thread(state.services.store.list_calls, CallFilter(status="active", limit=1000))
    return [
        {"call_id": row["id"], "carrier": row["carrier"], "tracks": row["tracks"], "metadata": row["metadata"],
         "language": row["language"], "started_at": row["started_at"]}
        for row in rows if call_id in (None, row["id"])
    ]


@router.websocket("/v1/supervisor/ws")
async def supervisor_feed(websocket: WebSocket, call_id: str | None = None) -> None:
    """`?call_id=` narrows the feed to one call; `?token=` or a Bearer header authenticates."""
    await websocket.accept()
    if not websocket_token_ok(websocket):
        await websocket.close(POLICY_VIOLATION, "missing or invalid token")
        return
    state = websocket.app.state
    with state.services.bus.subscribe() as subscription:
        await websocket.send_json({"type": "hello", "active_calls": await calls_in_progress(state, call_id)})

        async def forward() -> None:
            async for event in subscription:
                if call_id is None or event.get("call_id") == call_id:
                    await websocket.send_json(event)

        async def drain() -> None:  # the client may send pings; a disconnect ends the feed
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass

        tasks = [asyncio.create_task(forward()), asyncio.create_task(drain())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        except WebSocketDisconnect:
            pass
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
