"""Access control, audit log, tenant scopes, legal hold and retention bookkeeping.

- `users`, `api_tokens` (SHA-256 of each token, never the token) and `audit_log`.
- `calls.tenant`, `calls.team`: whose call it is, for per-tenant/team access scopes.
- `calls.legal_hold`: overrides every retention period while set.
- `calls.purged`: which kinds of data retention or a deletion request removed, and when.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("tenant", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("team", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("legal_hold", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("purged", sa.JSON(), nullable=True))
        batch.create_index("ix_calls_tenant", ["tenant"])
        batch.create_index("ix_calls_team", ["team"])
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(length=128), nullable=False, unique=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("tenant", sa.String(length=128), nullable=True),
        sa.Column("team", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("label", sa.String(length=128), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("call_id", sa.String(length=32), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=True),
    )
    for column in ("at", "actor", "action", "call_id"):
        op.create_index(f"ix_audit_log_{column}", "audit_log", [column])


def downgrade() -> None:
    for column in ("at", "actor", "action", "call_id"):
        op.drop_index(f"ix_audit_log_{column}", "audit_log")
    op.drop_table("audit_log")
    op.drop_index("ix_api_tokens_user_id", "api_tokens")
    op.drop_table("api_tokens")
    op.drop_table("users")
    with op.batch_alter_table("calls") as batch:
        batch.drop_index("ix_calls_team")
        batch.drop_index("ix_calls_tenant")
        batch.drop_column("purged")
        batch.drop_column("legal_hold")
        batch.drop_column("team")
        batch.drop_column("tenant")
