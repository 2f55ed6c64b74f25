"""Bearer-token checks for the REST API and the supervisor feed.

No token configured means dev mode: everything is open (the server logs it loudly).
Browsers cannot set headers on a WebSocket, so the feed also accepts `?token=`.
"""

from __future__ import annotations

from fastapi import HTTPException, Request, WebSocket, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..media.credentials import bearer_value, secret_matches

_bearer = HTTPBearer(auto_error=False, description="STREAM_SERVER_API_TOKEN")


def token_matches(expected: str | None, presented: str | None) -> bool:
    """No token configured (dev mode) lets everyone in; otherwise a constant-time match."""
    return not expected or secret_matches(expected, presented)


async def require_api_token(request: Request) -> str:
    """FastAPI dependency: returns who is calling (for audit fields) or raises 401."""
    credentials: HTTPAuthorizationCredentials | None = await _bearer(request)
    presented = credentials.credentials if credentials else None
    if not token_matches(request.app.state.settings.api_token, presented):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"}
        )
    return "api-token" if presented else "anonymous"


def websocket_token_ok(websocket: WebSocket) -> bool:
    presented = bearer_value(websocket.headers.get("authorization")) or websocket.query_params.get("token")
    return token_matches(websocket.app.state.settings.api_token, presented)

