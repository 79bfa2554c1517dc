"""The scheduler: periodic jobs fire once (missed ones once when it starts again), and a tick
survives the database going away; as a process it retries lost jobs with nobody's help."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from typing import Any

import pytest
from django.db import connections, transaction
from django.utils import timezone

import core.jobs.outbox
import core.jobs.runner
from core.actors import SYSTEM_ACTOR_ID
from core.cron import SWEEP, Schedule, fire_due, schedules, tick
from core.errors import ServiceError
from core.jobs import NOTHING_TO_DO, JobContext, start_job
from core.loader import REPO_ROOT
from core.models import Job, Role, ScheduleRun

POLL = Schedule("payroll:payroll.poll", "payroll.poll", "*/15 * * * *")


@pytest.mark.django_db
def test_the_modules_schedules_are_read_and_checked() -> None:
    assert POLL in schedules()


@pytest.mark.django_db
def test_a_schedule_fires_when_due_as_an_ordinary_job_and_once() -> None:
    assert fire_due(POLL) is None  # first seen now: its first run is the next quarter hour
    run = ScheduleRun.objects.get(name=POLL.name)
    assert (run.kind, run.cron, run.last_run_at) == ("payroll.poll", "*/15 * * * *", None)

    ScheduleRun.objects.filter(name=POLL.name).update(since=timezone.now() - timedelta(minutes=16))
    job = fire_due(POLL)
    assert job is not None and (job.kind, job.state, job.created_by_id) == ("payroll.poll", Job.QUEUED, SYSTEM_ACTOR_ID)
    run.refresh_from_db()
    assert run.last_job_id == job.pk and run.last_run_at is not None
    assert fire_due(POLL) is None  # a second scheduler, or the next tick: already fired
    assert Job.objects.filter(kind="payroll.poll").count() == 1


@pytest.mark.django_db
def test_runs_missed_while_no_scheduler_ran_fire_once() -> None:
    ScheduleRun.objects.create(name=POLL.name, kind=POLL.kind, cron=POLL.cron,
                               since=timezone.now() - timedelta(days=1),
                               last_run_at=timezone.now() - timedelta(hours=3))  # 12 runs missed
    assert fire_due(POLL) is not None
    assert fire_due(POLL) is None
    assert Job.objects.filter(kind="payroll.poll").count() == 1


@pytest.mark.django_db(transaction=True, databases=["default", "progress"])
def test_a_tick_survives_losing_its_database_and_the_next_one_works() -> None:
    tick([])
    first = ScheduleRun.objects.get(name=SWEEP).last_run_at
    mine = connections["default"].cursor().connection.info.backend_pid
    with connections["progress"].cursor() as cursor:  # PostgreSQL ends our session, as in a restart
        cursor.execute("SELECT pg_terminate_backend(%s)", [mine])
    tick([])  # logs and carries on
    tick([])
    assert ScheduleRun.objects.get(name=SWEEP).last_run_at > first


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_scheduler_process_retries_a_lost_job_by_itself_and_stops_on_sigterm(settings: Any,
                                                                                  database_url: str) -> None:
    lost = Job.objects.create(kind="payroll.poll", module="payroll", state=Job.RUNNING, attempts=1,
                              worker_name="killed", lease_expires_at=timezone.now() - timedelta(seconds=1))
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": settings.REDIS_URL, "COREMIS_DEBUG": "1",
           "COREMIS_SCHEDULER_SWEEP_SECONDS": "0.3", "COREMIS_LOG_LEVEL": "WARNING"}
    process = subprocess.Popen([sys.executable, "manage.py", "scheduler"], cwd=REPO_ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while Job.objects.get(pk=lost.pk).state == Job.RUNNING and time.monotonic() < deadline:
            time.sleep(0.2)
        lost.refresh_from_db()
        assert (lost.state, lost.failures) == (Job.QUEUED, 1)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert code == 0, process.stderr.read().decode()[-2000:] if process.stderr else ""


@pytest.fixture
def tidy(monkeypatch: pytest.MonkeyPatch) -> Schedule:
    """A periodic job of a module named ``test`` that removes stale roles, if there are any."""

    def remove_stale_roles(ctx: JobContext) -> dict[str, Any]:
        if ctx.params.get("refuse"):
            raise ServiceError("NOT_NOW", "The roles are locked for an audit.")
        removed, _ = Role.objects.filter(name__startswith="stale ").delete()
        return {"removed": removed, NOTHING_TO_DO: removed == 0}

    registered = {"test.tidy": ("test", remove_stale_roles)}
    for where in (core.jobs.outbox, core.jobs.runner):  # who looks kinds up
        monkeypatch.setattr(where, "job_kinds", lambda: registered)
    return Schedule("test:test.tidy", "test.tidy", "* * * * *")


def fire_and_run(schedule: Schedule, run_jobs: Any, caplog: pytest.LogCaptureFixture) -> tuple[Job, list[Any]]:
    """Fire ``schedule`` as the scheduler does when it is due, run its job in a worker, and
    return the job with the log records of both."""
    ScheduleRun.objects.update_or_create(name=schedule.name, defaults={
        "kind": schedule.kind, "cron": schedule.cron, "since": timezone.now() - timedelta(minutes=2),
        "last_run_at": None})
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        job = fire_due(schedule)
        assert job is not None
        assert run_jobs() == 1
    job.refresh_from_db()
    return job, [r for r in caplog.records if r.name.startswith("coremis.")]


def said(records: list[Any], level: int) -> list[str]:
    return [r.getMessage() for r in records if r.levelno == level]


@pytest.mark.django_db(transaction=True, databases=["default", "progress"])
def test_a_scheduled_run_with_nothing_to_do_logs_at_debug_only(
    tidy: Schedule, run_jobs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    job, records = fire_and_run(tidy, run_jobs, caplog)
    assert (job.state, job.result) == (Job.SUCCEEDED, {"removed": 0})  # the marker is not stored
    assert said(records, logging.DEBUG) == ["schedule fired", "job started", "job finished"]
    assert [r for r in records if r.levelno >= logging.INFO] == []


@pytest.mark.django_db(transaction=True, databases=["default", "progress"])
def test_a_scheduled_run_that_did_work_or_failed_still_logs_its_outcome_at_info(
    tidy: Schedule, run_jobs: Any, caplog: pytest.LogCaptureFixture, admin_user: Any
) -> None:
    Role.objects.create(name="stale clerk")
    job, records = fire_and_run(tidy, run_jobs, caplog)
    assert (job.state, job.result) == (Job.SUCCEEDED, {"removed": 1})
    [finished] = [r for r in records if r.levelno == logging.INFO]
    assert (finished.getMessage(), finished.kind, finished.state) == ("job finished", "test.tidy", Job.SUCCEEDED)

    refusing = Schedule("test:test.tidy:refuse", "test.tidy", "* * * * *", {"refuse": True})
    job, records = fire_and_run(refusing, run_jobs, caplog)
    assert (job.state, job.error_code) == (Job.FAILED, "NOT_NOW")
    [finished] = [r for r in records if r.levelno == logging.INFO]
    assert (finished.getMessage(), finished.state) == ("job finished", Job.FAILED)

    # the same kind started by a person: its start is news too
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        with transaction.atomic():
            mine = start_job("test.tidy", {}, admin_user)
        assert run_jobs() == 1
    mine.refresh_from_db()
    assert mine.state == Job.SUCCEEDED
    assert said([r for r in caplog.records if r.name == "coremis.jobs"], logging.INFO) == ["job started"]
