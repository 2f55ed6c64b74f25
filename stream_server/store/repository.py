"""Reads and writes of calls, segments and alerts. Synchronous: callers in the event
loop run these in a thread (see CallStore in app wiring), readers in FastAPI's pool."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Exists, create_engine, event, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, selectinload, sessionmaker

from ..alerts.alert import Alert
from ..media.metadata import clean_text
from .migrate import ensure_schema
from .schema import AlertActionRow, AlertRow, CallRow, SegmentRow

AD_SOURCE_KEYS = ("utm_source", "ad_source", "source")
CAMPAIGN_KEYS = ("utm_campaign", "campaign")
CALLER_KEYS = ("from", "caller", "caller_number")
AGENT_KEYS = ("agent", "agent_id", "agent_name")
TENANT_KEYS = ("tenant", "tenant_id")
TEAM_KEYS = ("team", "team_id")

# What a supervisor can do with an alert, and the alert status each leaves behind.
ALERT_ACTIONS = {"acknowledge": "acknowledged", "escalate": "escalated", "false_alarm": "false_alarm"}


def _first(metadata: dict[str, str], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        if metadata.get(key):
            return metadata[key]
    return None


def _fit(column: Any, value: str | None) -> str | None:
    """Bound a carrier-supplied string to its column: PostgreSQL refuses a longer one, and a
    refused insert would lose the whole call."""
    return None if value is None else clean_text(value, column.type.length)


def iso(value: datetime | None) -> str | None:
    """A stored time as ISO 8601 UTC (SQLite returns naive datetimes; everything stored is UTC)."""
    value = as_utc(value)
    return value.isoformat() if value else None


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")  # readers don't block the writer
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def as_utc(value: datetime | None) -> datetime | None:
    """Aware UTC. Naive input (what SQLite returns) is taken as UTC; a query bound with an offset
    is converted, since SQLite stores wall-clock UTC and would compare `+09:00` nine hours off."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+23:59 is before the first UTC instant: as a bound, the first
        return (datetime.min if value.year == 1 else datetime.max).replace(tzinfo=UTC)


# What GET /v1/calls may sort by.
CALL_SORT_COLUMNS: dict[str, Any] = {
    "started_at": CallRow.started_at,
    "duration": CallRow.duration,
    "max_score": CallRow.max_score,
    "alert_count": CallRow.alert_count,
    "caller_number": CallRow.caller_number,
}


@dataclass(frozen=True)
class Scope:
    """The calls one reader may see: one tenant (None = every tenant), one team within it."""

    tenant: str | None = None
    team: str | None = None

    @property
    def unrestricted(self) -> bool:
        return self.tenant is None and self.team is None

    def conditions(self) -> list[ColumnElement[bool]]:
        """WHERE clauses on CallRow; a scoped reader never sees a call without that tenant/team."""
        conditions = []
        if self.tenant is not None:
            conditions.append(CallRow.tenant == self.tenant)
        if self.team is not None:
            conditions.append(CallRow.team == self.team)
        return conditions

    def allows(self, tenant: str | None, team: str | None) -> bool:
        return (self.tenant is None or self.tenant == tenant) and (self.team is None or self.team == team)


@dataclass(frozen=True)
class CallFilter:
    since: datetime | None = None
    until: datetime | None = None
    phone: str | None = None
    min_score: float | None = None
    ad_source: str | None = None
    campaign: str | None = None
    status: str | None = None
    limit: int = 50
    offset: int = 0
    min_duration: float | None = None  # seconds; calls still running (no duration) never match
    max_duration: float | None = None
    category: str | None = None  # at least one alert of this category
    acknowledged: bool | None = None  # True: has alerts, none open; False: at least one open
    agent: str | None = None
    tracking_number: str | None = None
    sort: str = "started_at"  # a key of CALL_SORT_COLUMNS
    order: str = "desc"  # asc or desc
    # Whose calls the reader may see (api/access.py); never taken from a query string.
    scope: Scope = field(default_factory=lambda: Scope())


def _call_has_alert(*where: ColumnElement[bool]) -> Exists:
    """EXISTS an alert of the outer query's call (matching `where`)."""
    return select(AlertRow.id).where(AlertRow.call_id == CallRow.id, *where).exists()


def call_conditions(flt: CallFilter) -> list[ColumnElement[bool]]:
    """The WHERE clauses of a call search, shared by the page and its total count."""
    exact = [
        (CallRow.caller_number, flt.phone), (CallRow.ad_source, flt.ad_source), (CallRow.campaign, flt.campaign),
        (CallRow.status, flt.status), (CallRow.agent, flt.agent), (CallRow.tracking_number, flt.tracking_number),
    ]
    conditions = [column == value for column, value in exact if value]
    conditions += flt.scope.conditions()
    if flt.since:
        conditions.append(CallRow.started_at >= as_utc(flt.since))
    if flt.until:
        conditions.append(CallRow.started_at < as_utc(flt.until))
    if flt.min_score is not None:
        conditions.append(CallRow.max_score >= flt.min_score)
    if flt.min_duration is not None:
        conditions.append(CallRow.duration >= flt.min_duration)
    if flt.max_duration is not None:
        conditions.append(CallRow.duration <= flt.max_duration)
    if flt.category:
        conditions.append(_call_has_alert(AlertRow.category == flt.category))
    if flt.acknowledged is True:  # every alert acted on: there is one, and none is still open
        conditions += [_call_has_alert(), ~_call_has_alert(AlertRow.status == "open")]
    elif flt.acknowledged is False:
        conditions.append(_call_has_alert(AlertRow.status == "open"))
    return conditions


def call_ordering(sort: str, order: str) -> list[ColumnElement[Any]]:
    """ORDER BY for a call search. Calls without the value (no duration yet, no number) come
    last either way, on SQLite and PostgreSQL alike (their NULL defaults differ); ties fall
    back to newest first, then id, so that pages never overlap."""
    if sort not in CALL_SORT_COLUMNS or order not in ("asc", "desc"):
        raise ValueError(f"cannot sort calls by {sort!r} {order!r}")
    column = CALL_SORT_COLUMNS[sort]
    primary = (column.asc() if order == "asc" else column.desc()).nulls_last()
    ties = [CallRow.id.asc() if order == "asc" else CallRow.id.desc()]
    if sort != "started_at":
        ties.insert(0, CallRow.started_at.desc())
    return [primary, *ties]


class CallStore:
    def __init__(self, url: str, auto_migrate: bool = True, node: str | None = None) -> None:
        """`node`: the ingest node writing calls here (None: the only one, as in role all)."""
        self.node = node
        self.engine = make_engine(url)
        try:
            ensure_schema(self.engine, auto_migrate)  # Alembic migrations, not create_all
        except BaseException:
            self.engine.dispose()
            raise
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    def session(self) -> Session:
        """A new ORM session (also for the read-only queries of store.reports)."""
        return self._sessions()

    # -- writes (from the pipeline) -------------------------------------------------

    def create_call(
        self,
        call_id: str,
        carrier: str,
        tracks: list[str],
        metadata: dict[str, str],
        carrier_call_id: str = "",
        stream_id: str = "",
        language: str | None = None,
        started_at: datetime | None = None,
    ) -> None:
        row = CallRow(
            id=call_id,
            carrier=carrier,
            carrier_call_id=_fit(CallRow.carrier_call_id, carrier_call_id),
            stream_id=_fit(CallRow.stream_id, stream_id),
            caller_number=_fit(CallRow.caller_number, _first(metadata, CALLER_KEYS)),
            ad_source=_fit(CallRow.ad_source, _first(metadata, AD_SOURCE_KEYS)),
            campaign=_fit(CallRow.campaign, _first(metadata, CAMPAIGN_KEYS)),
            tracking_number=_fit(CallRow.tracking_number, metadata.get("tracking_number")),
            call_metadata=metadata,
            tracks=tracks,
            language=language,
            status="active",
            started_at=started_at or datetime.now(UTC),
            stats={},
            node=self.node,
            agent=_fit(CallRow.agent, _first(metadata, AGENT_KEYS)),
            tenant=_fit(CallRow.tenant, _first(metadata, TENANT_KEYS)),
            team=_fit(CallRow.team, _first(metadata, TEAM_KEYS)),
        )
        with self.session() as session, session.begin():
            session.add(row)

    def end_call(
        self, call_id: str, reason: str, duration: float, abnormal: bool, stats: dict[str, Any] | None = None,
        tracks: list[str] | None = None,
    ) -> None:
        """`tracks`: the tracks the call really had, when a carrier's start did not list them all
        (Telnyx opens the agent track with its first frame)."""
        values: dict[str, Any] = {"status": "interrupted" if abnormal else "ended", "end_reason": reason,
                                  "ended_at": datetime.now(UTC), "duration": duration, "stats": stats or {}}
        if tracks:
            values["tracks"] = tracks
        with self.session() as session, session.begin():
            session.execute(update(CallRow).where(CallRow.id == call_id).values(**values))

    def set_language(self, call_id: str, language: str) -> None:
        with self.session() as session, session.begin():
            session.execute(update(CallRow).where(CallRow.id == call_id).values(language=language))

    def add_segment(
        self,
        call_id: str,
        track: str,
        start: float,
        end: float,
        text: str,
        language: str | None,
        scores: dict[str, float],
        abusive: bool,
        loudness_dbfs: float | None = None,
        loudness_delta_db: float | None = None,
    ) -> int:
        max_score = max(scores.values(), default=0.0)
        with self.session() as session, session.begin():
            row = SegmentRow(
                call_id=call_id,
                track=track,
                start=start,
                end=end,
                text=text,
                language=language,
                scores=scores,
                max_score=max_score,
                abusive=abusive,
                loudness_dbfs=loudness_dbfs,
                loudness_delta_db=loudness_delta_db,
            )
            session.add(row)
            if track == "caller":
                session.execute(
                    update(CallRow)
                    .where(CallRow.id == call_id, CallRow.max_score < max_score)
                    .values(max_score=max_score)
                )
            session.flush()
            return row.id

    def add_alert(self, alert: Alert) -> None:
        with self.session() as session, session.begin():
            session.add(
                AlertRow(
                    id=alert.id,
                    call_id=alert.call_id,
                    category=str(alert.category),
                    severity=alert.severity,
                    score=alert.score,
                    text=alert.text,
                    start=alert.start,
                    end=alert.end,
                    created_at=alert.created_at,
                    alert_metadata=alert.metadata,
                    track=alert.track,
                    rule=alert.rule,
                )
            )
            session.execute(
                update(CallRow).where(CallRow.id == alert.call_id).values(alert_count=CallRow.alert_count + 1)
            )

    def mark_unfinished_calls_interrupted(self) -> list[str]:
        """At start-up: calls still `active` belong to a process that died; their ids. With
        several ingest nodes on one database, only this node's own: the others' calls are live."""
        unfinished = [CallRow.status == "active"]
        if self.node is not None:
            unfinished.append(CallRow.node == self.node)
        with self.session() as session, session.begin():
            ids = list(session.scalars(select(CallRow.id).where(*unfinished)))
            if ids:
                session.execute(
                    update(CallRow).where(CallRow.id.in_(ids), CallRow.status == "active")
                    .values(status="interrupted", end_reason="server_restart", ended_at=datetime.now(UTC))
                )
            return ids

    def set_duration(self, call_id: str, duration: float) -> None:
        """A recovered call's length, taken from its recording."""
        with self.session() as session, session.begin():
            session.execute(update(CallRow).where(CallRow.id == call_id).values(duration=duration))

    # -- reads (from the API) -------------------------------------------------------

    def count_recent_calls(self, caller_number: str, hours: float) -> int:
        since = datetime.now(UTC) - timedelta(hours=hours)
        with self.session() as session:
            query = select(func.count()).where(CallRow.caller_number == caller_number, CallRow.started_at >= since)
            return int(session.scalar(query) or 0)

    def list_calls(self, flt: CallFilter) -> list[dict[str, Any]]:
        """One page (flt.limit, flt.offset) of the calls matching flt, in flt.sort order."""
        query = (
            select(CallRow)
            .where(*call_conditions(flt))
            .order_by(*call_ordering(flt.sort, flt.order))
            .limit(flt.limit)
            .offset(flt.offset)
        )
        with self.session() as session:
            return [call_summary(row) for row in session.scalars(query)]

    def count_calls(self, flt: CallFilter) -> int:
        """How many calls match flt, whatever its limit and offset (the search's total)."""
        query = select(func.count()).select_from(CallRow).where(*call_conditions(flt))
        with self.session() as session:
            return int(session.scalar(query) or 0)

    def call_scope(self, call_id: str) -> tuple[str | None, str | None] | None:
        """(tenant, team) of a call, None for an unknown call: what an access check needs."""
        with self.session() as session:
            row = session.execute(select(CallRow.tenant, CallRow.team).where(CallRow.id == call_id)).first()
        return None if row is None else (row.tenant, row.team)

    def alert_call_id(self, alert_id: str) -> str | None:
        with self.session() as session:
            return session.scalar(select(AlertRow.call_id).where(AlertRow.id == alert_id))

    def get_call(self, call_id: str) -> dict[str, Any] | None:
        query = (
            select(CallRow)
            .where(CallRow.id == call_id)
            .options(selectinload(CallRow.segments), selectinload(CallRow.alerts))
        )
        with self.session() as session:
            row = session.scalars(query).first()
            if row is None:
                return None
            detail = call_summary(row)
            detail["segments"] = [segment_dict(s) for s in row.segments]
            detail["alerts"] = [alert_dict(a) for a in row.alerts]
            detail["actions"] = self.list_actions(call_id)
            return detail

    def list_alerts(
        self,
        call_id: str | None = None,
        acknowledged: bool | None = None,
        since: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
        status: str | None = None,
        scope: Scope | None = None,
    ) -> list[dict[str, Any]]:
        query = select(AlertRow).order_by(AlertRow.created_at.desc())
        if scope is not None and not scope.unrestricted:
            query = query.join(CallRow, AlertRow.call_id == CallRow.id).where(*scope.conditions())
        if status:
            query = query.where(AlertRow.status == status)
        if call_id:
            query = query.where(AlertRow.call_id == call_id)
        if acknowledged is not None:
            column = AlertRow.acknowledged_at
            query = query.where(column.is_not(None) if acknowledged else column.is_(None))
        if since:
            query = query.where(AlertRow.created_at >= since)
        query = query.limit(limit).offset(offset)
        with self.session() as session:
            return [alert_dict(row) for row in session.scalars(query)]

    def acknowledge_alert(self, alert_id: str, by: str) -> dict[str, Any] | None:
        return self.act_on_alert(alert_id, "acknowledge", by)

    def act_on_alert(self, alert_id: str, action: str, by: str, note: str = "") -> dict[str, Any] | None:
        """Record a supervisor's action (ALERT_ACTIONS) with who and when; the alert takes the
        status it leaves. Every action counts as having seen the alert: the first one fills
        acknowledged_at/by, which later actions never overwrite. None: no such alert."""
        if action not in ALERT_ACTIONS:
            raise ValueError(f"unknown action {action!r}; expected one of {', '.join(ALERT_ACTIONS)}")
        now = datetime.now(UTC)
        with self.session() as session, session.begin():
            row = session.get(AlertRow, alert_id)
            if row is None:
                return None
            if row.acknowledged_at is None:
                row.acknowledged_at = now
                row.acknowledged_by = clean_text(by, AlertRow.acknowledged_by.type.length)
            row.status = ALERT_ACTIONS[action]
            session.add(AlertActionRow(
                alert_id=alert_id, call_id=row.call_id, action=action,
                by=clean_text(by, AlertActionRow.by.type.length), note=clean_text(note, 4000), at=now,
            ))
            return alert_dict(row)

    def list_actions(self, call_id: str) -> list[dict[str, Any]]:
        """Every supervisor action on a call's alerts, oldest first."""
        query = select(AlertActionRow).where(AlertActionRow.call_id == call_id).order_by(AlertActionRow.id)
        with self.session() as session:
            return [action_dict(row) for row in session.scalars(query)]

    def seal_call(self, call_id: str, files: dict[str, str]) -> dict[str, Any]:
        """Record the SHA-256 of each recording file (name -> hex) as it was when the call ended."""
        evidence = {"sealed_at": datetime.now(UTC).isoformat(), "files": dict(files)}
        with self.session() as session, session.begin():
            session.execute(update(CallRow).where(CallRow.id == call_id).values(evidence=evidence))
        return evidence


def call_summary(row: CallRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "carrier": row.carrier,
        "carrier_call_id": row.carrier_call_id,
        "stream_id": row.stream_id,
        "metadata": row.call_metadata or {},
        "caller_number": row.caller_number,
        "ad_source": row.ad_source,
        "campaign": row.campaign,
        "tracking_number": row.tracking_number,
        "tracks": row.tracks or [],
        "language": row.language,
        "status": row.status,
        "started_at": iso(row.started_at),
        "ended_at": iso(row.ended_at),
        "duration": row.duration,
        "end_reason": row.end_reason,
        "max_score": row.max_score,
        "alert_count": row.alert_count,
        "stats": row.stats or {},
        "node": row.node,
        "agent": row.agent,
        "evidence": row.evidence,
        "tenant": row.tenant,
        "team": row.team,
        "legal_hold": row.legal_hold,
        "purged": row.purged,
    }


def segment_dict(row: SegmentRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "track": row.track,
        "start": row.start,
        "end": row.end,
        "text": row.text,
        "language": row.language,
        "scores": row.scores or {},
        "max_score": row.max_score,
        "abusive": row.abusive,
        "loudness_dbfs": row.loudness_dbfs,
        "loudness_delta_db": row.loudness_delta_db,
    }


def alert_dict(row: AlertRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "call_id": row.call_id,
        "category": row.category,
        "severity": row.severity,
        "score": row.score,
        "text": row.text,
        "start": row.start,
        "end": row.end,
        "created_at": iso(row.created_at),
        "metadata": row.alert_metadata or {},
        "track": row.track,
        "rule": row.rule,
        "acknowledged_at": iso(row.acknowledged_at),
        "acknowledged_by": row.acknowledged_by,
        "status": row.status or "open",
    }


def action_dict(row: AlertActionRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "alert_id": row.alert_id,
        "call_id": row.call_id,
        "action": row.action,
        "by": row.by,
        "note": row.note,
        "at": iso(row.at),
    }
