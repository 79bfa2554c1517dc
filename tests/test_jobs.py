"""Background jobs: enqueued only after commit, run once, failures and progress visible."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction

import core.jobs
from core.errors import ServiceError
from core.jobs import JobContext, run_job, start_job
from core.models import Job, Role


def with_real_commits(test: Any) -> Any:
    """Real commits, with progress on its own connection as in a worker process."""
    test = pytest.mark.usefixtures("transactional_db")(test)
    return pytest.mark.django_db(transaction=True, databases=["default", "progress"])(test)


class Rollback(Exception):
    pass


@pytest.fixture
def calls() -> list[dict[str, Any]]:
    return []


@pytest.fixture
def kinds(monkeypatch: pytest.MonkeyPatch, calls: list[dict[str, Any]]) -> dict[str, Any]:
    """Test job kinds, registered as if a module named ``test`` declared them."""

    def echo(ctx: JobContext) -> dict[str, Any]:
        calls.append(dict(ctx.params))
        ctx.progress(3, total=3, stage="echo")
        return {"echoed": ctx.params.get("text")}

    def refuses(ctx: JobContext) -> None:
        calls.append(dict(ctx.params))
        raise ServiceError("BAD_FILE", "The file has no header row.")

    def crashes(ctx: JobContext) -> None:
        calls.append(dict(ctx.params))
        raise ZeroDivisionError("division by zero")

    def rolls_back_after_progress(ctx: JobContext) -> None:
        with transaction.atomic():
            Role.objects.create(name="written by the job's own transaction")
            ctx.progress(7, total=10, stage="rows")
            raise ServiceError("ROW_7_BAD", "Row 7 is invalid; nothing was imported.")

    def some_rows_fail(ctx: JobContext) -> dict[str, Any]:
        ctx.report_errors([{"row": 2, "code": "REQUIRED", "message": "name is required"}])
        ctx.progress(10, total=10)
        return {"created": 9}

    registered = {
        f"test.{h.__name__}": ("test", h)
        for h in (echo, refuses, crashes, rolls_back_after_progress, some_rows_fail)
    }
    monkeypatch.setattr(core.jobs, "job_kinds", lambda: registered)
    return registered


def rq_ids(queue: Any) -> list[str]:
    return list(queue.job_ids)


def test_a_job_started_in_a_rolled_back_transaction_is_never_enqueued(
    kinds: Any, redis_queue: Any, admin_user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(Rollback), transaction.atomic():
            job = start_job("test.echo", {"text": "hi"}, admin_user)
            raise Rollback
    assert callbacks == []
    assert rq_ids(redis_queue) == []
    assert not Job.objects.filter(pk=job.pk).exists()


def test_a_job_started_in_a_committed_transaction_is_enqueued_once(
    kinds: Any, redis_queue: Any, admin_user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        job = start_job("test.echo", {"text": "hi"}, admin_user)
        assert rq_ids(redis_queue) == []  # not before commit
    assert callbacks
    assert rq_ids(redis_queue) == [f"coremis-{job.pk}-0"]
    stored = Job.objects.get(pk=job.pk)
    assert (stored.state, stored.module, stored.created_by_id) == (Job.QUEUED, "test", admin_user.pk)


def test_an_unknown_kind_is_refused(kinds: Any, redis_queue: Any, admin_user: Any) -> None:
    with pytest.raises(ServiceError) as refused:
        start_job("nosuch.import", {}, admin_user)
    assert refused.value.code == "UNKNOWN_JOB_KIND"
    assert "nosuch.import" in refused.value.message
    assert not Job.objects.exists()


@with_real_commits
def test_a_worker_runs_a_committed_job_to_success(
    kinds: Any, calls: list[dict[str, Any]], redis_queue: Any, run_jobs: Any, admin_user: Any
) -> None:
    job = start_job("test.echo", {"text": "hello"}, admin_user)
    assert run_jobs() == 1
    job.refresh_from_db()
    assert job.state == Job.SUCCEEDED
    assert job.result == {"echoed": "hello"}
    assert (job.processed, job.total, job.stage, job.attempts) == (3, 3, "echo", 1)
    assert job.started_at is not None and job.finished_at is not None
    assert calls == [{"text": "hello"}]


@with_real_commits
def test_running_a_finished_job_does_nothing(kinds: Any, calls: list[dict[str, Any]]) -> None:
    job = Job.objects.create(kind="test.echo", module="test", params={"text": "again"})
    assert run_job(str(job.pk)) == {"echoed": "again"}
    job.refresh_from_db()
    finished_at = job.finished_at

    assert run_job(str(job.pk)) is None
    job.refresh_from_db()
    assert calls == [{"text": "again"}]
    assert (job.state, job.attempts, job.finished_at) == (Job.SUCCEEDED, 1, finished_at)


@with_real_commits
def test_a_cancelled_or_failed_job_is_not_run(kinds: Any, calls: list[dict[str, Any]]) -> None:
    for state in (Job.CANCELLED, Job.FAILED):
        job = Job.objects.create(kind="test.echo", module="test", state=state)
        assert run_job(str(job.pk)) is None
        job.refresh_from_db()
        assert (job.state, job.attempts, job.started_at) == (state, 0, None)
    assert calls == []


@with_real_commits
def test_a_refusing_handler_leaves_the_job_failed_with_its_message(kinds: Any) -> None:
    job = Job.objects.create(kind="test.refuses", module="test")
    assert run_job(str(job.pk)) is None
    job.refresh_from_db()
    assert job.state == Job.FAILED
    assert job.message == "The file has no header row."
    assert job.finished_at is not None


@with_real_commits
def test_a_crashing_handler_leaves_the_job_failed_and_tells_the_worker(kinds: Any) -> None:
    job = Job.objects.create(kind="test.crashes", module="test")
    with pytest.raises(ZeroDivisionError):
        run_job(str(job.pk))
    job.refresh_from_db()
    assert job.state == Job.FAILED
    # users read the message: a reference to the logged trace, never the exception's text
    assert job.message.startswith("Internal error; it was logged with the reference ")
    assert "ZeroDivisionError" not in job.message
    assert job.finished_at is not None


@with_real_commits
def test_progress_survives_the_rollback_of_the_jobs_own_transaction(kinds: Any) -> None:
    job = Job.objects.create(kind="test.rolls_back_after_progress", module="test")
    run_job(str(job.pk))
    job.refresh_from_db()
    # written on the progress connection, so visible while (and after) the job's work is undone
    assert (job.processed, job.total, job.stage) == (7, 10, "rows")
    assert job.heartbeat_at is not None
    assert job.state == Job.FAILED
    assert job.message == "Row 7 is invalid; nothing was imported."
    assert not Role.all_objects.exists()


@with_real_commits
def test_row_errors_make_a_job_partial_and_are_kept(kinds: Any) -> None:
    job = Job.objects.create(kind="test.some_rows_fail", module="test")
    run_job(str(job.pk))
    job.refresh_from_db()
    assert job.state == Job.PARTIAL
    assert job.error_count == 1
    assert job.errors == [{"row": 2, "code": "REQUIRED", "message": "name is required"}]
    assert job.result == {"created": 9}
