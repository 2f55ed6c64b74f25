"""Retention, deletion requests and legal holds over the API, and the background purge job.

Every route needs the `admin` permission and writes an audit entry. The purge job runs in one
role per deployment (all, or the gateway in scale-out: docs/operations.md, "Retention and
deletion"), every STREAM_SERVER_RETENTION_INTERVAL_S, in a thread: the store is synchronous.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request

from ..metrics import ServerMetrics
from ..store.access import AccessStore
from ..store.retention import (
    PurgeReport,
    RetentionPolicy,
    UnknownCall,
    delete_caller,
    policy_dict,
    purge_expired,
    purged_kinds,
    release_legal_hold,
    set_legal_hold,
)
from .access import Principal, audit, call_in_scope, require
from .alerts import actor_name
from .schemas import CallerDeletionOut, LegalHoldIn, LegalHoldOut, PurgeReportOut, RetentionPolicyOut

log = logging.getLogger("stream_server.retention")

router = APIRouter(tags=["retention"])

JOB_ACTOR = "retention-job"  # who the background job's audit entries name


def refuse_purged_audio(request: Request, call_id: str) -> None:
    """410 Gone when retention removed the call's recordings: a plain 404 would say there never
    were any. For the routes that serve audio, after they found no recording."""
    purged = purged_kinds(request.app.state.services.store, call_id) or {}
    if "audio" in purged:
        raise HTTPException(410, f"the recordings of call {call_id!r} were purged by retention at {purged['audio']}; "
                                 f"what else is left is at GET /v1/calls/{call_id}")


def policy_of(request: Request) -> RetentionPolicy:
    return RetentionPolicy.from_settings(request.app.state.settings)


@router.put("/v1/calls/{call_id}/legal-hold", response_model=LegalHoldOut)
def put_legal_hold(
    request: Request, call_id: str, body: LegalHoldIn, principal: Principal = Depends(require("admin"))
) -> dict:
    """Keep everything of the call past every retention period, and out of deletion requests,
    until the hold is released. Setting it again replaces the reason (and who, and when)."""
    call_in_scope(request, principal, call_id)
    by = actor_name(principal, body.by)
    try:
        hold = set_legal_hold(request.app.state.services.store, call_id, by, body.reason)
    except UnknownCall:
        raise HTTPException(404, f"no call {call_id!r}") from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    audit(request, principal, "legal_hold.set", call_id, by=by, reason=hold["reason"])
    return {"call_id": call_id, "legal_hold": hold}


@router.delete("/v1/calls/{call_id}/legal-hold", response_model=LegalHoldOut)
def delete_legal_hold(request: Request, call_id: str, principal: Principal = Depends(require("admin"))) -> dict:
    """Release the call's legal hold: retention applies again from the next purge. A call that was
    not on hold answers 200 with `released: null`."""
    call_in_scope(request, principal, call_id)
    by = actor_name(principal, None)
    try:
        result = release_legal_hold(request.app.state.services.store, call_id, by)
    except UnknownCall:
        raise HTTPException(404, f"no call {call_id!r}") from None
    audit(request, principal, "legal_hold.release", call_id, released=result["released"])
    return {"call_id": call_id, "legal_hold": None, "released": result["released"]}


@router.delete("/v1/callers/{number}", response_model=CallerDeletionOut)
def delete_caller_data(
    request: Request,
    number: str = Path(..., min_length=1, max_length=64, description="Caller number; +, spaces, hyphens ignored."),
    dry_run: bool = Query(False, description="Only report what would be deleted."),
    principal: Principal = Depends(require("admin")),
) -> dict:
    """A caller's deletion request: every call of the number (rows and recordings) in the admin's
    scope, except calls on legal hold and calls in progress, which are listed back, not deleted."""
    services = request.app.state.services
    by = actor_name(principal, None)
    try:
        report = delete_caller(services.store, services.recordings, number, by, dry_run, principal.scope)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    if not dry_run:
        request.app.state.metrics.retention_purged({**report.removed, "calls": len(report.deleted)})
    audit(request, principal, "caller.delete", None, **report.audit_detail())
    return report.as_dict()


@router.get("/v1/retention", response_model=RetentionPolicyOut)
def get_retention(request: Request, principal: Principal = Depends(require("admin"))) -> dict:
    """The retention periods in force, and the background job's last run on this node."""
    audit(request, principal, "retention.read")
    job = getattr(request.app.state, "retention_job", None)
    last = job.last_report if job is not None else None
    policy = policy_dict(policy_of(request), request.app.state.settings.retention_interval_s)
    return {**policy, "last_run": last.as_dict() if last else None}


@router.post("/v1/retention/purge", response_model=PurgeReportOut)
def post_purge(
    request: Request,
    dry_run: bool = Query(False, description="Only report what would be removed."),
    principal: Principal = Depends(require("admin")),
) -> dict:
    """Run the purge now, with the configured periods; returns what it removed."""
    services = request.app.state.services
    report = run_purge(services, policy_of(request), request.app.state.metrics, dry_run)
    audit(request, principal, "retention.purge", None, **report.audit_detail())
    return report.as_dict()


def run_purge(services: Any, policy: RetentionPolicy, metrics: ServerMetrics | None, dry_run: bool = False,
              should_stop: Callable[[], bool] | None = None) -> PurgeReport:
    """One purge with its log line and metrics. Blocking."""
    report = purge_expired(services.store, services.recordings, policy, dry_run=dry_run, should_stop=should_stop)
    if report.items or report.failed or report.dry_run:
        log.info("%s", report.summary())
    else:
        log.debug("%s", report.summary())
    for failure in report.failed:
        log.warning("retention could not purge %s", failure)
    if metrics is not None and not dry_run:
        metrics.retention_purged(report.removed)
    return report


class RetentionJob:
    """The background purge: one run at start-up, then one every `interval_s`. Stopping waits for
    a run in progress to reach its next call (it is asked to stop), never kills it mid-call."""

    def __init__(self, services: Any, policy: RetentionPolicy, interval_s: float, metrics: ServerMetrics) -> None:
        self.services = services
        self.policy = policy
        self.interval_s = interval_s
        self.metrics = metrics
        self.last_report: PurgeReport | None = None
        self.runs = 0
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="retention-purge")

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task

    async def run_once(self) -> PurgeReport | None:
        """One purge in a thread, audited when it removed or failed anything; None if it raised
        (logged: the next run tries again)."""
        try:
            report = await asyncio.to_thread(self._purge)
        except Exception:  # a database outage must not end the job: the next run tries again
            log.exception("retention purge failed")
            return None
        self.last_report = report
        self.runs += 1
        return report

    def _purge(self) -> PurgeReport:
        report = run_purge(self.services, self.policy, self.metrics, should_stop=self._stopping.is_set)
        if report.items or report.failed:
            AccessStore(self.services.store).record(JOB_ACTOR, "system", "retention.purge", None, report.audit_detail())
        return report

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            await self.run_once()
            try:
                await asyncio.wait_for(self._stopping.wait(), self.interval_s)
            except TimeoutError:
                pass


async def start_job(services: Any, settings: Any, metrics: ServerMetrics) -> RetentionJob | None:
    """The purge job of this node (the caller decides which role runs it), or None when there
    is nothing to run: no interval, or every period 0."""
    policy = RetentionPolicy.from_settings(settings)
    if settings.retention_interval_s <= 0 or policy.keeps_everything:
        log.info("retention: no background purge (%s)", "every period is 0: kept forever"
                 if policy.keeps_everything else "STREAM_SERVER_RETENTION_INTERVAL_S=0")
        return None
    job = RetentionJob(services, policy, settings.retention_interval_s, metrics)
    await job.start()
    log.info("retention: purging every %g s (audio %d d, transcripts %d d, alerts %d d)", settings.retention_interval_s,
             policy.audio_days, policy.transcript_days, policy.alert_days)
    return job
