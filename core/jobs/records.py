"""The job's own records: the event log of its runs, and the words of its stages."""

from __future__ import annotations

from typing import Any

from core.jobs.context import progress_db
from core.models import Job, JobEvent

FINAL_STAGES = {Job.SUCCEEDED: "done", Job.PARTIAL: "partially_done", Job.FAILED: "failed",
                Job.CANCELLED: "cancelled"}


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def _event(job: Job, event: str, attempt: int, state: str, message: str = "", user: Any = None,
           using: str | None = None) -> None:
    JobEvent.objects.using(using or progress_db()).create(
        job_id=job.pk, event=event, attempt=attempt, state=state, message=message[:2000],
        user_id=getattr(user, "pk", None))
