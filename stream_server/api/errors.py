"""How the REST API answers what goes wrong outside a route's own checks: always JSON with a
`detail`, never a 500 for something a client sent.

- A request that fails validation: FastAPI's own 422 echoes each bad `input` back, and some
  inputs cannot be written as JSON (lone surrogates, NaN, bytes that are not UTF-8), which
  turned a 422 into a 500. Here the answer keeps each error's type, location and message only.
- A value the database cannot hold (PostgreSQL: NUL in text, an integer out of range): 422.
- The database refusing for now (down, full, locked too long): 503 with Retry-After.
- A body over `max_bytes` (HTTP only; the media WebSockets have their own limit): 413 before
  it is read whole, whoever sends it.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError, OperationalError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)


def install(app: FastAPI, max_body_bytes: int) -> None:
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(DataError, value_not_storable)
    app.add_exception_handler(OperationalError, storage_unavailable)
    if max_body_bytes:
        app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    # ensure_ascii: a lone surrogate in a field name is escaped, not an encoding error
    return Response(json.dumps(body, ensure_ascii=True), status_code=status, media_type="application/json",
                    headers=headers)


async def invalid_request(request: Request, exc: Exception) -> Response:
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    detail = [{"type": str(e.get("type", "")), "loc": [str(part) for part in e.get("loc", ())],
               "msg": str(e.get("msg", ""))} for e in errors]
    return _json(422, {"detail": detail})


async def value_not_storable(request: Request, exc: Exception) -> Response:
    log.warning("%s %s: a value the database cannot hold: %s", request.method, request.url.path,
                str(exc).splitlines()[0][:200])
    return _json(422, {"detail": "a value in the request cannot be stored or searched for (e.g. a NUL character)"})


async def storage_unavailable(request: Request, exc: Exception) -> Response:
    log.error("%s %s: database unavailable: %s", request.method, request.url.path, str(exc).splitlines()[0][:200])
    return _json(503, {"detail": "storage unavailable, try again later"}, {"Retry-After": "5"})


class BodySizeLimit:
    """413 for an HTTP request body over `max_bytes`: at once from its Content-Length, or as soon
    as a chunked body passes the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0
        started = refused = False

        async def counted() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes and not started and not refused:
                    refused = True  # answered here; the app is told the client left, its answer dropped
                    await self._refuse(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counted, watched)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse({"detail": f"request body over {self.max_bytes} bytes"}, status_code=413,
                                headers={"Connection": "close"})
        await response(scope, receive, send)
