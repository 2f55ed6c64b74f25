"""Reports for the console: abuse by ad source, repeat callers, call durations, agents.

Each takes `since`/`until` (on the call's start, ISO 8601) and `format=json|csv`. The numbers
and the definition of an abusive call are in store/reports.py.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from ..alerts.alert import AbuseCategory
from ..store import reports
from ..store.repository import as_utc
from .access import Principal, audit, require
from .schemas import MAX_OFFSET, AdSourceReportOut, AgentReportOut, CallerReportOut, DurationReportOut

router = APIRouter(prefix="/v1/reports", tags=["reports"])
Reader = Annotated[Principal, Depends(require("reports.read"))]

ReportFormat = Literal["json", "csv"]
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}}, "description": "JSON, or with format=csv a CSV download (header row first)."}
}
# A spreadsheet runs a cell starting with one of these as a formula; ad tags and caller numbers
# come from the caller's side, so they are written with a leading apostrophe (OWASP).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

Since = Annotated[datetime | None, Query(description="Calls started at or after (ISO 8601).")]
Until = Annotated[datetime | None, Query(description="Calls started before (ISO 8601).")]
Format = Annotated[ReportFormat, Query(alias="format", description="json, or csv for a spreadsheet download.")]


def csv_cell(value: Any) -> Any:
    """A value as a CSV cell that a spreadsheet shows as text, never evaluates."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_response(report: str, columns: list[str], rows: Iterable[dict[str, Any]]) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_cell(row.get(column)) for column in columns])
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{report}-report.csv"'},
    )


def _window(since: datetime | None, until: datetime | None) -> dict[str, str | None]:
    """The window as echoed in a JSON report (in UTC); an empty or reversed one is a client error."""
    since, until = as_utc(since), as_utc(until)
    if since and until and since >= until:
        raise HTTPException(422, "since must be before until")
    return {"since": since.isoformat() if since else None, "until": until.isoformat() if until else None}


@router.get("/ad-sources", response_model=AdSourceReportOut, responses=CSV_RESPONSE)
def ad_sources(request: Request, reader: Reader, since: Since = None, until: Until = None, fmt: Format = "json") -> Any:
    """Calls, abusive calls, abuse rate and alerts per (ad_source, campaign), worst first."""
    window = _window(since, until)
    rows = reports.ad_source_report(request.app.state.services.store, since, until, reader.scope)
    if fmt == "csv":
        categories = [c.value for c in AbuseCategory]  # one column each, so the header never varies
        columns = ["ad_source", "campaign", "calls", "abusive_calls", "abuse_rate", "alerts", *categories]
        flat = ({**row, **{c: row["categories"].get(c, 0) for c in categories}} for row in rows)
        audit(request, reader, "export.report", report="ad-sources")
        return csv_response("ad-sources", columns, flat)
    return {**window, "rows": rows}


@router.get("/callers", response_model=CallerReportOut, responses=CSV_RESPONSE)
def callers(
    request: Request,
    reader: Reader,
    since: Since = None,
    until: Until = None,
    min_calls: int = Query(1, ge=1, le=MAX_OFFSET, description="Only numbers that called at least this often."),
    limit: int = Query(100, ge=1, le=10000),
    fmt: Format = "json",
) -> Any:
    """Calls per caller number, repeat callers first."""
    window = _window(since, until)
    rows = reports.caller_report(request.app.state.services.store, since, until, min_calls, limit, reader.scope)
    if fmt == "csv":
        columns = ["caller_number", "calls", "abusive_calls", "alerts", "total_duration", "last_call_at"]
        audit(request, reader, "export.report", report="callers")
        return csv_response("callers", columns, rows)
    return {**window, "rows": rows}


@router.get("/durations", response_model=DurationReportOut, responses=CSV_RESPONSE)
def durations(request: Request, reader: Reader, since: Since = None, until: Until = None, fmt: Format = "json") -> Any:
    """Calls per duration bucket, and how many ran past the prolonged-call limit."""
    window = _window(since, until)
    minutes = request.app.state.settings.prolonged_call_minutes
    report = reports.duration_report(request.app.state.services.store, minutes, since, until, reader.scope)
    if fmt == "csv":
        audit(request, reader, "export.report", report="durations")
        return csv_response("durations", ["label", "min_s", "max_s", "calls", "abusive_calls"], report["buckets"])
    return {**window, **report}


@router.get("/agents", response_model=AgentReportOut, responses=CSV_RESPONSE)
def agents(request: Request, reader: Reader, since: Since = None, until: Until = None, fmt: Format = "json") -> Any:
    """Abuse each agent absorbed (calls, abusive calls, time on them, escalations), most first."""
    window = _window(since, until)
    rows = reports.agent_report(request.app.state.services.store, since, until, reader.scope)
    if fmt == "csv":
        columns = ["agent", "calls", "abusive_calls", "alerts", "abusive_call_seconds", "escalations"]
        audit(request, reader, "export.report", report="agents")
        return csv_response("agents", columns, rows)
    return {**window, "rows": rows}
