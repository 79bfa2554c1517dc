"""Periodic work, read by the scheduler process: ``manage.py rqcron core.cron``.

It registers the core's own housekeeping and every schedule modules declare through
``coremis_schedules``. The scheduler only enqueues; workers run the jobs.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from rq import cron

from core.hooks import results_by_module
from core.jobs import job_kinds, requeue_stale_jobs, start_job
from core.loader import ModuleConfigurationError


def start_scheduled_job(kind: str, params: dict[str, Any]) -> str:
    """Record a module's scheduled job (as the system, no user) and enqueue it on commit."""
    with transaction.atomic():
        job = start_job(kind, params, None)
    return str(job.pk)


def register_all() -> int:
    count = 0
    # A worker killed mid-job leaves it RUNNING without heartbeats; this gives it back to the queue.
    cron.register(requeue_stale_jobs, "default", interval=120, name="core.requeue_stale_jobs")
    count += 1
    for module, schedules in results_by_module("coremis_schedules"):
        for schedule in schedules:
            kind = schedule["kind"]
            if kind not in job_kinds() or job_kinds()[kind][0] != module:
                raise ModuleConfigurationError(
                    module, f"schedules job kind '{kind}', which it does not declare in coremis_jobs",
                    "declare the job kind or fix the schedule",
                )
            cron.register(
                start_scheduled_job, "default",
                kwargs={"kind": kind, "params": schedule.get("params", {})},
                cron=schedule["cron"], name=f"{module}:{kind}",
            )
            count += 1
    return count


register_all()
