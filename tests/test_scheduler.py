"""The scheduler: periodic jobs fire once (missed ones once when it starts again), and a tick
survives the database going away; as a process it retries lost jobs with nobody's help."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from typing import Any

import pytest
from django.db import connections
from django.utils import timezone

from core.actors import SYSTEM_ACTOR_ID
from core.cron import SWEEP, Schedule, fire_due, schedules, tick
from core.loader import REPO_ROOT
from core.models import Job, ScheduleRun

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
