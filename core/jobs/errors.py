"""The refusals of the jobs' own use cases (retry, cancel)."""

from __future__ import annotations

from core.errors import ErrorCode


class JobErrorCode(ErrorCode):
    """Why retrying or cancelling a job was refused."""

    JOB_FINISHED = "JOB_FINISHED", "The job already ended; there is nothing to cancel."
    JOB_NOT_RETRYABLE = "JOB_NOT_RETRYABLE", "Only a failed or cancelled job, or one waiting to run again, is retried."
    JOB_AWAITS_DECISION = "JOB_AWAITS_DECISION", "The job waits for a person's decision (an approval); decide it there."
