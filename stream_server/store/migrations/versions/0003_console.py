"""Supervisor actions on alerts, the agent on each call, and recording hashes sealed at call end.

- `alerts.status` and table `alert_actions`: acknowledge / escalate / false_alarm, with who,
  when and a note, kept as evidence.
- `calls.agent`: who took the call (from the metadata), for per-agent exposure reports.
- `calls.evidence`: SHA-256 of each recording when the call ended, so that a later change to an
  exported file is detectable.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:  # batch: SQLite cannot ALTER much in place
        batch.add_column(sa.Column("agent", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("evidence", sa.JSON(), nullable=True))
        batch.create_index("ix_calls_agent", ["agent"])
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("status", sa.String(length=16), nullable=False, server_default="open"))
        batch.create_index("ix_alerts_status", ["status"])
    # Alerts acknowledged before this revision keep that state.
    op.execute("UPDATE alerts SET status = 'acknowledged' WHERE acknowledged_at IS NOT NULL")
    op.create_table(
        "alert_actions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.String(length=32), sa.ForeignKey("alerts.id"), nullable=False),
        sa.Column("call_id", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("by", sa.String(length=128), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_alert_actions_alert_id", "alert_actions", ["alert_id"])
    op.create_index("ix_alert_actions_call_id", "alert_actions", ["call_id"])


def downgrade() -> None:
    op.drop_index("ix_alert_actions_call_id", "alert_actions")
    op.drop_index("ix_alert_actions_alert_id", "alert_actions")
    op.drop_table("alert_actions")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_index("ix_alerts_status")
        batch.drop_column("status")
    with op.batch_alter_table("calls") as batch:
        batch.drop_index("ix_calls_agent")
        batch.drop_column("evidence")
        batch.drop_column("agent")
