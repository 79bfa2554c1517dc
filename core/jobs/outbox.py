"""Starting a job: the row is the outbox, handed to the RQ queue once the transaction commits
(and by the sweep when Redis could not take it then)."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models.functions import Now

from core.actors import checked_actor
from core.errors import CoreErrorCode, ServiceError
from core.jobs.context import timing
from core.jobs.kinds import job_kinds
from core.models import Job, User

log = logging.getLogger("coremis.jobs")


QUEUE = "default"


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
