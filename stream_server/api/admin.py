"""Who am I, users and their tokens, and the audit log.

`GET /v1/me` is for anyone signed in (the console hides what a role may not do). The rest is
admin-only; each change to users or tokens is itself written to the audit log.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response

from ..store.access import AccessError
from .access import Principal, access_store, audit, authenticated, require
from .schemas import MAX_ID, MAX_OFFSET, AuditEntryOut, NewTokenOut, PrincipalOut, TokenIn, TokenOut, UserIn, UserOut

router = APIRouter(prefix="/v1", tags=["access"])
Admin = Depends(require("admin"))


def _refused(exc: AccessError) -> HTTPException:
    return HTTPException(404 if str(exc).startswith("no ") else 409, str(exc))


@router.get("/me", response_model=PrincipalOut)
async def me(principal: Principal = Depends(authenticated)) -> dict:
    """The caller's name, role, scope and permissions."""
    return principal.describe()


@router.get("/users", response_model=list[UserOut])
def list_users(request: Request, principal: Principal = Admin) -> list[dict]:
    return access_store(request.app.state).list_users()


@router.post("/users", response_model=UserOut, status_code=201)
def add_user(request: Request, user: UserIn, principal: Principal = Admin) -> dict:
    try:
        created = access_store(request.app.state).add_user(user.name, user.role, user.tenant, user.team)
    except AccessError as exc:
        raise HTTPException(409 if "exists" in str(exc) else 422, str(exc)) from None
    audit(request, principal, "user.add", user=created["name"], role=created["role"], tenant=created["tenant"],
          team=created["team"])
    return created


@router.delete("/users/{name}", response_model=UserOut)
def disable_user(request: Request, name: str, principal: Principal = Admin) -> dict:
    """Disables the user (their tokens stop working); the user stays for the audit trail."""
    try:
        user = access_store(request.app.state).disable_user(name)
    except AccessError as exc:
        raise _refused(exc) from None
    audit(request, principal, "user.disable", user=name)
    return user


@router.post("/users/{name}/tokens", response_model=NewTokenOut, status_code=201)
def create_token(request: Request, name: str, body: TokenIn, principal: Principal = Admin) -> dict:
    try:
        token, row = access_store(request.app.state).create_token(name, body.label, body.expires_days)
    except AccessError as exc:
        raise _refused(exc) from None
    audit(request, principal, "token.create", user=name, token_id=row["id"], prefix=row["prefix"])
    return {**row, "token": token}


@router.get("/tokens", response_model=list[TokenOut])
def list_tokens(request: Request, user: str | None = None, principal: Principal = Admin) -> list[dict]:
    return access_store(request.app.state).list_tokens(user)


@router.delete("/tokens/{token_id}", response_model=TokenOut)
def revoke_token(request: Request, token_id: int = Path(..., ge=1, le=MAX_ID), principal: Principal = Admin) -> dict:
    try:
        row = access_store(request.app.state).revoke_token(token_id)
    except AccessError as exc:
        raise _refused(exc) from None
    audit(request, principal, "token.revoke", user=row["user"], token_id=token_id)
    return row


@router.get("/audit", response_model=list[AuditEntryOut])
def audit_log(
    request: Request,
    response: Response,
    actor: str | None = Query(None, description="Entries by this user."),
    action: str | None = Query(None, description="recording.play, export.evidence, export.training, ..."),
    call_id: str | None = None,
    since: datetime | None = Query(None, description="Entries at or after (ISO 8601)."),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    principal: Principal = Admin,
) -> list[dict]:
    """Who played or exported what, and when, newest first (X-Total-Count: all matching)."""
    entries, total = access_store(request.app.state).audit_entries(actor, action, call_id, since, limit, offset)
    response.headers["X-Total-Count"] = str(total)
    return entries
