"""SQLAlchemy 2 tables. SQLite by default; any SQLAlchemy URL (PostgreSQL) works."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class CallRow(Base):
    __tablename__ = "calls"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    carrier: Mapped[str] = mapped_column(String(32))
    carrier_call_id: Mapped[str] = mapped_column(String(128), default="", index=True)
    stream_id: Mapped[str] = mapped_column(String(128), default="")
    # Denormalised from metadata so calls can be filtered without JSON queries.
    caller_number: Mapped[str | None] = mapped_column(String(64), index=True)
    ad_source: Mapped[str | None] = mapped_column(String(256), index=True)
    campaign: Mapped[str | None] = mapped_column(String(256))
    tracking_number: Mapped[str | None] = mapped_column(String(64))
    call_metadata: Mapped[dict] = mapped_column("metadata", JSON, default=dict)
    tracks: Mapped[list] = mapped_column(JSON, default=list)
    language: Mapped[str | None] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default="active", index=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    duration: Mapped[float | None] = mapped_column(Float)
    end_reason: Mapped[str | None] = mapped_column(String(32))
    max_score: Mapped[float] = mapped_column(Float, default=0.0)
    alert_count: Mapped[int] = mapped_column(Integer, default=0)
    stats: Mapped[dict] = mapped_column(JSON, default=dict)
    # The ingest node that ran the call: its restart marks only its own unfinished calls.
    node: Mapped[str | None] = mapped_column(String(128), index=True)
    # Who took the call (metadata agent / agent_id): per-agent exposure reports.
    agent: Mapped[str | None] = mapped_column(String(128), index=True)
    # SHA-256 of each recording, taken when the call ended: {"sealed_at", "files": {name: hex}}.
    evidence: Mapped[dict | None] = mapped_column(JSON)
    # Whose call this is (metadata tenant / team, set in the carrier's stream config): access scopes.
    tenant: Mapped[str | None] = mapped_column(String(128), index=True)
    team: Mapped[str | None] = mapped_column(String(128), index=True)
    # A legal hold keeps everything of the call past every retention period until it is lifted.
    legal_hold: Mapped[dict | None] = mapped_column(JSON)  # {"by", "at", "reason"}
    # What retention or a deletion request removed, and when: {"audio": iso, "transcripts": iso, ...}.
    purged: Mapped[dict | None] = mapped_column(JSON)

    segments: Mapped[list[SegmentRow]] = relationship(
        back_populates="call", order_by="SegmentRow.start", cascade="all, delete-orphan"
    )
    alerts: Mapped[list[AlertRow]] = relationship(
        back_populates="call", order_by="AlertRow.start", cascade="all, delete-orphan"
    )


class SegmentRow(Base):
    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"), index=True)
    track: Mapped[str] = mapped_column(String(16))
    start: Mapped[float] = mapped_column(Float)
    end: Mapped[float] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(8))
    scores: Mapped[dict] = mapped_column(JSON, default=dict)
    max_score: Mapped[float] = mapped_column(Float, default=0.0)
    abusive: Mapped[bool] = mapped_column(Boolean, default=False)
    loudness_dbfs: Mapped[float | None] = mapped_column(Float)
    loudness_delta_db: Mapped[float | None] = mapped_column(Float)

    call: Mapped[CallRow] = relationship(back_populates="segments")


class AlertRow(Base):
    __tablename__ = "alerts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"), index=True)
    category: Mapped[str] = mapped_column(String(32), index=True)
    severity: Mapped[str] = mapped_column(String(16))
    score: Mapped[float] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text)
    start: Mapped[float] = mapped_column(Float)
    end: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    alert_metadata: Mapped[dict] = mapped_column("metadata", JSON, default=dict)
    track: Mapped[str] = mapped_column(String(16), default="caller")
    rule: Mapped[str] = mapped_column(String(32), default="text")
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_by: Mapped[str | None] = mapped_column(String(128))
    # open, acknowledged, escalated or false_alarm: the latest supervisor action decides.
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)

    call: Mapped[CallRow] = relationship(back_populates="alerts")
    actions: Mapped[list[AlertActionRow]] = relationship(
        back_populates="alert", order_by="AlertActionRow.id", cascade="all, delete-orphan"
    )


class AlertActionRow(Base):
    """What a supervisor did with an alert, with who and when: kept as evidence, never edited."""

    __tablename__ = "alert_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id"), index=True)
    call_id: Mapped[str] = mapped_column(String(32), index=True)
    action: Mapped[str] = mapped_column(String(16))  # acknowledge, escalate, false_alarm
    by: Mapped[str] = mapped_column(String(128))
    note: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    alert: Mapped[AlertRow] = relationship(back_populates="actions")


class UserRow(Base):
    """A person (or system) allowed into the API: one role, optionally scoped to a tenant/team."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # supervisor, qa, admin
    # None = every tenant (or every team of the tenant); a scoped user never sees other calls.
    tenant: Mapped[str | None] = mapped_column(String(128))
    team: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    tokens: Mapped[list[ApiTokenRow]] = relationship(back_populates="user", cascade="all, delete-orphan")


class ApiTokenRow(Base):
    """An API token: only its SHA-256 is stored; the token itself is shown once, at creation."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    label: Mapped[str] = mapped_column(String(128), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # first characters, to tell tokens apart in lists
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    user: Mapped[UserRow] = relationship(back_populates="tokens")


class AuditRow(Base):
    """Who listened to or exported what, and when; append-only, readable by admins only."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor: Mapped[str] = mapped_column(String(128), index=True)
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32), index=True)  # recording.play, export.evidence, ...
    call_id: Mapped[str | None] = mapped_column(String(32), index=True)
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    client: Mapped[str | None] = mapped_column(String(64))  # peer address
