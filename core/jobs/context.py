"""What a job handler works with (:class:`JobContext`), what stops a run, and the timing of
leases and retries."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import connections
from django.db.models import DateTimeField, ExpressionWrapper
from django.db.models.functions import Now

from core.models import Job, User

MAX_STORED_ERRORS = 1000

# A handler's result may carry ``{NOTHING_TO_DO: True}``: the run found no work (a periodic
# job with nothing due). Its finish is then logged at DEBUG, so an idle system's log stays
# quiet; the key is not stored in the job's result.
NOTHING_TO_DO = "nothing_to_do"


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
