"""The supervisor feed: every call's live events as JSON over a WebSocket.

Events: call.started, transcript.partial, transcript.final, alert, alert.action, alert.acknowledged,
call.ended; each carries `call_id`. On connect the client first gets `hello` with the
calls already in progress, so a supervisor who joins mid-call is not blind. A user scoped to
a tenant or team gets only the events of that scope's calls (docs/security.md).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from ..store.repository import CallFilter, Scope
from .access import authenticate_websocket

router = APIRouter(tags=["supervisor"])


class ScopeFilter:
    """Which calls' events a scoped reader may receive: decided once per call from the store
    (the call row exists before its first event is published) and remembered."""

    def __init__(self, state: Any, scope: Scope) -> None:
        self._state, self._scope = state, scope
        self._visible: dict[str, bool] = {}

    async def allows(self, call_id: str | None) -> bool:
        if self._scope.unrestricted:
            return True
        if call_id is None:  # server-wide events (a webhook that gave up) name no call
            return False
        if call_id not in self._visible:
            found = await asyncio.to_thread(self._state.services.store.call_scope, call_id)
            if found is None:
                return False  # not stored yet: ask again on its next event
            self._visible[call_id] = self._scope.allows(*found)
        return self._visible[call_id]


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
    """`?call_id=` narrows the feed to one call. Authenticates with a Bearer header, an
    `{"type": "auth", "token": ...}` first message (what the console sends), or `?token=`."""
    await websocket.accept()
    principal = await authenticate_websocket(websocket, "live")
    if principal is None:
        return
    state = websocket.app.state
    visible = ScopeFilter(state, principal.scope)
    with state.services.bus.subscribe() as subscription:
        active = [c for c in await calls_in_progress(state, call_id) if await visible.allows(c["call_id"])]
        await websocket.send_json({"type": "hello", "active_calls": active, "you": principal.describe(),
                                   "storage": state.services.recordings.health.snapshot()})

        async def forward() -> None:
            async for event in subscription:
                if event.get("type") == "storage":  # server-wide: every reader's calls may be affected
                    await websocket.send_json(event)
                elif (call_id is None or event.get("call_id") == call_id) and await visible.allows(event.get("call_id")):
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
