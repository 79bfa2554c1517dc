"""The refusals of the jobs' own use cases (retry, cancel)."""

from __future__ import annotations

from core.errors import ErrorCode


class JobErrorCode(ErrorCode):
    """Why retrying or cancelling a job was refused, or why a job could not run."""

    JOB_FINISHED = "JOB_FINISHED", "The job already ended; there is nothing to cancel."
    JOB_NOT_RETRYABLE = "JOB_NOT_RETRYABLE", "Only a failed or cancelled job, or one waiting to run again, is retried."
    JOB_AWAITS_DECISION = "JOB_AWAITS_DECISION", "The job waits for a person's decision (an approval); decide it there."
    KIND_UNAVAILABLE = "KIND_UNAVAILABLE", "No enabled module runs jobs of this kind (its module was disabled since)."
    RUNS_LOST = "RUNS_LOST", "The job lost too many runs (worker, database or Redis gone under it) and gave up."
