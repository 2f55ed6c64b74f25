"""Response bodies of the REST API (they also document /openapi.json)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


# Bounds of integers a client may send: within a 32-bit column on SQLite and PostgreSQL alike, so
# a huge number is a 422 here, never an overflow in the database driver.
MAX_ID = 2**31 - 1
MAX_OFFSET = 10**9


class AlertOut(BaseModel):
    id: str
    call_id: str
    category: str
    severity: str
    score: float
    text: str
    start: float
    end: float
    created_at: str
    metadata: dict[str, Any]
    track: str
    rule: str
    acknowledged_at: str | None = None
    acknowledged_by: str | None = None
    status: str = "open"  # open, acknowledged, escalated, false_alarm


class AlertActionOut(BaseModel):
    id: int
    alert_id: str
    call_id: str
    action: str  # acknowledge, escalate, false_alarm
    by: str
    note: str
    at: str


class SegmentOut(BaseModel):
    id: int
    track: str
    start: float
    end: float
    text: str
    language: str | None
    scores: dict[str, float]
    max_score: float
    abusive: bool
    loudness_dbfs: float | None = None
    loudness_delta_db: float | None = None


class CallOut(BaseModel):
    id: str
    carrier: str
    carrier_call_id: str
    stream_id: str
    metadata: dict[str, Any]
    caller_number: str | None
    ad_source: str | None
    campaign: str | None
    tracking_number: str | None
    tracks: list[str]
    language: str | None
    status: str
    started_at: str | None
    ended_at: str | None
    duration: float | None
    end_reason: str | None
    max_score: float
    alert_count: int
    stats: dict[str, Any]
    node: str | None = None  # the ingest node that ran the call (scale-out roles)
    agent: str | None = None  # who took the call (metadata agent / agent_id)
    evidence: dict[str, Any] | None = None  # recording hashes sealed at call end
    tenant: str | None = None  # whose call (metadata tenant): access scope
    team: str | None = None  # metadata team: access scope within the tenant
    legal_hold: dict[str, Any] | None = None  # {"by", "at", "reason"} while retention is suspended
    purged: dict[str, Any] | None = None  # {"audio": iso time, ...}: what retention or a deletion removed


class CallDetailOut(CallOut):
    segments: list[SegmentOut]
    alerts: list[AlertOut]
    actions: list[AlertActionOut] = []  # supervisor actions on this call's alerts, oldest first


class HealthOut(BaseModel):
    status: str
    role: str  # all, ingest, asr or gateway
    active_calls: int
    asr_model: str
    asr_pipeline: str
    # Absent where they mean nothing: all ASR fields on a gateway; the model's own (batches, load,
    # busy seconds) on an ingest node, whose model runs on the asr role's nodes.
    asr_queue_depth: int | None = None  # this node's utterances waiting for a transcript
    asr_queued: dict[str, int] | None = None  # the same per class: caller_final, agent_final, ...
    asr_batches: int | None = None
    asr_largest_batch: int | None = None
    asr_load: float | None = None  # fraction of the last 10 s the model was busy
    asr_busy_seconds: dict[str, float] | None = None  # model time per class since start
    asr_worker: dict[str, int] | None = None  # role asr: in_flight, claimed (from dead workers), done
    asr_backlog: dict[str, int] | None = None  # ingest: caller / agent work queued for the asr role, all nodes
    supervisors: int  # supervisor feeds connected to this node
    bus: str  # memory or redis
    bus_connected: bool  # false while this node cannot reach Redis (events are queued, bounded)
    # recordings / database: {"state": "ok"} or "failing" with since, error, held (s of audio / rows)
    storage: dict[str, dict[str, Any]]


# -- reports (GET /v1/reports/...) and the loudness curve ------------------------------------
# "Abusive call": at least one alert of an utterance-level abuse category (not prolonged or
# repeat_caller) whose status is not false_alarm. `alerts` never counts false alarms.


class AdSourceRowOut(BaseModel):
    ad_source: str | None
    campaign: str | None
    calls: int
    abusive_calls: int
    abuse_rate: float  # abusive_calls / calls
    alerts: int
    categories: dict[str, int]  # alerts per category


class AdSourceReportOut(BaseModel):
    since: str | None
    until: str | None
    rows: list[AdSourceRowOut]  # highest abuse_rate first, then abusive_calls, then calls


class CallerRowOut(BaseModel):
    caller_number: str
    calls: int
    abusive_calls: int
    alerts: int
    total_duration: float  # seconds
    last_call_at: str | None


class CallerReportOut(BaseModel):
    since: str | None
    until: str | None
    rows: list[CallerRowOut]  # most calls first (repeat callers), then the latest


class DurationBucketOut(BaseModel):
    label: str
    min_s: int  # inclusive
    max_s: int | None  # exclusive; null for the last bucket
    calls: int
    abusive_calls: int


class DurationReportOut(BaseModel):
    since: str | None
    until: str | None
    buckets: list[DurationBucketOut]
    prolonged_call_minutes: float  # the prolonged-call rule's limit (0 = off)
    prolonged_calls: int  # calls longer than that


class AgentRowOut(BaseModel):
    agent: str | None  # null: calls without an agent in their metadata
    calls: int
    abusive_calls: int
    alerts: int
    abusive_call_seconds: float  # time on abusive calls
    escalations: int  # alerts whose status is escalated


class AgentReportOut(BaseModel):
    since: str | None
    until: str | None
    rows: list[AgentRowOut]  # most abusive calls first


class LoudnessOut(BaseModel):
    step: float  # seconds per point, as used (widened for long calls)
    tracks: dict[str, list[float]]  # track -> dBFS per step from the call's start, floor -90


class PrincipalOut(BaseModel):
    name: str
    role: str  # supervisor, qa or admin
    tenant: str | None  # null: every tenant
    team: str | None  # null: every team of the tenant
    kind: str  # user (a user's own token), api-token (bootstrap token) or anonymous (dev mode)
    permissions: list[str]


class UserIn(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    role: Literal["supervisor", "qa", "admin"]
    tenant: str | None = Field(None, max_length=128)
    team: str | None = Field(None, max_length=128)


class UserOut(BaseModel):
    name: str
    role: str
    tenant: str | None
    team: str | None
    created_at: str | None
    disabled_at: str | None


class TokenIn(BaseModel):
    label: str = Field("", max_length=128)
    expires_days: float | None = Field(None, gt=0, le=3650)


class TokenOut(BaseModel):
    id: int
    user: str
    label: str
    prefix: str  # the token's first characters, to tell tokens apart
    created_at: str | None
    expires_at: str | None
    last_used_at: str | None
    revoked_at: str | None


class NewTokenOut(TokenOut):
    token: str  # shown only in this response; the server keeps its SHA-256


class AuditEntryOut(BaseModel):
    id: int
    at: str | None
    actor: str
    role: str
    action: str  # recording.play, export.evidence, export.training, export.report, user.add, ...
    call_id: str | None
    detail: dict[str, Any]
    client: str | None  # peer address


# -- retention, deletion requests and legal holds (api/retention.py) ------------------------


class LegalHoldIn(BaseModel):
    reason: str = Field(min_length=1, max_length=1000, description="Why (a case number, a complaint).")
    by: str | None = Field(None, max_length=128, description="Who asks for it; a user token's own name wins.")


class LegalHoldOut(BaseModel):
    call_id: str
    legal_hold: dict[str, Any] | None  # {"by", "at", "reason"}; null once released
    released: dict[str, Any] | None = None  # DELETE: the hold that was lifted (null: there was none)


class RetentionPolicyOut(BaseModel):
    audio_days: int  # 0 = kept forever
    transcript_days: int
    alert_days: int
    interval_s: float  # the purge job's period; 0 = no background job
    keeps_everything: bool  # every period 0: nothing is ever purged
    last_run: dict[str, Any] | None = None  # the background job's last report on this node


class PurgeReportOut(BaseModel):
    at: str  # the moment the periods were counted back from
    dry_run: bool
    calls: dict[str, int]  # calls purged per kind: audio, transcripts, alerts
    removed: dict[str, int]  # items: recordings (files), segments, alerts, alert_actions
    held: list[str]  # calls past a period kept by a legal hold
    failed: list[str]  # "<call id> <kind>: why"; tried again next run


class CallerDeletionOut(BaseModel):
    number: str  # as requested
    by: str
    dry_run: bool
    deleted: list[str]  # call ids removed, rows and recordings
    held: list[dict[str, Any]]  # {"call_id", "legal_hold"}: kept by a legal hold
    active: list[str]  # still in progress: kept; ask again once they ended
    failed: list[str]  # "<call id>: why"
    removed: dict[str, int]  # items: recordings, segments, alerts, alert_actions
