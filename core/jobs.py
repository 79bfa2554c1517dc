"""Background jobs: a ``Job`` row a client can watch, leased to the RQ work horse that runs it.

The life of a job, and what makes it recover by itself:

- :func:`start_job` records the job (QUEUED) and hands it to the RQ queue once the surrounding
  transaction commits, so a rolled-back request never starts work. The row is the outbox: if
  Redis cannot take the job at that moment the row stays QUEUED, and the scheduler's
  :func:`sweep` hands it over as soon as Redis answers. A QUEUED job that the queue lost
  (Redis restarted without it, a worker died between taking it and starting it) is handed
  over again the same way.
- :func:`run_job`, in the work horse, claims the job (RUNNING, ``attempts`` + 1) and takes a
  *lease* that a heartbeat thread renews every few seconds while the handler runs, however
  long one of its statements takes. Progress and lease renewals are written on their own
  database connection, so a client sees them while the job's own work is still inside an
  uncommitted transaction.
- A lease that lapses means the run was lost: the work horse or its worker was killed, the
  machine went away. :func:`sweep` then queues the job again after an exponential back-off,
  up to ``max_failures`` lost runs, and fails it with a message saying so after that. A run
  that loses its database or Redis gives its job back the same way at once.
- Retrying is safe because every handler is idempotent: run again, it continues or redoes its
  work without duplicates (each handler's docstring says how). Every write a run makes to its
  job is fenced by the attempt number, so a run that lost its lease cannot overwrite the
  outcome of the run that replaced it.

Progress is also where a handler may be stopped: :meth:`JobContext.progress` raises
:class:`JobCancelled` once someone asked to cancel the job, so cancelling takes effect at the
handler's next progress report, where its work so far is either committed or rolled back.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from django.db import connection, connections, transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Q
from django.db.models.functions import Coalesce, Now
from django.utils import timezone

from core.actors import checked_actor
from core.errors import CoreErrorCode, ErrorCode, ModuleConfigurationError, NotFound, ServiceError
from core.models import Job, JobEvent, User
from core.permissions import JOB_MANAGE, JOB_VIEW_ALL, has_permission, require

log = logging.getLogger("coremis.jobs")

MAX_STORED_ERRORS = 1000
QUEUE = "default"


class JobErrorCode(ErrorCode):
    """Why retrying or cancelling a job was refused."""

    JOB_FINISHED = "JOB_FINISHED", "The job already ended; there is nothing to cancel."
    JOB_NOT_RETRYABLE = "JOB_NOT_RETRYABLE", "Only a failed or cancelled job, or one waiting to run again, is retried."
    JOB_AWAITS_DECISION = "JOB_AWAITS_DECISION", "The job waits for a person's decision (an approval); decide it there."


# --- timing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """How quickly lost runs are noticed and retried (environment, read at each use)."""

    lease: float  # COREMIS_JOB_LEASE_SECONDS: a run that sends no heartbeat for this long is lost
    heartbeat: float  # COREMIS_JOB_HEARTBEAT_SECONDS: how often a running job renews its lease
    retry_base: float  # COREMIS_JOB_RETRY_SECONDS: the first back-off; it doubles per lost run
    retry_cap: float  # COREMIS_JOB_RETRY_MAX_SECONDS: the longest back-off
    max_failures: int  # COREMIS_JOB_MAX_FAILURES: lost runs retried before the job fails
    dispatch_grace: float  # COREMIS_JOB_DISPATCH_GRACE_SECONDS: how long a queued job may be
    #                        missing from Redis before the sweep hands it over again

    def backoff(self, failures: int) -> float:
        return float(min(self.retry_cap, self.retry_base * 2 ** max(0, failures - 1)))


def env_number(name: str, default: float) -> float:
    """A positive number from the environment (a clear error for anything else)."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be more than 0, not {raw!r}")
    return value


def timing() -> Timing:
    lease = env_number("COREMIS_JOB_LEASE_SECONDS", 30)
    return Timing(
        lease=lease,
        heartbeat=min(env_number("COREMIS_JOB_HEARTBEAT_SECONDS", max(1.0, lease / 6)), lease / 2),
        retry_base=env_number("COREMIS_JOB_RETRY_SECONDS", 10),
        retry_cap=env_number("COREMIS_JOB_RETRY_MAX_SECONDS", 600),
        max_failures=int(env_number("COREMIS_JOB_MAX_FAILURES", 5)),
        dispatch_grace=env_number("COREMIS_JOB_DISPATCH_GRACE_SECONDS", 10),
    )


def _in(seconds: float) -> ExpressionWrapper:
    """The database's ``now() + seconds``: leases are compared on one clock, the database's,
    whichever machine a worker or scheduler runs on."""
    return ExpressionWrapper(Now() + timedelta(seconds=seconds), output_field=DateTimeField())


def progress_db() -> str:
    """The connection progress is written on: its own one, so it is visible mid-transaction.

    Tests that wrap everything in one transaction set ``COREMIS["PROGRESS_DB"] = "default"``.
    """
    from django.conf import settings

    return str(settings.COREMIS.get("PROGRESS_DB", "progress"))


# --- what stops a run ------------------------------------------------------------------------


class JobInterrupted(BaseException):
    """The run must stop now; raised from :meth:`JobContext.progress`.

    Not an ``Exception``: a handler's ``except Exception`` (which records a failure) must let
    it through, while its ``finally`` blocks and transactions still clean up and roll back."""


class JobCancelled(JobInterrupted):
    """Someone cancelled the job; the handler stops at this progress report."""


class LeaseLost(JobInterrupted):
    """The job was given to another run (this one's lease lapsed): stop without a word."""


def is_transient(exc: BaseException) -> bool:
    """An error of the database or Redis connection, not of the job: running again later
    succeeds once they are back. A statement timeout is the job's own problem."""
    import psycopg
    import redis
    from django.db import InterfaceError, OperationalError

    cause = exc.__cause__
    if isinstance(exc, psycopg.errors.QueryCanceled) or isinstance(cause, psycopg.errors.QueryCanceled):
        return False
    return isinstance(exc, OperationalError | InterfaceError | psycopg.OperationalError | psycopg.InterfaceError
                      | redis.exceptions.ConnectionError | redis.exceptions.TimeoutError)


def ends_the_job(exc: BaseException) -> bool:
    """Whether ``exc`` ends the job for good (a handler may then drop what only a later run
    would need), rather than giving it back for another run."""
    return not (isinstance(exc, LeaseLost) or is_transient(exc))


# --- what a handler works with ---------------------------------------------------------------


@dataclass
class JobContext:
    """What a job handler works with.

    ``attempt`` is the number of the run (set by :func:`run_job`); with it, every progress
    write renews the run's lease and is refused once the job belongs to another run.
    """

    job: Job
    user: User | None
    params: dict[str, Any] = field(default_factory=dict)
    attempt: int | None = None

    def progress(self, processed: int, total: int | None = None, stage: str | None = None, *,
                 stoppable: bool = True) -> None:
        """Record progress (and renew the lease). Raises :class:`JobCancelled` when the job was
        cancelled, unless ``stoppable`` is False (the handler is past the point of no return)."""
        sets = ["processed = %s", "heartbeat_at = now()"]
        params: list[Any] = [processed]
        if total is not None:
            sets.append("total = %s")
            params.append(total)
        if stage is not None:
            sets.append("stage = %s")
            params.append(stage)
        where = "id = %s"
        params.append(self.job.pk)
        if self.attempt is not None:
            sets.append(f"lease_expires_at = now() + interval '{timing().lease:.3f} seconds'")
            where += " AND state = 'RUNNING' AND attempts = %s"
            params.append(self.attempt)
        with connections[progress_db()].cursor() as cursor:
            cursor.execute(f"UPDATE core_job SET {', '.join(sets)} WHERE {where} "
                           "RETURNING cancel_requested_at IS NOT NULL", params)
            row = cursor.fetchone()
        self.job.processed = processed
        if total is not None:
            self.job.total = total
        if stage is not None:
            self.job.stage = stage
        if self.attempt is None:
            return
        if row is None:
            raise LeaseLost(f"job {self.job.pk} run {self.attempt} no longer holds the job")
        if row[0] and stoppable:
            raise JobCancelled()

    def report_errors(self, errors: list[dict[str, Any]]) -> None:
        """Record row errors; the first ``MAX_STORED_ERRORS`` are kept in full on the job."""
        if not errors:
            return
        room = max(0, MAX_STORED_ERRORS - len(self.job.errors))
        self.job.errors = self.job.errors + errors[:room]
        self.job.error_count += len(errors)
        Job.objects.using(progress_db()).filter(pk=self.job.pk).update(
            errors=self.job.errors, error_count=self.job.error_count
        )


Handler = Callable[[JobContext], Any]


@cache
def job_kinds() -> dict[str, tuple[str, Handler]]:
    from core.hooks import results_by_module

    kinds: dict[str, tuple[str, Handler]] = {}
    for module, declared in results_by_module("coremis_jobs"):
        for kind, handler in declared.items():
            if not kind.startswith(f"{module}."):
                raise ModuleConfigurationError(
                    module, f"declares job kind '{kind}' outside its namespace", f"name it '{module}.<job>'"
                )
            kinds[kind] = (module, handler)
    return kinds


# --- starting and handing to the queue -------------------------------------------------------


def start_job(kind: str, params: dict[str, Any], user: User | None) -> Job:
    """Record a job and hand it to the queue once the current transaction commits.

    ``user`` is who the job runs for (``JobContext.user``); the platform's own jobs run for
    :func:`core.actors.system_actor`.
    """
    checked_actor(user)
    if kind not in job_kinds():
        raise ServiceError(CoreErrorCode.UNKNOWN_JOB_KIND, f"No enabled module runs jobs of kind '{kind}'.")
    module, _ = job_kinds()[kind]
    job = Job.objects.create(kind=kind, module=module, params=params, created_by=user,
                             max_failures=timing().max_failures)
    dispatch_on_commit(job)
    return job


def dispatch_on_commit(job: Job) -> None:
    # robust: whatever happens to Redis, the request that committed the job has succeeded;
    # a job that was not handed over is handed over by the sweep.
    transaction.on_commit(lambda: enqueue(job), robust=True)


def rq_job_id(job: Job) -> str:
    # The RQ job id is ours: one per run, so handing the same run over twice is visible, and
    # a second copy of it finds the job claimed and does nothing.
    return f"coremis-{job.pk}-{job.attempts}"


def enqueue(job: Job) -> bool:
    """Hand a QUEUED job to the RQ queue; False (logged) when Redis cannot take it now."""
    import django_rq
    import redis

    try:
        # "auto": now. django-rq would otherwise wait for a commit; ours already happened, or
        # (in the sweep) there is no transaction that matters.
        django_rq.get_queue(QUEUE, commit_mode="auto").enqueue("core.jobs.run_job", str(job.pk),
                                                               job_id=rq_job_id(job))
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        log.warning("job not handed to the queue; the scheduler will hand it over",
                    extra={"job": str(job.pk), "error": str(exc)})
        return False
    Job.objects.filter(pk=job.pk, state=Job.QUEUED).update(dispatched_at=Now())
    return True


# --- running ---------------------------------------------------------------------------------


class LeaseKeeper:
    """Renews a run's lease from its own thread (and database connection) while the handler
    runs, so a long statement does not look like a dead worker."""

    def __init__(self, job_id: Any, attempt: int, every: float, lease: float) -> None:
        self.job_id, self.attempt, self.every, self.lease = job_id, attempt, every, lease
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{job_id}", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.every + 10)

    def _run(self) -> None:
        alias = progress_db()
        try:
            while not self._stop.wait(self.every):
                try:
                    renewed = (Job.objects.using(alias).filter(pk=self.job_id, state=Job.RUNNING, attempts=self.attempt)
                               .update(heartbeat_at=Now(), lease_expires_at=_in(self.lease)))
                except Exception as exc:  # the database is away: try again, the lease may hold
                    log.warning("lease not renewed", extra={"job": str(self.job_id), "error": str(exc)})
                    with suppress(Exception):
                        connections[alias].close()
                    continue
                if not renewed:
                    self.lost.set()
                    return
        finally:
            with suppress(Exception):
                connections.close_all()  # this thread's connections only


def _current_worker_name() -> str:
    from rq import get_current_job

    current = get_current_job()
    if current is not None and current.worker_name:
        return str(current.worker_name)
    return f"{socket.gethostname()}:{os.getpid()}"


def run_job(job_id: str) -> Any:
    """RQ entry point: claim the job, run its handler under a lease, record the outcome.

    Running a job that is not QUEUED (finished, or claimed by another run) does nothing.
    """
    t = timing()
    claimed = (Job.objects.filter(pk=job_id, state=Job.QUEUED)
               .filter(Q(available_at__isnull=True) | Q(available_at__lte=Now()))
               .update(state=Job.RUNNING, started_at=Coalesce(F("started_at"), Now()), heartbeat_at=Now(),
                       lease_expires_at=_in(t.lease), attempts=F("attempts") + 1, available_at=None,
                       finished_at=None, message="", worker_name=_current_worker_name()))
    if not claimed:
        log.info("job already claimed, finished or missing", extra={"job": job_id})
        return None
    job = Job.objects.select_related("created_by").get(pk=job_id)
    attempt = job.attempts
    _event(job, JobEvent.STARTED, attempt, Job.RUNNING, f"Run {attempt} started on {job.worker_name}.")
    if job.kind not in job_kinds():  # its module was disabled since the job was queued
        _finish(job, attempt, Job.FAILED, message=f"No enabled module runs jobs of kind '{job.kind}'.")
        return None
    _, handler = job_kinds()[job.kind]
    context = JobContext(job=job, user=job.created_by, params=job.params, attempt=attempt)
    log.info("job started", extra={"job": job_id, "kind": job.kind, "attempt": attempt})
    # Inside an open transaction (a caller running a job synchronously) nobody else could see
    # a renewed lease, and the run is as long as the caller's request anyway.
    in_transaction = connection.in_atomic_block or connections[progress_db()].in_atomic_block
    try:
        if in_transaction:
            result = handler(context)
        else:
            with LeaseKeeper(job.pk, attempt, t.heartbeat, t.lease):
                result = handler(context)
    except JobCancelled:
        _finish(job, attempt, Job.CANCELLED, message=_cancelled_message(job))
        return None
    except LeaseLost:
        log.warning("job run stopped: another run holds the job", extra={"job": job_id, "attempt": attempt})
        return None
    except ServiceError as exc:
        _finish(job, attempt, Job.FAILED, message=exc.message)
        return None
    except Exception as exc:
        if is_transient(exc):
            _give_back(job, attempt, exc)
            return None
        log.exception("job crashed", extra={"job": job_id, "kind": job.kind, "attempt": attempt})
        # The cause is in the log under the job's id; a user reads what to do, not a traceback.
        _finish(job, attempt, Job.FAILED, trace=traceback.format_exc(),
                message=f"Run {attempt} stopped on an internal error; the worker's log has the details "
                        f"under job {job.pk}. Retry the job once the cause is fixed.")
        raise
    state, message, resume_after = _outcome(job, result)
    _finish(job, attempt, state, message=message, result=result, resume_after=resume_after)
    return result


def _give_back(job: Job, attempt: int, exc: BaseException) -> None:
    """The run lost its database or Redis: give the job back now rather than when its lease
    lapses. If the database is still away this fails too, and the lease lapses instead."""
    log.warning("job run lost its database or Redis", extra={"job": str(job.pk), "error": str(exc)})
    with suppress(Exception):
        connections.close_all()
    try:
        lose_run(job.pk, "it lost its connection to the database or Redis", attempt=attempt)
    except Exception:
        log.warning("job not given back; the scheduler retries it when its lease lapses",
                    extra={"job": str(job.pk)})


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


FINAL_STAGES = {Job.SUCCEEDED: "done", Job.PARTIAL: "partially_done", Job.FAILED: "failed",
                Job.CANCELLED: "cancelled"}


def _outcome(job: Job, result: Any) -> tuple[str, str, float | None]:
    """The state, message and resume delay a handler's result asks for.

    A handler may name the final state (an all-or-nothing import that refused is FAILED), or
    WAITING when it stopped short: for a person (``resume_after`` absent) or until it may try
    again by itself (``resume_after`` seconds). Otherwise row errors make a job PARTIAL.
    """
    state = Job.PARTIAL if job.error_count else Job.SUCCEEDED
    message = job.message
    resume_after = None
    if isinstance(result, dict):
        if result.get("state") in Job.FINAL_STATES | {Job.WAITING}:
            state = result.pop("state")
        message = str(result.pop("message", "") or message)
        if state == Job.WAITING and result.get("resume_after") is not None:
            resume_after = float(result.pop("resume_after"))
    return state, message or _default_message(job, state, result), resume_after


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def _default_message(job: Job, state: str, result: Any) -> str:
    """A sentence for a handler that gave none: never an empty message on a final state."""
    counts = []
    if isinstance(result, dict):
        counts = [f"{key.replace('_', ' ')} {value:,}" for key, value in result.items()
                  if isinstance(value, int) and not isinstance(value, bool)]
    if not counts and job.total is not None:
        counts = [f"processed {job.processed:,} of {job.total:,}"]
    detail = f": {', '.join(counts)}" if counts else ""
    if state == Job.PARTIAL:
        return f"Done with {_count(job.error_count, 'error')}{detail}."
    if state == Job.WAITING:
        return f"Stopped short{detail}; waiting."
    return f"Done{detail}."


def _finish(job: Job, attempt: int, state: str, *, message: str, result: Any = None, trace: str = "",
            resume_after: float | None = None) -> bool:
    final = state in Job.FINAL_STATES
    changes: dict[str, Any] = {
        "state": state, "message": message, "result": result, "lease_expires_at": None,
        "finished_at": Now() if final else None,
        "stage": FINAL_STAGES.get(state, job.stage or "waiting"),
        "available_at": _in(resume_after) if state == Job.WAITING and resume_after is not None else None,
    }
    finished = (Job.objects.using(progress_db()).filter(pk=job.pk, state=Job.RUNNING, attempts=attempt)
                .update(**changes))
    if not finished:
        log.warning("job outcome not recorded: another run holds the job", extra={"job": str(job.pk)})
        return False
    job.refresh_from_db(using=progress_db())
    _event(job, JobEvent.CANCELLED if state == Job.CANCELLED else JobEvent.FINISHED, attempt, state, message)
    log.info("job finished", extra={"job": str(job.pk), "state": state, "trace": trace or None})
    return True


def _cancelled_message(job: Job) -> str:
    who = Job.objects.using(progress_db()).filter(pk=job.pk).values_list(
        "cancel_requested_by__username", flat=True).first()
    done = f" after {job.processed:,} of {job.total:,}" if job.total is not None else ""
    return (f"Cancelled by {who or 'an operator'} at stage '{job.stage or 'start'}'{done}; "
            "what it had committed stays.")


def _event(job: Job, event: str, attempt: int, state: str, message: str = "", user: Any = None,
           using: str | None = None) -> None:
    JobEvent.objects.using(using or progress_db()).create(
        job_id=job.pk, event=event, attempt=attempt, state=state, message=message[:2000],
        user_id=getattr(user, "pk", None))


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


# --- what people do with jobs: retry and cancel -----------------------------------------------
#
# Each is a ``check_*`` (authorise, find the job, refuse what cannot be done) and a ``do_*``
# that locks the job row and checks again before it writes, since the job may have moved on
# between the two (a worker finished it, someone else cancelled it).


def can_act_on(user: Any, job: Job) -> bool:
    """One's own jobs, or anyone's with ``core.job.view_all`` (which the jobs list also needs
    to show them)."""
    return job.created_by_id == getattr(user, "pk", None) or has_permission(user, JOB_VIEW_ALL)


def _visible_job(user: Any, job_id: Any, *, lock: bool = False) -> Job:
    jobs = Job.objects.select_related("created_by", "cancel_requested_by")
    if lock:
        jobs = jobs.select_for_update(of=("self",))
    job = jobs.filter(pk=job_id).first()
    if job is None or not can_act_on(user, job):
        raise NotFound("Job", job_id)
    return job


@dataclass(frozen=True)
class JobRequest:
    """A person's request to retry or cancel ``job``."""

    actor: User
    job: Job


def _refuse_cancel(job: Job) -> None:
    if job.is_final:
        raise ServiceError(JobErrorCode.JOB_FINISHED,
                           f"This job already ended ({job.state.lower()}); there is nothing to cancel.", "id")
    if job.state == Job.WAITING and job.available_at is None:
        # Its module keeps state of its own for the decision (an import's staged rows).
        raise ServiceError(JobErrorCode.JOB_AWAITS_DECISION,
                           "This job waits for a person's decision (an approval); refuse it there.", "id")


def check_cancel_job(actor: User, job_id: Any) -> JobRequest:
    require(actor, JOB_MANAGE)
    job = _visible_job(actor, job_id)
    _refuse_cancel(job)
    return JobRequest(actor, job)


def do_cancel_job(request: JobRequest) -> Job:
    """Cancel a job. One that has not started, waits to resume, or whose run was lost ends
    CANCELLED now; a running one stops at its next progress report (what it committed so far
    stays) and meanwhile shows ``cancelRequestedAt``. One waiting for a person's decision is
    refused where it is decided."""
    user = request.actor
    with transaction.atomic():
        job = _visible_job(user, request.job.pk, lock=True)
        _refuse_cancel(job)
        lapsed = job.state == Job.RUNNING and (job.lease_expires_at is None or job.lease_expires_at < timezone.now())
        if job.state == Job.RUNNING and not lapsed:
            Job.objects.filter(pk=job.pk).update(cancel_requested_at=Now(), cancel_requested_by=user)
            _event(job, JobEvent.CANCEL_REQUESTED, job.attempts, job.state,
                   f"{user.username} asked to cancel it; it stops at its next progress report.",
                   user=user, using="default")
        else:
            when = {Job.QUEUED: "before it ran again" if job.attempts else "before it ran",
                    Job.WAITING: "while it waited"}.get(job.state, "after its run was lost")
            message = f"Cancelled by {user.username} {when}."
            Job.objects.filter(pk=job.pk).update(
                state=Job.CANCELLED, stage=FINAL_STAGES[Job.CANCELLED], finished_at=Now(), message=message,
                cancel_requested_at=Now(), cancel_requested_by=user, lease_expires_at=None, available_at=None)
            _event(job, JobEvent.CANCELLED, job.attempts, Job.CANCELLED, message, user=user, using="default")
    job.refresh_from_db()
    return job


def _refuse_retry(job: Job) -> None:
    if job.state == Job.WAITING and job.available_at is None:
        raise ServiceError(JobErrorCode.JOB_AWAITS_DECISION,
                           "This job waits for a person's decision (an approval), not for a retry.", "id")
    backing_off = job.state in (Job.QUEUED, Job.WAITING) and job.available_at is not None
    if job.state not in (Job.FAILED, Job.CANCELLED) and not backing_off:
        raise ServiceError(JobErrorCode.JOB_NOT_RETRYABLE,
                           "Only a failed or cancelled job, or one waiting to run again, can be retried; "
                           f"this one is {job.state.lower()}.", "id")


def check_retry_job(actor: User, job_id: Any) -> JobRequest:
    require(actor, JOB_MANAGE)
    job = _visible_job(actor, job_id)
    _refuse_retry(job)
    return JobRequest(actor, job)


def do_retry_job(request: JobRequest) -> Job:
    """Run a failed or cancelled job again (its handler continues or redoes its work, never
    twice), or run now a job waiting for its back-off or to resume by itself. The budget of
    lost runs starts again. The job is handed to the queue on commit."""
    user = request.actor
    with transaction.atomic():
        job = _visible_job(user, request.job.pk, lock=True)
        _refuse_retry(job)
        message = f"Retried by {user.username}."
        Job.objects.filter(pk=job.pk).update(
            state=Job.QUEUED, finished_at=None, available_at=None, dispatched_at=None, failures=0,
            cancel_requested_at=None, cancel_requested_by=None, message=message,
            stage="queued" if job.is_final else job.stage)
        _event(job, JobEvent.RETRIED, job.attempts, Job.QUEUED, message, user=user, using="default")
        job.refresh_from_db()
        dispatch_on_commit(job)
    return job


def cancel_job(user: User, job_id: Any) -> Job:
    """Both steps of cancelling at once (scripts and tests)."""
    return do_cancel_job(check_cancel_job(user, job_id))


def retry_job(user: User, job_id: Any) -> Job:
    """Both steps of retrying at once (scripts and tests)."""
    return do_retry_job(check_retry_job(user, job_id))


def lapsed_lease_cutoff() -> datetime:
    """Leases that lapsed before this are overdue for the sweep (for ``/health``)."""
    return timezone.now() - timedelta(seconds=max(60.0, 3 * timing().lease))
