"""Who is calling the API, what their role lets them do, and which calls they may see.

Three roles (docs/security.md has the full table):

- `supervisor`: the live board and feed, alerts and actions on them, their scope's calls,
  recordings and evidence exports;
- `qa`: calls, transcripts and recordings, and redacted training exports only;
- `admin`: everything, plus users, the audit log, retention and legal holds.

A user may be scoped to one tenant and one team in it (metadata `tenant` / `team` of each call,
set in the carrier's stream configuration); a scoped user's searches, reports, feed and call
pages never include another tenant's calls, and a call outside the scope answers 404, as if it
did not exist. `STREAM_SERVER_API_TOKEN` is a bootstrap admin with no scope. With no token and
no user configured, dev mode lets everyone in as an anonymous admin; production mode never does.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request, WebSocket, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from ..media.credentials import bearer_value, secret_matches
from ..store.access import AccessStore
from ..store.repository import Scope

_bearer = HTTPBearer(auto_error=False, description="A user's API token (stream-server tokens create) or STREAM_SERVER_API_TOKEN")

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "supervisor": frozenset({"live", "alerts.act", "calls.read", "recordings.play", "exports.evidence",
                             "reports.read"}),
    "qa": frozenset({"calls.read", "recordings.play", "exports.training", "reports.read"}),
}
ROLE_PERMISSIONS["admin"] = frozenset({*ROLE_PERMISSIONS["supervisor"], *ROLE_PERMISSIONS["qa"], "admin"})

# A browser cannot set headers on a WebSocket; the console sends {"type": "auth", "token": ...}
# as its first message instead of putting the token in the URL. This long to send it.
WEBSOCKET_AUTH_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Principal:
    """The caller of one request: a user (by token), the bootstrap token, or dev mode's anonymous."""

    name: str
    role: str
    tenant: str | None = None
    team: str | None = None
    # user: a user's own token (name is verified); api-token / anonymous: name not verified.
    kind: str = "user"

    @property
    def scope(self) -> Scope:
        return Scope(self.tenant, self.team)

    def can(self, permission: str) -> bool:
        return permission in ROLE_PERMISSIONS.get(self.role, frozenset())

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "tenant": self.tenant, "team": self.team, "kind": self.kind,
                "permissions": sorted(ROLE_PERMISSIONS.get(self.role, ()))}


BOOTSTRAP = Principal("api-token", "admin", kind="api-token")
ANONYMOUS = Principal("anonymous", "admin", kind="anonymous")


def access_store(state: Any) -> AccessStore:
    store = getattr(state, "access", None)
    if store is None:
        store = state.access = AccessStore(state.services.store)
    return store


def api_is_open(state: Any) -> bool:
    """Dev mode with neither the bootstrap token nor any user: everyone is an anonymous admin."""
    settings = state.settings
    return settings.mode == "dev" and not settings.api_token and not access_store(state).has_users()


def identify(state: Any, presented: str | None) -> Principal | None:
    """The principal a presented token stands for (None: refuse). Blocking: the store is synchronous."""
    settings = state.settings
    if presented:
        if settings.api_token and secret_matches(settings.api_token, presented):
            return BOOTSTRAP
        owner = access_store(state).authenticate(presented)
        if owner is not None:
            return Principal(owner.user, owner.role, owner.tenant, owner.team)
        return None
    return ANONYMOUS if api_is_open(state) else None


def _unauthorized() -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or invalid bearer token",
                         headers={"WWW-Authenticate": "Bearer"})


async def authenticated(request: Request) -> Principal:
    """FastAPI dependency: the caller, or 401."""
    credentials: HTTPAuthorizationCredentials | None = await _bearer(request)
    principal = await run_in_threadpool(identify, request.app.state, credentials.credentials if credentials else None)
    if principal is None:
        raise _unauthorized()
    return principal


def require(permission: str) -> Callable[..., Any]:
    """FastAPI dependency factory: the caller if their role has `permission`, else 401/403."""

    async def dependency(request: Request) -> Principal:
        principal = await authenticated(request)
        if not principal.can(permission):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {principal.role} may not do this ({permission})")
        return principal

    dependency.__name__ = f"require_{permission.replace('.', '_')}"
    return dependency


def call_in_scope(request: Request, principal: Principal, call_id: str) -> None:
    """404 for a call that does not exist or that the principal's scope does not include (the
    same answer, so that a scoped user cannot probe another tenant's call ids). Blocking."""
    found = request.app.state.services.store.call_scope(call_id)
    if found is None or not principal.scope.allows(*found):
        raise HTTPException(404, f"no call {call_id!r}")


def client_address(connection: Request | WebSocket) -> str | None:
    return connection.client.host if connection.client else None


def audit(request: Request, principal: Principal, action: str, call_id: str | None = None, **detail: Any) -> None:
    """Write one audit entry (who, what, when, from where). Blocking: call it from a sync route or
    a thread. An entry that cannot be written fails the request: no unaudited playback."""
    access_store(request.app.state).record(principal.name, principal.role, action, call_id, detail,
                                           client_address(request))


async def authenticate_websocket(websocket: WebSocket, permission: str) -> Principal | None:
    """After accept(): the principal from `Authorization: Bearer`, `?token=` (kept for old
    clients; it puts the token in URLs and logs), or an `{"type": "auth", "token": ...}` first
    message. None (the socket is then closed with 1008) when refused."""
    state = websocket.app.state
    presented = bearer_value(websocket.headers.get("authorization")) or websocket.query_params.get("token")
    if presented is None and not await asyncio.to_thread(api_is_open, state):
        presented = await _first_message_token(websocket)
    principal = await asyncio.to_thread(identify, state, presented)
    if principal is None or not principal.can(permission):
        reason = "missing or invalid token" if principal is None else f"role {principal.role} may not ({permission})"
        try:
            await websocket.close(1008, reason)
        except RuntimeError:
            pass
        return None
    return principal


async def _first_message_token(websocket: WebSocket) -> str | None:
    try:
        message = await asyncio.wait_for(websocket.receive(), WEBSOCKET_AUTH_TIMEOUT_S)
    except TimeoutError:
        return None
    text = message.get("text")
    if message.get("type") != "websocket.receive" or not text or len(text) > 4096:
        return None
    try:
        body = json.loads(text)
    except ValueError:
        return None
    token = body.get("token") if isinstance(body, dict) and body.get("type") == "auth" else None
    return token if isinstance(token, str) and token else None
