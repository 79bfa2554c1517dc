"""Running a job in the RQ work horse: claim it, keep its lease from a thread of its own, run
its handler and record the outcome."""

from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
from contextlib import suppress
from typing import Any

from django.db import connection, connections
from django.db.models import F, Q
from django.db.models.functions import Coalesce, Now

from core.actors import is_system
from core.errors import CoreErrorCode, ServiceError
from core.jobs.context import (
    NOTHING_TO_DO,
    JobCancelled,
    JobContext,
    LeaseLost,
    _in,
    is_transient,
    progress_db,
    timing,
)
from core.jobs.errors import JobErrorCode
from core.jobs.kinds import job_kinds
from core.jobs.records import FINAL_STAGES, _count, _event
from core.jobs.retries import lose_run
from core.models import Job, JobEvent

log = logging.getLogger("coremis.jobs")


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
        _finish(job, attempt, Job.FAILED, message=f"No enabled module runs jobs of kind '{job.kind}'.",
                error_code=JobErrorCode.KIND_UNAVAILABLE)
        return None
    _, handler = job_kinds()[job.kind]
    context = JobContext(job=job, user=job.created_by, params=job.params, attempt=attempt)
    # The system's own runs (schedules, event redelivery) mostly find nothing to do; whether
    # one did is said by its finish line, so its start alone is not news.
    log.log(logging.DEBUG if is_system(job.created_by) else logging.INFO, "job started",
            extra={"job": job_id, "kind": job.kind, "attempt": attempt})
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
        _finish(job, attempt, Job.FAILED, message=exc.message, error_code=str(exc.code))
        return None
    except Exception as exc:
        if is_transient(exc):
            _give_back(job, attempt, exc)
            return None
        log.exception("job crashed", extra={"job": job_id, "kind": job.kind, "attempt": attempt})
        # The cause is in the log under the job's id; a user reads what to do, not a traceback.
        _finish(job, attempt, Job.FAILED, trace=traceback.format_exc(), error_code=CoreErrorCode.INTERNAL,
                message=f"Run {attempt} stopped on an internal error; the worker's log has the details "
                        f"under job {job.pk}. Retry the job once the cause is fixed.")
        raise
    state, message, resume_after, idle = _outcome(job, result)
    _finish(job, attempt, state, message=message, result=result, resume_after=resume_after,
            quiet=idle and state == Job.SUCCEEDED)
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


def _outcome(job: Job, result: Any) -> tuple[str, str, float | None, bool]:
    """The state, message and resume delay a handler's result asks for, and whether it says
    the run found nothing to do (:data:`~core.jobs.context.NOTHING_TO_DO`).

    A handler may name the final state (an all-or-nothing import that refused is FAILED), or
    WAITING when it stopped short: for a person (``resume_after`` absent) or until it may try
    again by itself (``resume_after`` seconds). Otherwise row errors make a job PARTIAL.
    """
    state = Job.PARTIAL if job.error_count else Job.SUCCEEDED
    message = job.message
    resume_after = None
    idle = False
    if isinstance(result, dict):
        idle = result.pop(NOTHING_TO_DO, False) is True
        if result.get("state") in Job.FINAL_STATES | {Job.WAITING}:
            state = result.pop("state")
        message = str(result.pop("message", "") or message)
        if state == Job.WAITING and result.get("resume_after") is not None:
            resume_after = float(result.pop("resume_after"))
    return state, message or _default_message(job, state, result), resume_after, idle


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
            resume_after: float | None = None, error_code: str = "", quiet: bool = False) -> bool:
    final = state in Job.FINAL_STATES
    if state == Job.FAILED and not error_code and isinstance(result, dict):
        error_code = str(result.get("error_code") or "")  # a handler that names its own refusal
    changes: dict[str, Any] = {
        "state": state, "message": message, "result": result, "lease_expires_at": None,
        "error_code": str(error_code) if state == Job.FAILED else "",
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
    log.log(logging.DEBUG if quiet else logging.INFO, "job finished",
            extra={"job": str(job.pk), "kind": job.kind, "attempt": attempt, "state": state,
                   "trace": trace or None})
    return True


def _cancelled_message(job: Job) -> str:
    who = Job.objects.using(progress_db()).filter(pk=job.pk).values_list(
        "cancel_requested_by__username", flat=True).first()
    done = f" after {job.processed:,} of {job.total:,}" if job.total is not None else ""
    return (f"Cancelled by {who or 'an operator'} at stage '{job.stage or 'start'}'{done}; "
            "what it had committed stays.")
