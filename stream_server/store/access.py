"""Users, their API tokens and the audit log, in the call database.

A token is 32 random bytes (`sst_` + URL-safe base64) and is shown once, when it is created;
the database keeps only its SHA-256, so a copy of the database opens no door. A random
256-bit secret needs no slow password hash: there is nothing to guess from its digest.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from .repository import CallStore, as_utc, iso
from .schema import ApiTokenRow, AuditRow, UserRow

ROLES = ("supervisor", "qa", "admin")
TOKEN_PREFIX = "sst_"
# last_used_at is written at most this often per token: not one UPDATE per API request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class AccessError(ValueError):
    """A user or token operation that cannot be done (unknown name, duplicate, bad role)."""


@dataclass(frozen=True)
class TokenOwner:
    """Who a presented token belongs to."""

    user: str
    role: str
    tenant: str | None
    team: str | None
    token_id: int


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def _user_dict(row: UserRow) -> dict[str, Any]:
    return {"name": row.name, "role": row.role, "tenant": row.tenant, "team": row.team,
            "created_at": iso(row.created_at), "disabled_at": iso(row.disabled_at)}


def _token_dict(row: ApiTokenRow) -> dict[str, Any]:
    return {"id": row.id, "user": row.user.name, "label": row.label, "prefix": row.prefix,
            "created_at": iso(row.created_at), "expires_at": iso(row.expires_at),
            "last_used_at": iso(row.last_used_at), "revoked_at": iso(row.revoked_at)}


def audit_dict(row: AuditRow) -> dict[str, Any]:
    return {"id": row.id, "at": iso(row.at), "actor": row.actor, "role": row.role, "action": row.action,
            "call_id": row.call_id, "detail": row.detail or {}, "client": row.client}


class AccessStore:
    """Users, tokens and audit entries; synchronous like CallStore, whose engine it shares."""

    def __init__(self, calls: CallStore) -> None:
        self._calls = calls

    # -- users ---------------------------------------------------------------------

    def add_user(self, name: str, role: str, tenant: str | None = None, team: str | None = None) -> dict[str, Any]:
        name = name.strip()
        if not name or len(name) > 128:
            raise AccessError("a user name is 1 to 128 characters")
        if role not in ROLES:
            raise AccessError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
        if team and not tenant:
            raise AccessError("a team scope needs its tenant (--tenant)")
        with self._calls.session() as session, session.begin():
            if session.scalar(select(UserRow.id).where(UserRow.name == name)) is not None:
                raise AccessError(f"user {name!r} exists")
            row = UserRow(name=name, role=role, tenant=tenant or None, team=team or None, created_at=datetime.now(UTC))
            session.add(row)
            session.flush()
            return _user_dict(row)

    def list_users(self) -> list[dict[str, Any]]:
        with self._calls.session() as session:
            return [_user_dict(row) for row in session.scalars(select(UserRow).order_by(UserRow.name))]

    def disable_user(self, name: str) -> dict[str, Any]:
        """A disabled user's tokens stop working at once; the user stays for the audit trail."""
        with self._calls.session() as session, session.begin():
            row = session.scalars(select(UserRow).where(UserRow.name == name)).first()
            if row is None:
                raise AccessError(f"no user {name!r}")
            row.disabled_at = row.disabled_at or datetime.now(UTC)
            return _user_dict(row)

    def has_users(self) -> bool:
        """Any enabled user: from then on the API is closed to anyone without a token."""
        with self._calls.session() as session:
            return session.scalar(select(UserRow.id).where(UserRow.disabled_at.is_(None)).limit(1)) is not None

    # -- tokens --------------------------------------------------------------------

    def create_token(self, user: str, label: str = "", expires_days: float | None = None) -> tuple[str, dict]:
        """A new token for `user`: (the token, shown only now; its stored description)."""
        token = new_token()
        now = datetime.now(UTC)
        with self._calls.session() as session, session.begin():
            owner = session.scalars(select(UserRow).where(UserRow.name == user)).first()
            if owner is None:
                raise AccessError(f"no user {user!r}")
            if owner.disabled_at is not None:
                raise AccessError(f"user {user!r} is disabled")
            row = ApiTokenRow(
                user=owner, label=label[:128], token_hash=token_digest(token), prefix=token[:12], created_at=now,
                expires_at=now + timedelta(days=expires_days) if expires_days else None,
            )
            session.add(row)
            session.flush()
            return token, _token_dict(row)

    def list_tokens(self, user: str | None = None) -> list[dict[str, Any]]:
        query = select(ApiTokenRow).join(UserRow).order_by(ApiTokenRow.id)
        if user:
            query = query.where(UserRow.name == user)
        with self._calls.session() as session:
            return [_token_dict(row) for row in session.scalars(query)]

    def revoke_token(self, token_id: int) -> dict[str, Any]:
        with self._calls.session() as session, session.begin():
            row = session.get(ApiTokenRow, token_id)
            if row is None:
                raise AccessError(f"no token {token_id}")
            row.revoked_at = row.revoked_at or datetime.now(UTC)
            return _token_dict(row)

    def authenticate(self, token: str) -> TokenOwner | None:
        """The owner of a live token (not revoked, not expired, user enabled), else None."""
        now = datetime.now(UTC)
        with self._calls.session() as session:
            found = session.execute(
                select(ApiTokenRow, UserRow).join(UserRow).where(ApiTokenRow.token_hash == token_digest(token))
            ).first()
            if found is None:
                return None
            row, user = found
            expires = as_utc(row.expires_at)
            if row.revoked_at is not None or user.disabled_at is not None or (expires and expires <= now):
                return None
            owner = TokenOwner(user.name, user.role, user.tenant, user.team, row.id)
            last = as_utc(row.last_used_at)
            if last is None or now - last >= LAST_USED_RESOLUTION:
                session.execute(update(ApiTokenRow).where(ApiTokenRow.id == row.id).values(last_used_at=now))
                session.commit()
        return owner

    # -- audit log -----------------------------------------------------------------

    def record(self, actor: str, role: str, action: str, call_id: str | None = None,
               detail: dict[str, Any] | None = None, client: str | None = None) -> None:
        with self._calls.session() as session, session.begin():
            session.add(AuditRow(at=datetime.now(UTC), actor=actor[:128], role=role[:16], action=action[:32],
                                 call_id=call_id, detail=detail or {}, client=(client or "")[:64] or None))

    def audit_entries(self, actor: str | None = None, action: str | None = None, call_id: str | None = None,
                      since: datetime | None = None, limit: int = 100, offset: int = 0) -> tuple[list[dict], int]:
        """Newest first, with the total count of matching entries."""
        conditions = [column == value for column, value in
                      ((AuditRow.actor, actor), (AuditRow.action, action), (AuditRow.call_id, call_id)) if value]
        if since:
            conditions.append(AuditRow.at >= as_utc(since))
        query = select(AuditRow).where(*conditions).order_by(AuditRow.id.desc()).limit(limit).offset(offset)
        with self._calls.session() as session:
            total = session.scalar(select(func.count()).select_from(AuditRow).where(*conditions))
            return [audit_dict(row) for row in session.scalars(query)], int(total or 0)
