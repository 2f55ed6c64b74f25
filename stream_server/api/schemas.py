"""Response bodies of the REST API (they also document /openapi.json)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


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


class CallDetailOut(CallOut):
    segments: list[SegmentOut]
    alerts: list[AlertOut]


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
