"""Calls: search, detail with scored transcript and alerts, and recordings."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from ..store.repository import CallFilter
from .auth import require_api_token
from .schemas import CallDetailOut, CallOut

router = APIRouter(prefix="/v1/calls", tags=["calls"], dependencies=[Depends(require_api_token)])


@router.get("", response_model=list[CallOut])
def list_calls(
    request: Request,
    since: datetime | None = Query(None, description="Calls started at or after (ISO 8601)."),
    until: datetime | None = Query(None, description="Calls started before (ISO 8601)."),
    phone: str | None = Query(None, description="Caller number, exactly as received (e.g. +81312345678)."),
    min_score: float | None = Query(None, ge=0.0, le=1.0, description="Highest caller-utterance abuse score."),
    ad_source: str | None = Query(None, description="Ad source tag (utm_source)."),
    campaign: str | None = Query(None, description="Campaign tag (utm_campaign)."),
    status: Literal["active", "ended", "interrupted"] | None = None,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
) -> list[dict]:
    flt = CallFilter(since, until, phone, min_score, ad_source, campaign, status, limit, offset)
    return request.app.state.services.store.list_calls(flt)


@router.get("/{call_id}", response_model=CallDetailOut)
def get_call(request: Request, call_id: str) -> dict:
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
    request: Request, call_id: str, track: Literal["caller", "agent"] | None = Query(None, description="One track only.")
) -> Response:
    recordings = request.app.state.services.recordings
    available = recordings.tracks(call_id)
    wanted = [track] if track else available
    if not available or any(t not in available for t in wanted):
        raise HTTPException(404, f"no recording for call {call_id!r}" + (f" track {track!r}" if track else ""))
    body = recordings.render(call_id, wanted)
    filename = f"{call_id}{'-' + track if track else ''}.wav"
    return Response(body, media_type="audio/wav", headers={"Content-Disposition": f'inline; filename="{filename}"'})
