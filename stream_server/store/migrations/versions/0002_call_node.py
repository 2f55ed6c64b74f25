"""Calls remember the ingest node that ran them.

With several ingest nodes on one database, a node's restart must mark only its own unfinished
calls interrupted, not the live calls of the others.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:  # batch: SQLite cannot ALTER much in place
        batch.add_column(sa.Column("node", sa.String(length=128), nullable=True))
        batch.create_index("ix_calls_node", ["node"])


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_index("ix_calls_node")
        batch.drop_column("node")
