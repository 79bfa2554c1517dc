"""Losing a run, and the sweep that notices: lapsed leases retried after a back-off, waiting
jobs resumed, queued jobs the queue lost handed over again."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Now
from django.utils import timezone

from core.jobs.context import _in, progress_db, timing
from core.jobs.errors import JobErrorCode
from core.jobs.outbox import QUEUE, enqueue, rq_job_id
from core.jobs.records import FINAL_STAGES, _count, _event
from core.models import Job, JobEvent

log = logging.getLogger("coremis.jobs")


def lose_run(job_id: Any, reason: str, *, attempt: int | None = None, worker_name: str | None = None) -> str | None:
    """Someone who knows a run is gone (the run itself, or the worker whose work horse died)
    says so, so the job is retried without waiting for its lease to lapse. Only the run named
    by ``attempt`` or ``worker_name`` is affected; returns the job's new state, or None."""
    with transaction.atomic(using=progress_db()):
        rows = Job.objects.using(progress_db()).select_for_update(of=("self",)).select_related(
            "cancel_requested_by").filter(pk=job_id, state=Job.RUNNING)
        if attempt is not None:
            rows = rows.filter(attempts=attempt)
        if worker_name is not None:
            rows = rows.filter(worker_name=worker_name)
        locked = rows.first()
        return _lose_locked(locked, reason, JobEvent.INTERRUPTED) if locked is not None else None


# --- losing a run, and the sweep that notices ------------------------------------------------


def _lose_locked(job: Job, reason: str, event: str) -> str:
    """A run of ``job`` (row locked, RUNNING) was lost: queue it again after a back-off, or
    fail it when it has lost too many runs, or cancel it when that was asked for. Returns the
    new state."""
    t = timing()
    alias = job._state.db or "default"
    failures = job.failures + 1
    _event(job, event, job.attempts, Job.RUNNING, f"Run {job.attempts} was lost: {reason}.", using=alias)
    changes: dict[str, Any] = {"failures": failures, "lease_expires_at": None, "dispatched_at": None}
    if job.cancel_requested_at is not None:
        who = job.cancel_requested_by.username if job.cancel_requested_by else "an operator"
        changes.update(state=Job.CANCELLED, stage=FINAL_STAGES[Job.CANCELLED], finished_at=Now(),
                       message=f"Cancelled by {who}; its last run stopped ({reason}). What it had "
                               "committed stays.")
        kind = JobEvent.CANCELLED
    elif failures >= job.max_failures:
        changes.update(state=Job.FAILED, stage=FINAL_STAGES[Job.FAILED], finished_at=Now(),
                       error_code=JobErrorCode.RUNS_LOST,
                       message=f"Gave up after {_count(failures, 'lost run')}: the last one stopped because "
                               f"{reason}. What it had committed stays; retry the job once the cause is fixed.")
        kind = JobEvent.GAVE_UP
    else:
        delay = t.backoff(failures)
        changes.update(state=Job.QUEUED, available_at=_in(delay),
                       message=f"Run {job.attempts} was lost ({reason}); it runs again in {delay:.0f} s "
                               f"({_count(failures, 'lost run')} of at most {job.max_failures}).")
        kind = JobEvent.RETRY_SCHEDULED
    Job.objects.using(alias).filter(pk=job.pk).update(**changes)
    _event(job, kind, job.attempts, changes["state"], changes["message"], using=alias)
    log.warning("job run lost", extra={"job": str(job.pk), "kind": job.kind, "reason": reason,
                                       "state": changes["state"], "failures": failures})
    return str(changes["state"])


@dataclass
class SweepReport:
    retried: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    dispatched: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return any((self.retried, self.failed, self.cancelled, self.resumed, self.dispatched))


SWEEP_BATCH = 500


def sweep() -> SweepReport:
    """What the scheduler does every few seconds, so no fault needs an operator:

    1. a RUNNING job whose lease lapsed is queued again (or failed, or cancelled);
    2. a WAITING job whose ``available_at`` came resumes;
    3. a QUEUED job that is due and not on the RQ queue is handed to it.

    Safe to run in several schedulers at once: rows are locked and skipped when taken.
    """
    report = SweepReport()
    with transaction.atomic():
        lapsed = (Job.objects.select_for_update(skip_locked=True, of=("self",))
                  .select_related("cancel_requested_by")
                  .filter(state=Job.RUNNING, lease_expires_at__lt=Now()).order_by("lease_expires_at")[:SWEEP_BATCH])
        for job in lapsed:
            silent = (timezone.now() - job.heartbeat_at).total_seconds() if job.heartbeat_at else None
            reason = (f"its worker {job.worker_name or '(unknown)'} stopped renewing the lease"
                      + (f" {silent:.0f} s ago" if silent is not None else ""))
            state = _lose_locked(job, reason, JobEvent.LEASE_LAPSED)
            {Job.QUEUED: report.retried, Job.FAILED: report.failed, Job.CANCELLED: report.cancelled}[state].append(
                str(job.pk))
    with transaction.atomic():
        due = (Job.objects.select_for_update(skip_locked=True)
               .filter(state=Job.WAITING, available_at__isnull=False, available_at__lte=Now())[:SWEEP_BATCH])
        for job in due:
            Job.objects.filter(pk=job.pk).update(state=Job.QUEUED, available_at=None, dispatched_at=None)
            _event(job, JobEvent.RESUMED, job.attempts, Job.QUEUED, "It resumes by itself.", using="default")
            report.resumed.append(str(job.pk))
    report.dispatched = _dispatch_lost()
    return report


def _dispatch_lost() -> list[str]:
    """Hand over QUEUED jobs that are due but on no queue: never handed over (Redis was away
    at commit), lost by Redis, or taken by a worker that died before starting them."""
    import django_rq
    import redis

    t = timing()
    grace = timezone.now() - timedelta(seconds=t.dispatch_grace)
    candidates = list(
        Job.objects.filter(state=Job.QUEUED)
        .filter(Q(available_at__isnull=True) | Q(available_at__lte=Now()))
        .filter(Q(dispatched_at__isnull=True, available_at__isnull=False)
                | Q(dispatched_at__isnull=True, created_at__lt=grace) | Q(dispatched_at__lt=grace))
        .order_by("created_at")[:SWEEP_BATCH])
    if not candidates:
        return []
    queue = django_rq.get_queue(QUEUE)
    try:
        waiting = {raw.decode() if isinstance(raw, bytes) else raw
                   for raw in queue.connection.lrange(queue.key, 0, -1)}
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        log.warning("Redis is away; queued jobs are handed over when it answers", extra={"error": str(exc)})
        return []
    handed = []
    for job in candidates:
        if rq_job_id(job) in waiting:
            continue  # on the queue, behind other jobs
        again = job.dispatched_at is not None
        if enqueue(job):
            handed.append(str(job.pk))
            if again:
                _event(job, JobEvent.DISPATCHED_AGAIN, job.attempts, Job.QUEUED,
                       "It was queued but not on the RQ queue; handed to it again.", using="default")
    return handed


def lapsed_lease_cutoff() -> datetime:
    """Leases that lapsed before this are overdue for the sweep (for ``/health``)."""
    return timezone.now() - timedelta(seconds=max(60.0, 3 * timing().lease))
