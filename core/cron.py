"""The scheduler: ``manage.py scheduler`` (``coremis run`` and the compose file run one).

Every few seconds it sweeps the jobs (:func:`core.jobs.sweep`: lost runs retried, due jobs
resumed, jobs the queue lost handed over again), and it starts the periodic jobs modules
declare through ``coremis_schedules`` as ordinary jobs, which workers run and ``jobs`` lists.

It works on the database, and on Redis only to hand jobs over, in its own process, so it does
not wait behind a long job for a free worker, and it keeps going while either server is away:
a tick that fails is logged and tried again at the next one.

``ScheduleRun`` keeps when each schedule last fired (``/health`` reports it). A schedule
missed while no scheduler ran fires once when one starts again. Several schedulers may run
(one per compose replica): a schedule's run is claimed by a conditional update, so it fires
once.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from croniter import croniter
from django.db import connections, transaction
from django.utils import timezone

from core.actors import system_actor
from core.errors import ModuleConfigurationError
from core.jobs import env_number, job_kinds, start_job, sweep
from core.models import Job, ScheduleRun

log = logging.getLogger("coremis.scheduler")

SWEEP = "core.sweep"  # the ScheduleRun row that says when the scheduler last swept


@dataclass(frozen=True)
class Schedule:
    name: str
    kind: str
    cron: str
    params: dict[str, Any] = field(default_factory=dict)

    def next_after(self, moment: datetime) -> datetime:
        """The first time after ``moment`` the cron expression names, in the server's time zone."""
        local = timezone.localtime(moment)
        following = croniter(self.cron, local.replace(tzinfo=None)).get_next(datetime)
        return timezone.make_aware(following, local.tzinfo)

    def due_since(self, run: ScheduleRun, now: datetime) -> datetime | None:
        """The time it was due if it is due now (missed runs count once), else None."""
        due = self.next_after(run.last_run_at or run.since)
        return due if due <= now else None


def sweep_seconds() -> float:
    return env_number("COREMIS_SCHEDULER_SWEEP_SECONDS", 5)


def schedules() -> list[Schedule]:
    """Every schedule the enabled modules declare, checked against their job kinds."""
    from core.hooks import results_by_module

    found: list[Schedule] = []
    for module, declared in results_by_module("coremis_schedules"):
        for schedule in declared:
            kind = schedule["kind"]
            if kind not in job_kinds() or job_kinds()[kind][0] != module:
                raise ModuleConfigurationError(
                    module, f"schedules job kind '{kind}', which it does not declare in coremis_jobs",
                    "declare the job kind or fix the schedule",
                )
            if not croniter.is_valid(schedule["cron"]):
                raise ModuleConfigurationError(
                    module, f"schedules '{kind}' with the cron expression '{schedule['cron']}', which is not one",
                    "use five fields, for example '*/15 * * * *'",
                )
            found.append(Schedule(f"{module}:{kind}", kind, schedule["cron"], dict(schedule.get("params") or {})))
    return found


def fire_due(schedule: Schedule, now: datetime | None = None) -> Job | None:
    """Start ``schedule``'s job if it is due, as the system actor; None if not due or another
    scheduler fired it first."""
    now = now or timezone.now()
    run, _ = ScheduleRun.objects.get_or_create(name=schedule.name,
                                               defaults={"kind": schedule.kind, "cron": schedule.cron})
    due = schedule.due_since(run, now)
    if due is None:
        return None
    with transaction.atomic():
        claimed = ScheduleRun.objects.filter(name=schedule.name, last_run_at=run.last_run_at).update(
            last_run_at=now, kind=schedule.kind, cron=schedule.cron, last_error="")
        if not claimed:
            return None
        job = start_job(schedule.kind, schedule.params, system_actor())
        ScheduleRun.objects.filter(name=schedule.name).update(last_job=job)
    # DEBUG: the job's own lines say at INFO whether the run did anything (a run that found
    # nothing to do stays at DEBUG), so an idle system prints nothing every minute.
    log.debug("schedule fired", extra={"schedule": schedule.name, "job": str(job.pk), "due": due.isoformat()})
    return job


@contextmanager
def tolerated(what: str, schedule: str | None = None) -> Iterator[None]:
    """Log what a tick could not do (the database or Redis is away) and carry on."""
    try:
        yield
    except Exception as exc:
        log.warning("scheduler could not %s; trying again at the next tick", what,
                    extra={"schedule": schedule, "error": str(exc)})
        # A connection that broke under us must not be reused: the next tick reconnects.
        for conn in connections.all():
            with suppress(Exception):
                conn.close()
        if schedule is not None:
            with suppress(Exception):
                ScheduleRun.objects.filter(name=schedule).update(last_error=str(exc)[:500])


def tick(known: list[Schedule]) -> None:
    """One round: sweep the jobs, record that it did, fire what is due."""
    with tolerated("sweep the jobs"):
        report = sweep()
        if report:
            log.info("swept jobs", extra={k: v for k, v in vars(report).items() if v})
        ScheduleRun.objects.update_or_create(name=SWEEP, defaults={"last_run_at": timezone.now(),
                                                                   "last_error": ""})
    for schedule in known:
        with tolerated("fire a schedule", schedule.name):
            fire_due(schedule)


def run_scheduler(stop: threading.Event, every: float | None = None) -> None:
    """Tick until ``stop`` is set. Schedules are read once: a module change means a restart."""
    known = schedules()
    every = every or sweep_seconds()
    log.info("scheduler started", extra={"pid": os.getpid(), "schedules": [s.name for s in known],
                                         "sweep_seconds": every})
    while not stop.is_set():
        started = time.monotonic()
        tick(known)
        stop.wait(max(0.0, every - (time.monotonic() - started)))
    log.info("scheduler stopped", extra={"pid": os.getpid()})
