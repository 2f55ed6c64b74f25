"""Calls: search, detail with scored transcript and alerts, recordings and their loudness."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from ..alerts.alert import AbuseCategory
from ..media.levels import curve_step, level_curve
from ..store.repository import CallFilter
from .access import Principal, audit, call_in_scope, require
from .retention import refuse_purged_audio
from .schemas import MAX_OFFSET, CallDetailOut, CallOut, LoudnessOut

router = APIRouter(prefix="/v1/calls", tags=["calls"])

CallSort = Literal["started_at", "duration", "max_score", "alert_count", "caller_number"]
# A loudness curve never has more points than this: a long call gets a wider step instead.
MAX_LOUDNESS_POINTS = 4000


@router.get(
    "",
    response_model=list[CallOut],
    responses={200: {"headers": {"X-Total-Count": {"description": "Matching calls, ignoring limit and offset.",
                                                   "schema": {"type": "integer"}}}}},
)
def list_calls(
    request: Request,
    response: Response,
    since: datetime | None = Query(None, description="Calls started at or after (ISO 8601)."),
    until: datetime | None = Query(None, description="Calls started before (ISO 8601)."),
    phone: str | None = Query(None, description="Caller number, exactly as received (e.g. +81312345678)."),
    min_score: float | None = Query(None, ge=0.0, le=1.0, description="Highest caller-utterance abuse score."),
    ad_source: str | None = Query(None, description="Ad source tag (utm_source)."),
    campaign: str | None = Query(None, description="Campaign tag (utm_campaign)."),
    status: Literal["active", "ended", "interrupted"] | None = None,
    min_duration: float | None = Query(None, ge=0, description="Calls that lasted at least this (seconds)."),
    max_duration: float | None = Query(None, ge=0, description="Calls that lasted at most this (seconds)."),
    category: AbuseCategory | None = Query(None, description="Calls with at least one alert of this category."),
    acknowledged: bool | None = Query(
        None, description="true: calls with alerts, every one acted on; false: calls with an open alert."
    ),
    agent: str | None = Query(None, description="Agent who took the call (metadata agent / agent_id)."),
    tracking_number: str | None = Query(None, description="Tracking number dialled."),
    sort: CallSort = Query("started_at", description="Sort key; calls without the value come last."),
    order: Literal["asc", "desc"] = "desc",
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    principal: Principal = Depends(require("calls.read")),
) -> list[dict]:
    if min_duration is not None and max_duration is not None and min_duration > max_duration:
        raise HTTPException(422, "min_duration must not exceed max_duration")
    flt = CallFilter(
        since=since, until=until, phone=phone, min_score=min_score, ad_source=ad_source, campaign=campaign,
        status=status, limit=limit, offset=offset, min_duration=min_duration, max_duration=max_duration,
        category=category.value if category else None, acknowledged=acknowledged, agent=agent,
        tracking_number=tracking_number, sort=sort, order=order, scope=principal.scope,
    )
    store = request.app.state.services.store
    response.headers["X-Total-Count"] = str(store.count_calls(flt))  # for the console's pager
    return store.list_calls(flt)


@router.get("/{call_id}", response_model=CallDetailOut)
def get_call(request: Request, call_id: str, principal: Principal = Depends(require("calls.read"))) -> dict:
    call_in_scope(request, principal, call_id)
    call = request.app.state.services.store.get_call(call_id)
    if call is None:
        raise HTTPException(404, f"no call {call_id!r}")
    return call


@router.get(
    "/{call_id}/recording.wav",
    response_class=Response,
    responses={200: {"content": {"audio/wav": {}}, "description": "WAV: one channel per track (caller first)."}},
)
def get_recording(
    request: Request,
    call_id: str,
    track: Literal["caller", "agent"] | None = Query(None, description="One track only."),
    principal: Principal = Depends(require("recordings.play")),
) -> Response:
    """Every playback is written to the audit log (who, which call and track, when, from where)."""
    call_in_scope(request, principal, call_id)
    recordings = request.app.state.services.recordings
    available = recordings.tracks(call_id)
    wanted = [track] if track else available
    if not available:
        refuse_purged_audio(request, call_id)  # 410 when retention removed it
    if not available or any(t not in available for t in wanted):
        raise HTTPException(404, f"no recording for call {call_id!r}" + (f" track {track!r}" if track else ""))
    audit(request, principal, "recording.play", call_id, tracks=wanted)
    body = recordings.render(call_id, wanted)
    filename = f"{call_id}{'-' + track if track else ''}.wav"
    return Response(body, media_type="audio/wav", headers={"Content-Disposition": f'inline; filename="{filename}"'})


@router.get("/{call_id}/loudness", response_model=LoudnessOut)
def get_loudness(
    request: Request,
    call_id: str,
    step: float = Query(0.25, ge=0.05, le=5.0, description="Seconds per point (widened past 4000 points)."),
    principal: Principal = Depends(require("calls.read")),
) -> dict:
    """Each recorded track's level in dBFS per `step` from the call's start (floor -90), for
    drawing the call's loudness under its transcript."""
    call_in_scope(request, principal, call_id)
    recordings = request.app.state.services.recordings
    available = recordings.tracks(call_id)
    if not available:
        refuse_purged_audio(request, call_id)
        raise HTTPException(404, f"no recording for call {call_id!r}")
    signals = {track: recordings.read_track(call_id, track) for track in available}
    longest = max(len(samples) / rate for samples, rate in signals.values())
    used = curve_step(step, longest, MAX_LOUDNESS_POINTS)  # one step for all tracks: they share a time axis
    return {
        "step": used,
        "tracks": {
            track: np.round(level_curve(samples, rate, used), 2).tolist()
            for track, (samples, rate) in signals.items()
        },
    }
