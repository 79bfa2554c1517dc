"""Background jobs: handed to the queue only after commit and even if Redis was away then,
leased while they run, retried by themselves with back-off when a run is lost, failed after
too many lost runs, cancelled and retried by people, and always ending with a stage and a
message that say what happened."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

import core.jobs.outbox
import core.jobs.runner
from core.errors import ServiceError
from core.jobs import JobContext, cancel_job, retry_job, run_job, start_job, sweep
from core.models import Job, JobEvent, MutationLog, Role


def with_real_commits(test: Any) -> Any:
    """Real commits, with progress on its own connection as in a worker process."""
    test = pytest.mark.usefixtures("transactional_db")(test)
    return pytest.mark.django_db(transaction=True, databases=["default", "progress"])(test)


class Rollback(Exception):
    pass


@pytest.fixture
def calls() -> list[dict[str, Any]]:
    return []


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COREMIS_JOB_RETRY_SECONDS", "1")
    monkeypatch.setenv("COREMIS_JOB_DISPATCH_GRACE_SECONDS", "0.01")


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

    def counts(ctx: JobContext) -> dict[str, Any]:
        calls.append(dict(ctx.params))
        return {"created": 1234, "skipped": 5, "plan": "CT-1"}

    def chunks(ctx: JobContext) -> dict[str, Any]:
        """Commits a role per chunk and reports progress between them, like enrollment."""
        made = 0
        for n in range(int(ctx.params.get("chunks", 3))):
            Role.objects.create(name=f"chunk {n}")
            made += 1
            calls.append({"chunk": n})
            ctx.progress(made, total=int(ctx.params.get("chunks", 3)), stage="chunks")
        return {"created": made}

    def waits(ctx: JobContext) -> dict[str, Any]:
        calls.append(dict(ctx.params))
        if len(calls) == 1:
            return {"state": "WAITING", "resume_after": 0.05, "message": "The provider is silent; 3 left."}
        return {"sent": 3}

    def loses_the_database(ctx: JobContext) -> None:
        calls.append(dict(ctx.params))
        with connection.cursor() as cursor:  # its own server process ends, as when PostgreSQL restarts
            cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    def busy(ctx: JobContext) -> dict[str, Any]:
        """A long statement with no progress in between: only the heartbeat keeps its lease."""
        before = Job.objects.using("progress").get(pk=ctx.job.pk).lease_expires_at
        time.sleep(float(ctx.params["seconds"]))
        report = sweep()  # another scheduler looks at it while it works
        after = Job.objects.using("progress").get(pk=ctx.job.pk).lease_expires_at
        return {"renewed": after > before, "retried": len(report.retried)}

    registered = {
        f"test.{h.__name__}": ("test", h)
        for h in (echo, refuses, crashes, rolls_back_after_progress, some_rows_fail, counts, chunks, waits,
                  loses_the_database, busy)
    }
    for where in (core.jobs.outbox, core.jobs.runner):  # who looks kinds up
        monkeypatch.setattr(where, "job_kinds", lambda: registered)
    return registered


def rq_ids(queue: Any) -> list[str]:
    return list(queue.job_ids)


def events(job: Job) -> list[str]:
    return list(JobEvent.objects.filter(job=job).order_by("at", "id").values_list("event", flat=True))


def lapse(job: Job, attempts: int = 1, **fields: Any) -> Job:
    """What a killed work horse leaves: RUNNING, a lease in the past, no more heartbeats."""
    past = timezone.now() - timedelta(seconds=40)
    Job.objects.filter(pk=job.pk).update(state=Job.RUNNING, attempts=attempts, worker_name="killed-worker",
                                         heartbeat_at=past, lease_expires_at=past + timedelta(seconds=30), **fields)
    job.refresh_from_db()
    return job


def make_due(job: Job) -> None:
    Job.objects.filter(pk=job.pk).update(available_at=timezone.now() - timedelta(seconds=1))


# --- handing jobs to the queue ---------------------------------------------------------------


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
    assert stored.dispatched_at is not None
    assert sweep().dispatched == []  # on the queue: not handed over a second time
    assert rq_ids(redis_queue) == [f"coremis-{job.pk}-0"]


def test_an_unknown_kind_is_refused(kinds: Any, redis_queue: Any, admin_user: Any) -> None:
    with pytest.raises(ServiceError) as refused:
        start_job("nosuch.import", {}, admin_user)
    assert refused.value.code == "UNKNOWN_JOB_KIND"
    assert "nosuch.import" in refused.value.message
    assert not Job.objects.exists()


@with_real_commits
def test_a_job_committed_while_redis_is_away_runs_once_redis_answers(
    kinds: Any, calls: list[dict[str, Any]], redis_queue: Any, run_jobs: Any, admin_user: Any, settings: Any
) -> None:
    reachable = settings.RQ_QUEUES
    settings.RQ_QUEUES = {"default": {**reachable["default"], "URL": "unix:///tmp/coremis-no-redis-here.sock"}}
    with transaction.atomic():  # the request commits; Redis refuses the hand-over
        job = start_job("test.echo", {"text": "later"}, admin_user)
    job.refresh_from_db()
    assert (job.state, job.dispatched_at) == (Job.QUEUED, None)
    assert sweep().dispatched == []  # Redis still away: the sweep cannot hand it over either

    settings.RQ_QUEUES = reachable
    time.sleep(0.05)
    assert sweep().dispatched == [str(job.pk)]
    assert run_jobs() == 1
    job.refresh_from_db()
    assert job.state == Job.SUCCEEDED and calls == [{"text": "later"}]


@with_real_commits
def test_a_queued_job_the_queue_lost_is_handed_over_again_and_runs_once(
    kinds: Any, calls: list[dict[str, Any]], redis_queue: Any, run_jobs: Any, admin_user: Any
) -> None:
    job = start_job("test.echo", {"text": "lost"}, admin_user)
    redis_queue.empty()  # Redis restarted without it, or a worker took it and died before starting it
    time.sleep(0.05)
    assert sweep().dispatched == [str(job.pk)]
    assert events(job) == [JobEvent.DISPATCHED_AGAIN]
    assert run_jobs() == 1
    assert sweep().dispatched == []
    assert calls == [{"text": "lost"}] and Job.objects.get(pk=job.pk).state == Job.SUCCEEDED


# --- running ---------------------------------------------------------------------------------


@with_real_commits
def test_a_worker_runs_a_committed_job_to_success(
    kinds: Any, calls: list[dict[str, Any]], redis_queue: Any, run_jobs: Any, admin_user: Any
) -> None:
    job = start_job("test.echo", {"text": "hello"}, admin_user)
    assert run_jobs() == 1
    job.refresh_from_db()
    assert job.state == Job.SUCCEEDED
    assert job.result == {"echoed": "hello"}
    assert (job.processed, job.total, job.stage, job.attempts, job.failures) == (3, 3, "done", 1, 0)
    assert job.message == "Done: processed 3 of 3."
    assert job.started_at is not None and job.finished_at is not None and job.lease_expires_at is None
    assert calls == [{"text": "hello"}]
    assert events(job) == [JobEvent.STARTED, JobEvent.FINISHED]


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
def test_a_second_copy_of_a_running_job_does_not_run_it_twice(kinds: Any, calls: list[dict[str, Any]]) -> None:
    job = Job.objects.create(kind="test.echo", module="test", state=Job.RUNNING, attempts=1,
                             lease_expires_at=timezone.now() + timedelta(seconds=30))
    assert run_job(str(job.pk)) is None
    assert calls == [] and Job.objects.get(pk=job.pk).attempts == 1


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
    assert (job.state, job.stage) == (Job.FAILED, "failed")
    assert job.message == "The file has no header row."
    assert job.error_code == "BAD_FILE"  # the code of the handler's refusal, for clients to act on
    assert job.finished_at is not None


@with_real_commits
def test_a_crashing_handler_fails_the_job_with_a_message_for_people_and_tells_the_worker(kinds: Any) -> None:
    job = Job.objects.create(kind="test.crashes", module="test")
    with pytest.raises(ZeroDivisionError):
        run_job(str(job.pk))
    job.refresh_from_db()
    assert (job.state, job.stage) == (Job.FAILED, "failed")
    assert job.message == (f"Run 1 stopped on an internal error; the worker's log has the details under job "
                           f"{job.pk}. Retry the job once the cause is fixed.")
    assert "ZeroDivisionError" not in job.message and "division" not in job.message
    assert job.error_code == "INTERNAL"
    assert job.finished_at is not None


@with_real_commits
def test_progress_survives_the_rollback_of_the_jobs_own_transaction(kinds: Any) -> None:
    job = Job.objects.create(kind="test.rolls_back_after_progress", module="test")
    run_job(str(job.pk))
    job.refresh_from_db()
    # written on the progress connection, so visible while (and after) the job's work is undone
    assert (job.processed, job.total) == (7, 10)
    assert job.heartbeat_at is not None
    assert (job.state, job.stage) == (Job.FAILED, "failed")
    assert job.message == "Row 7 is invalid; nothing was imported."
    assert not Role.all_objects.exists()


@with_real_commits
def test_row_errors_make_a_job_partial_and_are_kept(kinds: Any) -> None:
    job = Job.objects.create(kind="test.some_rows_fail", module="test")
    run_job(str(job.pk))
    job.refresh_from_db()
    assert (job.state, job.stage) == (Job.PARTIAL, "partially_done")
    assert job.error_count == 1
    assert job.errors == [{"row": 2, "code": "REQUIRED", "message": "name is required"}]
    assert job.result == {"created": 9}
    assert job.message == "Done with 1 error: created 9."


@with_real_commits
def test_a_handler_without_a_message_ends_with_one_that_has_its_counts(kinds: Any) -> None:
    job = Job.objects.create(kind="test.counts", module="test")
    run_job(str(job.pk))
    job.refresh_from_db()
    assert (job.state, job.stage, job.message) == (Job.SUCCEEDED, "done", "Done: created 1,234, skipped 5.")


@with_real_commits
def test_a_job_whose_module_was_disabled_meanwhile_fails_saying_so(kinds: Any) -> None:
    job = Job.objects.create(kind="gone.import", module="gone")
    assert run_job(str(job.pk)) is None
    job.refresh_from_db()
    assert (job.state, job.message) == (Job.FAILED, "No enabled module runs jobs of kind 'gone.import'.")
    assert job.error_code == "KIND_UNAVAILABLE"


# --- leases: lost runs come back by themselves -----------------------------------------------


@with_real_commits
def test_a_run_whose_lease_lapsed_runs_again_after_a_back_off(
    kinds: Any, calls: list[dict[str, Any]], redis_queue: Any, run_jobs: Any, admin_user: Any
) -> None:
    job = lapse(start_job("test.echo", {"text": "again"}, admin_user))
    redis_queue.empty()

    report = sweep()
    assert report.retried == [str(job.pk)]
    job.refresh_from_db()
    assert (job.state, job.failures, job.lease_expires_at) == (Job.QUEUED, 1, None)
    assert job.available_at > timezone.now()  # back-off: not at once
    assert job.message == ("Run 1 was lost (its worker killed-worker stopped renewing the lease 40 s ago); "
                           "it runs again in 1 s (1 lost run of at most 5).")
    assert run_job(str(job.pk)) is None and calls == []  # not before its back-off
    assert sweep().dispatched == []

    make_due(job)
    assert sweep().dispatched == [str(job.pk)]
    assert redis_queue.job_ids == [f"coremis-{job.pk}-1"]
    assert run_jobs() == 1
    job.refresh_from_db()
    assert (job.state, job.attempts, job.failures) == (Job.SUCCEEDED, 2, 1)
    assert calls == [{"text": "again"}]
    assert events(job) == [JobEvent.LEASE_LAPSED, JobEvent.RETRY_SCHEDULED, JobEvent.STARTED, JobEvent.FINISHED]


@with_real_commits
def test_back_off_doubles_and_too_many_lost_runs_fail_the_job_with_a_clear_message(
    kinds: Any, redis_queue: Any, admin_user: Any
) -> None:
    job = Job.objects.create(kind="test.echo", module="test", max_failures=3)
    delays = []
    for attempt in (1, 2, 3):
        lapse(job, attempts=attempt)
        sweep()
        job.refresh_from_db()
        if job.state == Job.QUEUED:
            delays.append(round((job.available_at - timezone.now()).total_seconds()))
    assert delays == [1, 2]
    assert (job.state, job.stage, job.failures, job.error_code) == (Job.FAILED, "failed", 3, "RUNS_LOST")
    assert job.message == ("Gave up after 3 lost runs: the last one stopped because its worker killed-worker "
                           "stopped renewing the lease 40 s ago. What it had committed stays; retry the job "
                           "once the cause is fixed.")
    assert job.finished_at is not None
    assert events(job)[-2:] == [JobEvent.LEASE_LAPSED, JobEvent.GAVE_UP]


@with_real_commits
def test_the_heartbeat_keeps_the_lease_of_a_handler_busy_in_one_long_statement(
    kinds: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COREMIS_JOB_LEASE_SECONDS", "1")
    monkeypatch.setenv("COREMIS_JOB_HEARTBEAT_SECONDS", "0.2")
    job = Job.objects.create(kind="test.busy", module="test", params={"seconds": 2.5})
    result = run_job(str(job.pk))
    job.refresh_from_db()
    assert result == {"renewed": True, "retried": 0}
    assert (job.state, job.attempts, job.failures) == (Job.SUCCEEDED, 1, 0)


@with_real_commits
def test_a_run_that_lost_its_lease_stops_and_cannot_overwrite_the_next_run(kinds: Any) -> None:
    job = Job.objects.create(kind="test.chunks", module="test", params={"chunks": 3})

    def lose_the_lease_after_the_first_chunk(ctx: JobContext) -> Any:
        Role.objects.create(name="chunk 0")
        # meanwhile the scheduler saw the lease lapse and queued the job again
        Job.objects.filter(pk=ctx.job.pk).update(state=Job.QUEUED, failures=1)
        ctx.progress(1, 3, "chunks")
        Role.objects.create(name="never written")

    core.jobs.runner.job_kinds()["test.chunks"] = ("test", lose_the_lease_after_the_first_chunk)
    assert run_job(str(job.pk)) is None
    job.refresh_from_db()
    assert (job.state, job.failures, job.finished_at) == (Job.QUEUED, 1, None)
    assert list(Role.objects.values_list("name", flat=True)) == ["chunk 0"]
    assert events(job) == [JobEvent.STARTED]  # no outcome recorded by the stale run


@with_real_commits
def test_a_run_that_loses_its_database_gives_the_job_back_for_a_retry(
    kinds: Any, calls: list[dict[str, Any]]
) -> None:
    job = Job.objects.create(kind="test.loses_the_database", module="test")
    assert run_job(str(job.pk)) is None
    job.refresh_from_db()
    assert (job.state, job.failures) == (Job.QUEUED, 1)
    assert job.message.startswith("Run 1 was lost (it lost its connection to the database or Redis)")
    assert "SQL" not in job.message and "OperationalError" not in job.message
    assert events(job) == [JobEvent.STARTED, JobEvent.INTERRUPTED, JobEvent.RETRY_SCHEDULED]
    connections.close_all()


@with_real_commits
def test_a_job_that_stopped_short_waits_then_resumes_by_itself(
    kinds: Any, calls: list[dict[str, Any]], redis_queue: Any, run_jobs: Any, admin_user: Any
) -> None:
    job = start_job("test.waits", {}, admin_user)
    assert run_jobs() == 1
    job.refresh_from_db()
    assert (job.state, job.stage, job.message) == (Job.WAITING, "waiting", "The provider is silent; 3 left.")
    assert job.available_at is not None and job.finished_at is None

    time.sleep(0.1)
    report = sweep()
    assert report.resumed == [str(job.pk)] and report.dispatched == [str(job.pk)]
    assert run_jobs() == 1
    job.refresh_from_db()
    assert (job.state, job.attempts, job.failures, job.message) == (Job.SUCCEEDED, 2, 0, "Done: sent 3.")
    assert JobEvent.RESUMED in events(job)


# --- cancelling and retrying -----------------------------------------------------------------


@with_real_commits
def test_a_queued_job_is_cancelled_at_once_and_never_runs(
    kinds: Any, calls: list[dict[str, Any]], redis_queue: Any, run_jobs: Any, make_user: Any
) -> None:
    owner = make_user(["core.job.view", "core.job.manage"], username="owner")
    job = start_job("test.echo", {"text": "no"}, owner)
    cancelled = cancel_job(owner, job.pk)
    assert (cancelled.state, cancelled.stage, cancelled.message) == (
        Job.CANCELLED, "cancelled", "Cancelled by owner before it ran.")
    run_jobs()
    assert calls == [] and Job.objects.get(pk=job.pk).state == Job.CANCELLED
    [event] = JobEvent.objects.filter(job=job)
    assert (event.event, event.user_id) == (JobEvent.CANCELLED, owner.pk)
    with pytest.raises(ServiceError) as again:
        cancel_job(owner, job.pk)
    assert again.value.code == "JOB_FINISHED"


@with_real_commits
def test_a_running_job_stops_at_its_next_progress_report_keeping_what_it_committed(
    kinds: Any, calls: list[dict[str, Any]], make_user: Any
) -> None:
    owner = make_user(["core.job.view", "core.job.manage"], username="owner")
    job = Job.objects.create(kind="test.chunks", module="test", params={"chunks": 5}, created_by=owner)

    def chunks_then_someone_cancels(ctx: JobContext) -> Any:
        for n in range(5):
            Role.objects.create(name=f"chunk {n}")
            if n == 1:
                requested = cancel_job(owner, ctx.job.pk)
                assert requested.state == Job.RUNNING and requested.cancel_requested_at is not None
            ctx.progress(n + 1, 5, "chunks")
        return {"created": 5}

    core.jobs.runner.job_kinds()["test.chunks"] = ("test", chunks_then_someone_cancels)
    assert run_job(str(job.pk)) is None
    job.refresh_from_db()
    assert (job.state, job.stage) == (Job.CANCELLED, "cancelled")
    assert job.message == "Cancelled by owner at stage 'chunks' after 2 of 5; what it had committed stays."
    assert Role.objects.filter(name__startswith="chunk").count() == 2
    assert events(job) == [JobEvent.STARTED, JobEvent.CANCEL_REQUESTED, JobEvent.CANCELLED]


@with_real_commits
def test_a_job_whose_run_was_lost_after_a_cancel_is_cancelled_not_retried(kinds: Any, make_user: Any) -> None:
    owner = make_user(["core.job.view", "core.job.manage"], username="owner")
    job = Job.objects.create(kind="test.echo", module="test", created_by=owner, state=Job.RUNNING, attempts=1,
                             lease_expires_at=timezone.now() + timedelta(seconds=30))
    cancel_job(owner, job.pk)
    lapse(job)
    assert sweep().cancelled == [str(job.pk)]
    job.refresh_from_db()
    assert job.state == Job.CANCELLED and job.message.startswith("Cancelled by owner; its last run stopped")


@with_real_commits
def test_a_failed_job_is_retried_by_a_person_and_runs_again(
    kinds: Any, calls: list[dict[str, Any]], redis_queue: Any, run_jobs: Any, make_user: Any, admin_user: Any
) -> None:
    owner = make_user(["core.job.view", "core.job.manage"], username="owner")
    job = Job.objects.create(kind="test.echo", module="test", params={"text": "second time"}, created_by=owner,
                             state=Job.FAILED, attempts=5, failures=5, finished_at=timezone.now(),
                             message="Gave up after 5 lost runs")
    retried = retry_job(owner, job.pk)
    assert (retried.state, retried.failures, retried.finished_at, retried.message) == (
        Job.QUEUED, 0, None, "Retried by owner.")
    assert redis_queue.job_ids == [f"coremis-{job.pk}-5"]
    assert run_jobs() == 1
    job.refresh_from_db()
    assert (job.state, job.attempts, job.message) == (Job.SUCCEEDED, 6, "Done: processed 3 of 3.")
    assert calls == [{"text": "second time"}]
    assert events(job)[0] == JobEvent.RETRIED

    with pytest.raises(ServiceError) as finished:
        retry_job(owner, job.pk)
    assert finished.value.code == "JOB_NOT_RETRYABLE"
    waiting = Job.objects.create(kind="test.echo", module="test", created_by=owner, state=Job.WAITING)
    for act in (retry_job, cancel_job):
        with pytest.raises(ServiceError) as decision:
            act(owner, waiting.pk)
        assert decision.value.code == "JOB_AWAITS_DECISION"
    assert Job.objects.get(pk=waiting.pk).state == Job.WAITING


@with_real_commits
def test_only_the_owner_or_someone_who_sees_every_job_may_retry_or_cancel_it(kinds: Any, make_user: Any) -> None:
    owner = make_user(["core.job.view", "core.job.manage"], username="owner")
    stranger = make_user(["core.job.view", "core.job.manage"], username="stranger")
    operator = make_user(["core.job.view", "core.job.view_all", "core.job.manage"], username="operator")
    reader = make_user(["core.job.view"], username="reader")
    job = Job.objects.create(kind="test.echo", module="test", created_by=owner)
    with pytest.raises(ServiceError) as hidden:
        cancel_job(stranger, job.pk)
    assert hidden.value.code == "NOT_FOUND"  # someone else's job answers like a missing one
    with pytest.raises(ServiceError) as denied:
        cancel_job(reader, job.pk)
    assert denied.value.code == "PERMISSION_DENIED"
    assert Job.objects.get(pk=job.pk).state == Job.QUEUED
    assert cancel_job(operator, job.pk).state == Job.CANCELLED


# --- over GraphQL ----------------------------------------------------------------------------

JOBS = """query($id: String, $uuid: UUID) { jobs(id: $id, uuid: $uuid) { totalCount edges { node {
    id uuid state stage message errorCode attempts failures maxFailures availableAt
    history { event attempt state message username } } } } }"""
RETRY = """mutation($input: RetryJobMutationInput!) { retryJob(input: $input) {
    errors { field code message } job { uuid state message history { event username } } } }"""
CANCEL = """mutation($input: CancelJobMutationInput!) { cancelJob(input: $input) {
    errors { field code message } job { uuid state stage message } } }"""


def test_jobs_are_found_by_relay_id_or_uuid(gql: Any, make_user: Any) -> None:
    owner = make_user(["core.job.view"])
    mine = Job.objects.create(kind="test.echo", module="test", created_by=owner)
    Job.objects.create(kind="test.echo", module="test", created_by=owner)
    client = gql(owner)
    by_uuid = client.ok(JOBS, {"uuid": str(mine.pk)})["jobs"]
    assert by_uuid["totalCount"] == 1 and by_uuid["edges"][0]["node"]["uuid"] == str(mine.pk)
    relay_id = by_uuid["edges"][0]["node"]["id"]
    by_id = client.ok(JOBS, {"id": relay_id})["jobs"]
    assert [e["node"]["uuid"] for e in by_id["edges"]] == [str(mine.pk)]
    assert client.ok(JOBS, {"id": str(mine.pk)})["jobs"]["totalCount"] == 1

    bad = client.execute(JOBS, {"id": "not-a-job"})
    assert bad["errors"][0]["extensions"]["code"] == "INVALID_ID"
    assert bad["errors"][0]["message"] == "'not-a-job' is neither a job's uuid nor its id."


def test_a_job_list_with_history_costs_the_same_queries_for_one_job_or_many(gql: Any, make_user: Any) -> None:
    from django.test.utils import CaptureQueriesContext

    owner = make_user(["core.job.view"])
    client = gql(owner)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            client.ok(JOBS)
        return len(queries)

    first = Job.objects.create(kind="test.echo", module="test", created_by=owner)
    JobEvent.objects.create(job=first, event=JobEvent.STARTED, attempt=1, state=Job.RUNNING)
    one = count()
    for _ in range(5):
        job = Job.objects.create(kind="test.echo", module="test", created_by=owner)
        JobEvent.objects.create(job=job, event=JobEvent.STARTED, attempt=1, state=Job.RUNNING)
    assert count() == one


@with_real_commits
def test_retry_and_cancel_over_graphql_need_the_right_and_are_recorded(
    kinds: Any, gql: Any, make_user: Any, redis_queue: Any
) -> None:
    owner = make_user(["core.job.view", "core.job.manage"], username="owner")
    reader = make_user(["core.job.view"], username="reader")
    failed = Job.objects.create(kind="test.echo", module="test", created_by=owner, state=Job.FAILED,
                                attempts=1, finished_at=timezone.now(), message="It failed.",
                                error_code="INTERNAL")

    refused = gql(reader).execute(RETRY, {"input": {"id": str(failed.pk)}})
    assert refused["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"
    assert Job.objects.get(pk=failed.pk).state == Job.FAILED

    listed = gql(owner).ok(JOBS, {"uuid": str(failed.pk)})["jobs"]["edges"][0]["node"]
    assert listed["errorCode"] == "INTERNAL"
    result = gql(owner).ok(RETRY, {"input": {"id": listed["id"], "clientMutationId": "retry-1"}})["retryJob"]
    assert result["errors"] == []
    assert result["job"]["state"] == "QUEUED" and result["job"]["message"] == "Retried by owner."
    assert result["job"]["history"] == [{"event": "retried", "username": "owner"}]
    assert Job.objects.get(pk=failed.pk).error_code == ""  # a retried job has not failed (yet)
    log = MutationLog.objects.get(client_mutation_id="retry-1")
    assert (log.mutation_name, log.status, log.user_id, log.affected_ids) == (
        "RetryJobMutation", MutationLog.SUCCESS, owner.pk, [str(failed.pk)])

    cancelled = gql(owner).ok(CANCEL, {"input": {"id": str(failed.pk)}})["cancelJob"]
    assert cancelled["errors"] == [] and cancelled["job"]["state"] == "CANCELLED"
    assert cancelled["job"]["message"] == "Cancelled by owner before it ran again."
    again = gql(owner).ok(CANCEL, {"input": {"id": str(failed.pk)}})["cancelJob"]
    assert again["errors"] == [{"field": "id", "code": "JOB_FINISHED",
                                "message": "This job already ended (cancelled); there is nothing to cancel."}]
    unknown = gql(owner).ok(CANCEL, {"input": {"id": "junk"}})["cancelJob"]
    assert unknown["errors"][0]["code"] == "INVALID_ID"


@with_real_commits
def test_a_worker_whose_horse_died_gives_back_only_its_own_run(kinds: Any) -> None:
    from core.jobs import lose_run

    job = Job.objects.create(kind="test.echo", module="test", state=Job.RUNNING, attempts=2, worker_name="w-1",
                             lease_expires_at=timezone.now() + timedelta(seconds=30))
    assert lose_run(job.pk, "its work horse died of signal 9", worker_name="w-other") is None
    assert Job.objects.get(pk=job.pk).state == Job.RUNNING  # another worker's run since
    assert lose_run(job.pk, "its work horse died of signal 9", worker_name="w-1") == Job.QUEUED
    job.refresh_from_db()
    assert (job.failures, job.message) == (1, "Run 2 was lost (its work horse died of signal 9); it runs again in "
                                              "1 s (1 lost run of at most 5).")
