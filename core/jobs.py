"""Background jobs: a ``Job`` row a client can watch, run by an RQ worker.

A module declares job kinds through ``coremis_jobs``; :func:`start_job` records the job and
enqueues it when the surrounding transaction commits, so a rolled-back request never starts
work. Progress is written on the separate ``progress`` database connection, so a client sees
it while the job's own writes are still inside an uncommitted transaction.
"""

from __future__ import annotations

import logging
import os
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.errors import ServiceError
from core.loader import ModuleConfigurationError
from core.models import Job, User

log = logging.getLogger("coremis.jobs")



def progress_db() -> str:
    """The connection progress is written on: its own one, so it is visible mid-transaction.

    Tests that wrap everything in one transaction set ``COREMIS["PROGRESS_DB"] = "default"``.
    """
    from django.conf import settings

    return str(settings.COREMIS.get("PROGRESS_DB", "progress"))

MAX_STORED_ERRORS = 1000


@dataclass
class JobContext:
    """What a job handler works with."""

    job: Job
    user: User | None
    params: dict[str, Any] = field(default_factory=dict)

    def progress(self, processed: int, total: int | None = None, stage: str | None = None) -> None:
        changes: dict[str, Any] = {"processed": processed, "heartbeat_at": timezone.now()}
        if total is not None:
            changes["total"] = total
        if stage is not None:
            changes["stage"] = stage
        Job.objects.using(progress_db()).filter(pk=self.job.pk).update(**changes)
        for key, value in changes.items():
            setattr(self.job, key, value)

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


def core_job_kinds() -> dict[str, Handler]:
    """Job kinds of the core's own services (the core is not a plug-in, so not a hook)."""
    from core.approvals.services import run_approved_task

    return {"core.approval_execute": run_approved_task}


@cache
def job_kinds() -> dict[str, tuple[str, Handler]]:
    from core.hooks import results_by_module

    kinds: dict[str, tuple[str, Handler]] = {
        kind: ("core", handler) for kind, handler in core_job_kinds().items()
    }
    for module, declared in results_by_module("coremis_jobs"):
        for kind, handler in declared.items():
            if not kind.startswith(f"{module}."):
                raise ModuleConfigurationError(
                    module, f"declares job kind '{kind}' outside its namespace", f"name it '{module}.<job>'"
                )
            kinds[kind] = (module, handler)
    return kinds


def start_job(kind: str, params: dict[str, Any], user: User | None) -> Job:
    """Record a job and enqueue it once the current transaction commits."""
    if kind not in job_kinds():
        raise ServiceError("UNKNOWN_JOB_KIND", f"No enabled module runs jobs of kind '{kind}'.")
    module, _ = job_kinds()[kind]
    job = Job.objects.create(kind=kind, module=module, params=params, created_by=user)
    transaction.on_commit(lambda: enqueue(job))
    return job


def enqueue(job: Job) -> None:
    import django_rq

    queue = django_rq.get_queue("default")
    # The RQ job id is ours, so enqueuing the same job twice is visible, not a second run.
    queue.enqueue("core.jobs.run_job", str(job.pk), job_id=f"coremis-{job.pk}-{job.attempts}")


def run_job(job_id: str) -> Any:
    """RQ entry point. Running a job that already finished does nothing (idempotent)."""
    claimed = Job.objects.filter(pk=job_id, state__in=[Job.QUEUED, Job.RUNNING]).update(
        state=Job.RUNNING,
        started_at=timezone.now(),
        heartbeat_at=timezone.now(),
        attempts=F("attempts") + 1,
        worker_name=_current_worker_name(),
    )
    if not claimed:
        log.info("job already finished or missing", extra={"job": job_id})
        return None
    job = Job.objects.select_related("created_by").get(pk=job_id)
    _, handler = job_kinds()[job.kind]
    context = JobContext(job=job, user=job.created_by, params=job.params)
    log.info("job started", extra={"job": job_id, "kind": job.kind, "attempt": job.attempts})
    try:
        result = handler(context)
    except ServiceError as exc:
        _finish(job, Job.FAILED, message=exc.message)
        return None
    except Exception:
        # The message is read by users: a reference to the logged trace, not the exception.
        reference = str(uuid.uuid4())
        log.exception("job crashed", extra={"job": job_id, "kind": job.kind, "reference": reference})
        _finish(job, Job.FAILED, message=f"Internal error; it was logged with the reference {reference}.",
                trace=traceback.format_exc())
        raise
    # A handler may name the final state (an all-or-nothing import that refused is FAILED), or
    # WAITING when the job pauses for a person; otherwise row errors make a job PARTIAL.
    state = Job.PARTIAL if job.error_count else Job.SUCCEEDED
    if isinstance(result, dict) and result.get("state") in Job.FINAL_STATES | {Job.WAITING}:
        state = result.pop("state")
    _finish(job, state, result=result)
    return result


def _finish(job: Job, state: str, *, message: str = "", result: Any = None, trace: str = "") -> None:
    changes: dict[str, Any] = {
        "state": state, "finished_at": timezone.now() if state in Job.FINAL_STATES else None, "result": result,
    }
    if message:
        changes["message"] = message
    Job.objects.using(progress_db()).filter(pk=job.pk).update(**changes)
    for key, value in changes.items():
        setattr(job, key, value)
    log.info("job finished", extra={"job": str(job.pk), "state": state, "trace": trace or None})


def _current_worker_name() -> str:
    from rq import get_current_job

    current = get_current_job()
    return str(current.worker_name or "") if current is not None else ""


def _worker_is_alive(worker: Any) -> bool:
    """RQ keeps a killed worker's record until its key expires (up to minutes); on this host
    the process table says at once whether it is still there."""
    import socket

    if worker.hostname != socket.gethostname() or not worker.pid:
        return True
    try:
        os.kill(worker.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def live_worker_names() -> set[str]:
    import django_rq
    from rq import Worker

    connection = django_rq.get_connection("default")
    return {w.name for w in Worker.all(connection=connection) if _worker_is_alive(w)}


def requeue_stale_jobs(older_than: timedelta = timedelta(minutes=5)) -> list[str]:
    """Re-enqueue RUNNING jobs whose worker died: no live RQ worker has the name the job
    recorded when it started, or the job sent no progress heartbeat for ``older_than``.

    Handlers are written to be restartable: a job run again continues or redoes its work
    without duplicates.
    """
    limit = timezone.now() - older_than
    running = list(Job.objects.filter(state=Job.RUNNING))
    if not running:
        return []
    alive = live_worker_names() if any(j.worker_name for j in running) else set()
    stale = [
        job for job in running
        if (job.worker_name and job.worker_name not in alive)
        or (job.heartbeat_at is not None and job.heartbeat_at < limit)
    ]
    requeued = []
    for job in stale:
        if Job.objects.filter(pk=job.pk, state=Job.RUNNING, attempts=job.attempts).update(state=Job.QUEUED):
            enqueue(job)
            requeued.append(str(job.pk))
    return requeued
