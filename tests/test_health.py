"""``/health``: a verdict for anyone, the report for staff; workers judged by their heartbeat,
stuck jobs (lease lapsed) and the last run of every schedule reported."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from core.auth.tokens import issue
from core.cron import SWEEP, schedules, tick
from core.models import Job, ScheduleRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def workers() -> Any:
    """RQ worker records in the real Redis, removed afterwards."""
    import django_rq
    from rq import Worker

    made: list[Any] = []

    def register(name: str, heartbeat_seconds_ago: float = 0) -> Any:
        worker = Worker([django_rq.get_queue("default")], connection=django_rq.get_connection("default"), name=name)
        worker.register_birth()
        beat = datetime.now(UTC) - timedelta(seconds=heartbeat_seconds_ago)
        worker.connection.hset(worker.key, "last_heartbeat", beat.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
        made.append(worker)
        return worker

    yield register
    for worker in made:
        worker.register_death()
        worker.connection.delete(worker.key)


def report(client: Any, user: Any, query: str = "") -> tuple[int, dict[str, Any]]:
    response = client.get(f"/health{query}", HTTP_AUTHORIZATION=f"Bearer {issue(user).token}")
    assert response["Content-Type"] == "application/json", response.content
    return response.status_code, json.loads(response.content)


def test_anyone_gets_the_verdict_in_one_word_and_nothing_else(client: Any, make_user: Any) -> None:
    for headers in ({}, {"HTTP_AUTHORIZATION": f"Bearer {issue(make_user(['core.job.view'])).token}"}):
        response = client.get("/health", **headers)
        assert response.status_code in (200, 503)
        assert response.content in (b"ok", b"degraded")
        assert response["Content-Type"].startswith("text/plain")


def test_staff_with_the_right_read_the_report(client: Any, make_user: Any, admin_user: Any) -> None:
    status, body = report(client, make_user(["core.health.view"]))
    assert set(body["checks"]) >= {"database", "migrations", "redis", "worker", "jobs", "scheduler", "approvals"}
    assert body["status"] == ("ok" if status == 200 else "degraded")
    client.force_login(admin_user)  # a superuser's session (Django admin) reads it too
    assert client.get("/health")["Content-Type"] == "application/json"


def test_a_probe_asks_only_for_the_checks_it_cares_about(client: Any) -> None:
    response = client.get("/health?checks=database,redis,migrations")
    assert (response.status_code, response.content) == (200, b"ok")  # no worker needed for that verdict
    unknown = client.get("/health?checks=database,nonsense")
    assert unknown.status_code == 400
    assert json.loads(unknown.content)["error"]["code"] == "UNKNOWN_CHECK"


def test_workers_are_live_by_their_heartbeat(client: Any, make_user: Any, workers: Any) -> None:
    staff = make_user(["core.health.view"])
    _, body = report(client, staff, "?checks=worker")
    assert body["checks"]["worker"]["ok"] is False

    workers("worker-that-died", heartbeat_seconds_ago=300)  # killed: RQ still holds its record
    status, body = report(client, staff, "?checks=worker")
    assert status == 503 and body["checks"]["worker"]["data"] == []
    assert "1 stopped worker(s) ignored" in body["checks"]["worker"]["detail"]

    workers("worker-alive", heartbeat_seconds_ago=5)
    status, body = report(client, staff, "?checks=worker")
    assert status == 200
    [live] = body["checks"]["worker"]["data"]
    assert live["name"] == "worker-alive" and 4 <= live["heartbeat_seconds_ago"] < 30


def test_jobs_whose_lease_lapsed_are_reported_and_stuck_ones_fail_the_check(client: Any, make_user: Any) -> None:
    staff = make_user(["core.health.view"])
    now = timezone.now()
    lapsing = Job.objects.create(kind="location.import", module="location", state=Job.RUNNING, worker_name="w1",
                                 lease_expires_at=now - timedelta(seconds=5))
    status, body = report(client, staff, "?checks=jobs")
    assert status == 200  # the scheduler has a moment to deal with it
    assert [j["id"] for j in body["checks"]["jobs"]["data"]] == [str(lapsing.pk)]
    assert "1 with a lapsed lease" in body["checks"]["jobs"]["detail"]

    stuck = Job.objects.create(kind="payroll.send", module="payroll", state=Job.RUNNING, worker_name="w2",
                               lease_expires_at=now - timedelta(minutes=10))
    status, body = report(client, staff, "?checks=jobs")
    assert status == 503
    jobs = body["checks"]["jobs"]
    assert jobs["data"][0]["id"] == str(stuck.pk) and jobs["data"][0]["lease_lapsed_seconds_ago"] >= 599
    assert "but has not for 1" in jobs["detail"]


def test_the_scheduler_and_the_last_run_of_every_schedule(client: Any, make_user: Any) -> None:
    staff = make_user(["core.health.view"])
    status, body = report(client, staff, "?checks=scheduler")
    assert status == 503 and "no scheduler has run" in body["checks"]["scheduler"]["detail"]

    tick(schedules())  # what the scheduler does every few seconds
    status, body = report(client, staff, "?checks=scheduler")
    assert status == 200, body
    names = [s["name"] for s in body["checks"]["scheduler"]["data"]]
    assert "payroll:payroll.poll" in names
    poll = next(s for s in body["checks"]["scheduler"]["data"] if s["name"] == "payroll:payroll.poll")
    assert poll["cron"] == "*/15 * * * *" and poll["next_run_at"]

    ScheduleRun.objects.filter(name=SWEEP).update(last_run_at=timezone.now() - timedelta(minutes=5))
    ScheduleRun.objects.filter(name="payroll:payroll.poll").update(
        last_run_at=timezone.now() - timedelta(hours=2), since=timezone.now() - timedelta(hours=3))
    status, body = report(client, staff, "?checks=scheduler")
    detail = body["checks"]["scheduler"]["detail"]
    assert status == 503
    assert "the scheduler has not swept for 300 s" in detail and "payroll:payroll.poll was due at" in detail
