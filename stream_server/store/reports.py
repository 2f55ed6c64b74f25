"""Aggregate reports over calls and their alerts: ad sources, callers, call durations, agents.

Every report covers the calls that *started* in [since, until). The queries use only portable
SQLAlchemy expressions (CASE, SUM, COUNT, GROUP BY over a subquery), so SQLite and PostgreSQL
give the same numbers.

An **abusive call** is a call with at least one alert whose category is utterance-level abuse
(ABUSE_CATEGORIES: anything but the call-level rules `prolonged` and `repeat_caller`) and whose
status is not `false_alarm`. A long call, or a caller who rings often, is worth knowing about but
is not by itself abuse; an alert a supervisor marked false is not counted anywhere.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Subquery, and_, case, func, select

from ..alerts.alert import AbuseCategory
from .repository import CallFilter, CallStore, Scope, call_conditions, iso
from .schema import AlertRow, CallRow

UNSCOPED = Scope()  # an admin's (or dev mode's) view: every tenant

CALL_LEVEL_CATEGORIES = (AbuseCategory.PROLONGED_CALL.value, AbuseCategory.REPEAT_CALLER.value)
ABUSE_CATEGORIES = tuple(c.value for c in AbuseCategory if c.value not in CALL_LEVEL_CATEGORIES)
FALSE_ALARM = "false_alarm"

# Call-duration buckets: (label, min_s inclusive, max_s exclusive; None = no upper bound).
DURATION_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("<1 min", 0, 60),
    ("1-5 min", 60, 300),
    ("5-15 min", 300, 900),
    ("15-30 min", 900, 1800),
    ("30-60 min", 1800, 3600),
    ("60+ min", 3600, None),
)


def counted_alert() -> ColumnElement[bool]:
    """An alert that counts: every one a supervisor has not marked a false alarm."""
    return AlertRow.status != FALSE_ALARM


def abusive_alert() -> ColumnElement[bool]:
    """An alert that makes its call abusive (see the module docstring)."""
    return and_(counted_alert(), AlertRow.category.in_(ABUSE_CATEGORIES))


def _per_call_alerts(since: datetime | None, until: datetime | None, scope: Scope) -> Subquery:
    """One row per call in the window that has alerts: counted alerts, abusive (1/0) and
    escalated alerts. Windowed here too, so a report never aggregates the whole alert table."""
    return (
        select(
            AlertRow.call_id.label("call_id"),
            func.sum(case((counted_alert(), 1), else_=0)).label("alerts"),
            func.max(case((abusive_alert(), 1), else_=0)).label("abusive"),
            func.sum(case((AlertRow.status == "escalated", 1), else_=0)).label("escalations"),
        )
        .join(CallRow, CallRow.id == AlertRow.call_id)
        .where(*_window(since, until, scope))
        .group_by(AlertRow.call_id)
        .subquery("per_call")
    )


def _window(since: datetime | None, until: datetime | None, scope: Scope) -> list[ColumnElement[bool]]:
    """Calls started in [since, until) that the reader may see: the call search's own conditions."""
    return call_conditions(CallFilter(since=since, until=until, scope=scope))


def _int(value: Any) -> int:
    # PostgreSQL returns SUM(bigint) as Decimal, and SUM over no rows as NULL.
    return int(value or 0)


def ad_source_report(
    store: CallStore, since: datetime | None = None, until: datetime | None = None, scope: Scope = UNSCOPED
) -> list[dict]:
    """Per (ad_source, campaign): calls, abusive_calls, abuse_rate, alerts and alerts per
    category; the worst sources first (abuse_rate, then abusive_calls, then calls)."""
    per_call = _per_call_alerts(since, until, scope)
    totals = (
        select(
            CallRow.ad_source,
            CallRow.campaign,
            func.count(CallRow.id),
            func.sum(func.coalesce(per_call.c.abusive, 0)),
            func.sum(func.coalesce(per_call.c.alerts, 0)),
        )
        .outerjoin(per_call, per_call.c.call_id == CallRow.id)
        .where(*_window(since, until, scope))
        .group_by(CallRow.ad_source, CallRow.campaign)
    )
    by_category = (
        select(CallRow.ad_source, CallRow.campaign, AlertRow.category, func.count(AlertRow.id))
        .join(AlertRow, AlertRow.call_id == CallRow.id)
        .where(*_window(since, until, scope), counted_alert())
        .group_by(CallRow.ad_source, CallRow.campaign, AlertRow.category)
    )
    with store.session() as session:
        rows = {
            (source, campaign): {
                "ad_source": source,
                "campaign": campaign,
                "calls": _int(calls),
                "abusive_calls": _int(abusive),
                "abuse_rate": round(_int(abusive) / _int(calls), 4) if calls else 0.0,
                "alerts": _int(alerts),
                "categories": {},
            }
            for source, campaign, calls, abusive, alerts in session.execute(totals)
        }
        for source, campaign, category, count in session.execute(by_category):
            rows[(source, campaign)]["categories"][category] = _int(count)
    return sorted(rows.values(), key=lambda r: (
        -r["abuse_rate"], -r["abusive_calls"], -r["calls"],
        r["ad_source"] is None, r["ad_source"] or "", r["campaign"] is None, r["campaign"] or "",
    ))


def caller_report(
    store: CallStore,
    since: datetime | None = None,
    until: datetime | None = None,
    min_calls: int = 1,
    limit: int = 100,
    scope: Scope = UNSCOPED,
) -> list[dict]:
    """Per caller number (calls without one are left out): calls, abusive_calls, alerts,
    total_duration (s) and last_call_at; the most frequent callers first, then the latest."""
    per_call = _per_call_alerts(since, until, scope)
    calls = func.count(CallRow.id).label("calls")
    last_call_at = func.max(CallRow.started_at).label("last_call_at")
    query = (
        select(
            CallRow.caller_number,
            calls,
            func.sum(func.coalesce(per_call.c.abusive, 0)),
            func.sum(func.coalesce(per_call.c.alerts, 0)),
            func.sum(func.coalesce(CallRow.duration, 0.0)),
            last_call_at,
        )
        .outerjoin(per_call, per_call.c.call_id == CallRow.id)
        .where(CallRow.caller_number.is_not(None), *_window(since, until, scope))
        .group_by(CallRow.caller_number)
        .having(func.count(CallRow.id) >= min_calls)
        .order_by(calls.desc(), last_call_at.desc(), CallRow.caller_number)
        .limit(limit)
    )
    with store.session() as session:
        return [
            {
                "caller_number": number,
                "calls": _int(count),
                "abusive_calls": _int(abusive),
                "alerts": _int(alerts),
                "total_duration": float(duration or 0.0),
                "last_call_at": iso(last),
            }
            for number, count, abusive, alerts, duration, last in session.execute(query)
        ]


def duration_report(
    store: CallStore,
    prolonged_call_minutes: float,
    since: datetime | None = None,
    until: datetime | None = None,
    scope: Scope = UNSCOPED,
) -> dict[str, Any]:
    """Calls (with a duration: ended or interrupted) per DURATION_BUCKETS bucket, with how many
    were abusive; and how many ran longer than the prolonged-call rule's limit (0 while the rule
    is off)."""
    per_call = _per_call_alerts(since, until, scope)
    bucket = case(
        *[(CallRow.duration < max_s, index) for index, (_, _, max_s) in enumerate(DURATION_BUCKETS) if max_s],
        else_=len(DURATION_BUCKETS) - 1,
    )
    # Bucketed in a subquery, grouped outside: PostgreSQL would not match a GROUP BY CASE whose
    # bound parameters are numbered apart from the SELECT's.
    bucketed = (
        select(bucket.label("bucket"), func.coalesce(per_call.c.abusive, 0).label("abusive"))
        .select_from(CallRow)
        .outerjoin(per_call, per_call.c.call_id == CallRow.id)
        .where(CallRow.duration.is_not(None), *_window(since, until, scope))
        .subquery("bucketed")
    )
    counts = select(bucketed.c.bucket, func.count(), func.sum(bucketed.c.abusive)).group_by(bucketed.c.bucket)
    limit_s = prolonged_call_minutes * 60.0
    prolonged = (
        select(func.count()).select_from(CallRow).where(CallRow.duration > limit_s, *_window(since, until, scope))
    )
    with store.session() as session:
        found = {index: (_int(calls), _int(abusive)) for index, calls, abusive in session.execute(counts)}
        prolonged_calls = _int(session.scalar(prolonged)) if prolonged_call_minutes > 0 else 0
    buckets = []
    for index, (label, min_s, max_s) in enumerate(DURATION_BUCKETS):
        calls, abusive = found.get(index, (0, 0))
        buckets.append({"label": label, "min_s": min_s, "max_s": max_s, "calls": calls, "abusive_calls": abusive})
    return {
        "buckets": buckets,
        "prolonged_call_minutes": prolonged_call_minutes,
        "prolonged_calls": prolonged_calls,
    }


def agent_report(
    store: CallStore, since: datetime | None = None, until: datetime | None = None, scope: Scope = UNSCOPED
) -> list[dict]:
    """Per agent (calls without one grouped under None): calls, abusive_calls, alerts,
    abusive_call_seconds (time spent on abusive calls) and escalations (alerts whose status is
    escalated); who absorbed the most abuse first."""
    per_call = _per_call_alerts(since, until, scope)
    abusive = func.coalesce(per_call.c.abusive, 0)
    query = (
        select(
            CallRow.agent,
            func.count(CallRow.id),
            func.sum(abusive),
            func.sum(func.coalesce(per_call.c.alerts, 0)),
            func.sum(case((abusive == 1, func.coalesce(CallRow.duration, 0.0)), else_=0.0)),
            func.sum(func.coalesce(per_call.c.escalations, 0)),
        )
        .outerjoin(per_call, per_call.c.call_id == CallRow.id)
        .where(*_window(since, until, scope))
        .group_by(CallRow.agent)
    )
    with store.session() as session:
        rows = [
            {
                "agent": agent,
                "calls": _int(calls),
                "abusive_calls": _int(abusive_calls),
                "alerts": _int(alerts),
                "abusive_call_seconds": float(seconds or 0.0),
                "escalations": _int(escalations),
            }
            for agent, calls, abusive_calls, alerts, seconds, escalations in session.execute(query)
        ]
    return sorted(rows, key=lambda r: (
        -r["abusive_calls"], -r["abusive_call_seconds"], -r["alerts"], r["agent"] is None, r["agent"] or "",
    ))
