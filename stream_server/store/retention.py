"""Retention and deletion: what is removed after how long, a caller's deletion request, legal holds.

Three kinds of data, each with its own period counted from the call's end (0 = kept forever):

- `audio`: the call's recordings (`<data_dir>/recordings/<call_id>/`);
- `transcripts`: its segment rows (text, scores, loudness), deleted; the call's summary
  (duration, highest score, alert count, metadata) stays;
- `alerts`: its alert rows and the supervisors' actions on them.

The call row itself stays under retention: reports keep counting the call, and its `purged`
column ({"audio": iso time, ...}) is the record of what was removed when. Only a deletion
request (`delete_caller`) removes call rows. A call still active is never touched; a call under
legal hold (`calls.legal_hold`) is skipped by both until the hold is released. The seal taken at
call end (`calls.evidence`, the recordings' SHA-256) is kept, so an evidence export made before
the purge can still be matched against what the server sealed.

Synchronous, like CallStore: the API and the purge job run these in a thread.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, func, null, or_, select, update
from sqlalchemy.orm import Session

from ..media.metadata import clean_text
from .recordings import RecordingStore
from .repository import CallStore, Scope
from .schema import AlertActionRow, AlertRow, CallRow, SegmentRow

KINDS = ("audio", "transcripts", "alerts")
MAX_REASON_CHARS = 1000
# Written between the digits of a phone number: "+81 90-1234-5678", "(03) 1234.5678".
_SEPARATORS = re.compile(r"[\s\-.()]")
_STRIPPED = (" ", "-", ".", "(", ")", "+")  # the same, for the SQL side (no regexes in SQLite)


class UnknownCall(LookupError):
    """No call with this id."""


@dataclass(frozen=True)
class RetentionPolicy:
    """Days each kind of data is kept after its call ended; 0 = kept forever."""

    audio_days: int = 0
    transcript_days: int = 0
    alert_days: int = 0

    @classmethod
    def from_settings(cls, settings: Any) -> RetentionPolicy:
        return cls(settings.retention_audio_days, settings.retention_transcript_days, settings.retention_alert_days)

    def days(self) -> dict[str, int]:
        return {"audio": self.audio_days, "transcripts": self.transcript_days, "alerts": self.alert_days}

    @property
    def keeps_everything(self) -> bool:
        return not any(self.days().values())


def _empty_counts() -> dict[str, int]:
    return {"recordings": 0, "segments": 0, "alerts": 0, "alert_actions": 0}


@dataclass
class PurgeReport:
    """What one purge removed (or, dry run, would remove)."""

    at: str
    dry_run: bool
    calls: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))  # calls purged, per kind
    removed: dict[str, int] = field(default_factory=_empty_counts)  # items: files, rows
    held: list[str] = field(default_factory=list)  # calls past a period, kept by a legal hold
    failed: list[str] = field(default_factory=list)  # "<call id> <kind>: why"; tried again next run

    @property
    def items(self) -> int:
        return sum(self.removed.values())

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def audit_detail(self) -> dict[str, Any]:
        """As the audit log keeps it: counts, not every call id (calls.purged has those)."""
        return {"dry_run": self.dry_run, "calls": self.calls, "removed": self.removed, "held": len(self.held),
                "failed": self.failed[:20]}

    def summary(self) -> str:
        done = "would remove" if self.dry_run else "removed"
        return (f"retention {done} audio of {self.calls['audio']} calls ({self.removed['recordings']} files), "
                f"transcripts of {self.calls['transcripts']} ({self.removed['segments']} segments), alerts of "
                f"{self.calls['alerts']} ({self.removed['alerts']} alerts, {self.removed['alert_actions']} actions); "
                f"{len(self.held)} calls on legal hold kept, {len(self.failed)} failed")


@dataclass
class DeletionReport:
    """What a caller's deletion request removed (or, dry run, would remove), and what it could not."""

    number: str
    by: str
    dry_run: bool
    deleted: list[str] = field(default_factory=list)  # call ids removed, rows and files
    held: list[dict[str, Any]] = field(default_factory=list)  # {"call_id", "legal_hold"}: kept
    active: list[str] = field(default_factory=list)  # still in progress: kept; ask again once ended
    failed: list[str] = field(default_factory=list)  # "<call id>: why"
    removed: dict[str, int] = field(default_factory=_empty_counts)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def audit_detail(self) -> dict[str, Any]:
        """As the audit log keeps it: the number itself would outlive its deletion there, so only
        its last digits."""
        return {"number": masked_number(self.number), "dry_run": self.dry_run, "deleted": self.deleted,
                "held": [h["call_id"] for h in self.held], "active": self.active, "failed": self.failed,
                "removed": self.removed}


# -- phone numbers ---------------------------------------------------------------------------


def number_key(number: str) -> str:
    """A phone number without separators or its leading '+': "+81 90-1234-5678" -> "819012345678".
    National and international forms of one number ("090..." vs "+8190...") stay different:
    telling them apart needs the caller's country, which the call does not carry."""
    return _SEPARATORS.sub("", number).lstrip("+")


def _stored_number_key() -> ColumnElement[str]:
    expression: Any = CallRow.caller_number
    for character in _STRIPPED:
        expression = func.replace(expression, character, "")
    return expression


def caller_matches(number: str) -> ColumnElement[bool]:
    """The calls of `number`: its stored form exactly, or, for a phone number, the same digits
    written with or without '+', spaces, hyphens, dots or parentheses."""
    key = number_key(number)
    exact = CallRow.caller_number == number
    return or_(exact, _stored_number_key() == key) if key.isdigit() else exact


def masked_number(number: str) -> str:
    """For the audit log of a deletion request: enough to tell requests apart, not the number."""
    return "*" * max(0, len(number) - 4) + number[-4:] if len(number) > 4 else "*" * len(number)


# -- legal hold ------------------------------------------------------------------------------


def set_legal_hold(store: CallStore, call_id: str, by: str, reason: str) -> dict[str, Any]:
    """Put the call on legal hold: neither retention nor a deletion request touches it until it
    is released. A hold set again replaces the previous one. Returns the hold; UnknownCall."""
    reason = clean_text(reason, MAX_REASON_CHARS).strip()
    if not reason:
        raise ValueError("a legal hold needs a reason")
    hold = {"by": clean_text(by, 128), "at": datetime.now(UTC).isoformat(), "reason": reason}
    with store.session() as session, session.begin():
        row = session.get(CallRow, call_id, with_for_update=True)
        if row is None:
            raise UnknownCall(call_id)
        row.legal_hold = hold
    return hold


def release_legal_hold(store: CallStore, call_id: str, by: str) -> dict[str, Any]:
    """Lift the call's legal hold; retention applies again from the next purge. Returns
    {"released": the hold lifted (None: there was none), "by", "at"}; UnknownCall."""
    with store.session() as session, session.begin():
        previous = session.execute(
            select(CallRow.id, CallRow.legal_hold).where(CallRow.id == call_id).with_for_update()
        ).first()
        if previous is None:
            raise UnknownCall(call_id)
        # null(): a plain None would be stored as JSON 'null' rather than SQL NULL.
        session.execute(update(CallRow).where(CallRow.id == call_id).values(legal_hold=null()))
    return {"released": previous.legal_hold or None, "by": clean_text(by, 128), "at": datetime.now(UTC).isoformat()}


def purged_kinds(store: CallStore, call_id: str) -> dict[str, str] | None:
    """What retention removed from the call ({"audio": iso time, ...}); None for an unknown call."""
    with store.session() as session:
        found = session.execute(select(CallRow.id, CallRow.purged).where(CallRow.id == call_id)).first()
    return None if found is None else dict(found.purged or {})


# -- retention -------------------------------------------------------------------------------


def _count(session: Session, column: Any, call_id: str) -> int:
    return int(session.scalar(select(func.count()).where(column == call_id)) or 0)


def _remove(session: Session, recordings: RecordingStore, kind: str, call_id: str, dry_run: bool) -> dict[str, int]:
    """Remove one kind of the call's data (or count it, dry run); the items per counter."""
    if kind == "audio":
        if dry_run:
            return {"recordings": len(recordings.tracks(call_id))}
        return {"recordings": len(recordings.delete(call_id))}
    if kind == "transcripts":
        if dry_run:
            return {"segments": _count(session, SegmentRow.call_id, call_id)}
        return {"segments": session.execute(delete(SegmentRow).where(SegmentRow.call_id == call_id)).rowcount}
    if dry_run:
        return {"alerts": _count(session, AlertRow.call_id, call_id),
                "alert_actions": _count(session, AlertActionRow.call_id, call_id)}
    actions = session.execute(delete(AlertActionRow).where(AlertActionRow.call_id == call_id)).rowcount
    alerts = session.execute(delete(AlertRow).where(AlertRow.call_id == call_id)).rowcount
    return {"alerts": alerts, "alert_actions": actions}


def _expired(kind: str, cutoff: datetime) -> list[ColumnElement[bool]]:
    """Ended calls whose end lies before `cutoff` and whose `kind` is not purged yet."""
    ended = func.coalesce(CallRow.ended_at, CallRow.started_at)
    return [CallRow.status != "active", ended < cutoff, CallRow.purged[kind].as_string().is_(None)]


def _purge_call(store: CallStore, recordings: RecordingStore, kind: str, call_id: str, when: str,
                dry_run: bool) -> dict[str, int] | None:
    """One kind of one call in one transaction; None when the call was held or became active
    meanwhile, {} when it was deleted or another node purged it first. The mark is written before the files go,
    so on SQLite the write lock (on PostgreSQL the row lock) keeps a legal hold from slipping
    in between check and removal."""
    with store.session() as session, session.begin():
        row = session.get(CallRow, call_id, with_for_update=True)
        if row is None or kind in (row.purged or {}):
            return {}
        if row.legal_hold or row.status == "active":
            return None
        if not dry_run:
            row.purged = {**(row.purged or {}), kind: when}
            session.flush()
        return _remove(session, recordings, kind, call_id, dry_run)


def purge_expired(
    store: CallStore, recordings: RecordingStore, policy: RetentionPolicy, now: datetime | None = None,
    dry_run: bool = False, should_stop: Callable[[], bool] | None = None,
) -> PurgeReport:
    """Remove every kind of data past its period (module docstring). Idempotent: a kind once
    purged is marked in `calls.purged` and not looked at again; a failure leaves it unmarked,
    for the next run. `should_stop`: asked between calls (server shutdown); the next run goes on."""
    now = now or datetime.now(UTC)
    report = PurgeReport(at=now.isoformat(), dry_run=dry_run)
    held: set[str] = set()
    for kind, days in policy.days().items():
        if days <= 0:
            continue
        query = select(CallRow.id, CallRow.legal_hold).where(*_expired(kind, now - timedelta(days=days)))
        with store.session() as session:
            candidates = session.execute(query.order_by(CallRow.started_at, CallRow.id)).all()
        for call_id, hold in candidates:
            if should_stop is not None and should_stop():
                break
            if hold:
                held.add(call_id)
                continue
            try:
                removed = _purge_call(store, recordings, kind, call_id, now.isoformat(), dry_run)
            except (OSError, ValueError) as exc:  # a file that cannot be removed; a stored id not ours
                report.failed.append(f"{call_id} {kind}: {exc}")
                continue
            if removed is None:
                held.add(call_id)
                continue
            if not removed:
                continue
            report.calls[kind] += 1
            for counter, items in removed.items():
                report.removed[counter] += items
    report.held = sorted(held)
    return report


# -- deletion requests -----------------------------------------------------------------------


def _delete_call(session: Session, recordings: RecordingStore, call_id: str) -> dict[str, int]:
    removed = _remove(session, recordings, "alerts", call_id, dry_run=False)
    removed.update(_remove(session, recordings, "transcripts", call_id, dry_run=False))
    session.execute(delete(CallRow).where(CallRow.id == call_id))
    session.flush()  # rows first: files that cannot be removed roll the rows back, never the reverse
    removed["recordings"] = len(recordings.delete(call_id))
    return removed


def delete_caller(
    store: CallStore, recordings: RecordingStore, number: str, by: str, dry_run: bool = False,
    scope: Scope | None = None,
) -> DeletionReport:
    """Remove every call of caller `number` (caller_matches), rows and recordings, except calls
    on legal hold and calls still in progress, which are reported back. `scope`: only the calls
    a scoped admin may see. Each call goes in its own transaction; one that fails is reported."""
    number = number.strip()
    if not number or len(number) > CallRow.caller_number.type.length:
        raise ValueError("a caller number is 1 to 64 characters")
    report = DeletionReport(number=number, by=by, dry_run=dry_run)
    conditions = [caller_matches(number), *(scope or Scope()).conditions()]
    with store.session() as session:
        calls = session.execute(
            select(CallRow.id, CallRow.status, CallRow.legal_hold).where(*conditions).order_by(CallRow.started_at)
        ).all()
    for call_id, status, hold in calls:
        if hold:
            report.held.append({"call_id": call_id, "legal_hold": hold})
            continue
        if status == "active":
            report.active.append(call_id)
            continue
        try:
            with store.session() as session, session.begin():
                row = session.get(CallRow, call_id, with_for_update=True)
                if row is None:
                    continue  # deleted meanwhile
                if row.legal_hold:
                    report.held.append({"call_id": call_id, "legal_hold": row.legal_hold})
                    continue
                if dry_run:
                    removed = {counter: items for kind in KINDS
                               for counter, items in _remove(session, recordings, kind, call_id, True).items()}
                else:
                    removed = _delete_call(session, recordings, call_id)
        except (OSError, ValueError) as exc:
            report.failed.append(f"{call_id}: {exc}")
            continue
        report.deleted.append(call_id)
        for counter, items in removed.items():
            report.removed[counter] += items
    return report


def policy_dict(policy: RetentionPolicy, interval_s: float) -> dict[str, Any]:
    """The policy as GET /v1/retention shows it."""
    return {"audio_days": policy.audio_days, "transcript_days": policy.transcript_days,
            "alert_days": policy.alert_days, "interval_s": interval_s, "keeps_everything": policy.keeps_everything}

