"""What people do with jobs: retry and cancel, each a ``check_*`` and a ``do_*``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models.functions import Now
from django.utils import timezone

from core.errors import NotFound, ServiceError
from core.jobs.errors import JobErrorCode
from core.jobs.outbox import dispatch_on_commit
from core.jobs.records import FINAL_STAGES, _event
from core.models import Job, JobEvent, User
from core.permissions import JOB_MANAGE, JOB_VIEW_ALL, has_permission, require

# --- what people do with jobs: retry and cancel -----------------------------------------------
#
# Each is a ``check_*`` (authorise, find the job, refuse what cannot be done) and a ``do_*``
# that locks the job row and checks again before it writes, since the job may have moved on
# between the two (a worker finished it, someone else cancelled it).


def can_act_on(user: Any, job: Job) -> bool:
    """One's own jobs, or anyone's with ``core.job.view_all`` (which the jobs list also needs
    to show them)."""
    return job.created_by_id == getattr(user, "pk", None) or has_permission(user, JOB_VIEW_ALL)


def _visible_job(user: Any, job_id: Any, *, lock: bool = False) -> Job:
    jobs = Job.objects.select_related("created_by", "cancel_requested_by")
    if lock:
        jobs = jobs.select_for_update(of=("self",))
    job = jobs.filter(pk=job_id).first()
    if job is None or not can_act_on(user, job):
        raise NotFound("Job", job_id)
    return job


@dataclass(frozen=True)
class JobRequest:
    """A person's request to retry or cancel ``job``."""

    actor: User
    job: Job


def _refuse_cancel(job: Job) -> None:
    if job.is_final:
        raise ServiceError(JobErrorCode.JOB_FINISHED,
                           f"This job already ended ({job.state.lower()}); there is nothing to cancel.", "id")
    if job.state == Job.WAITING and job.available_at is None:
        # Its module keeps state of its own for the decision (an import's staged rows).
        raise ServiceError(JobErrorCode.JOB_AWAITS_DECISION,
                           "This job waits for a person's decision (an approval); refuse it there.", "id")


def check_cancel_job(actor: User, job_id: Any) -> JobRequest:
    require(actor, JOB_MANAGE)
    job = _visible_job(actor, job_id)
    _refuse_cancel(job)
    return JobRequest(actor, job)


def do_cancel_job(request: JobRequest) -> Job:
    """Cancel a job. One that has not started, waits to resume, or whose run was lost ends
    CANCELLED now; a running one stops at its next progress report (what it committed so far
    stays) and meanwhile shows ``cancelRequestedAt``. One waiting for a person's decision is
    refused where it is decided."""
    user = request.actor
    with transaction.atomic():
        job = _visible_job(user, request.job.pk, lock=True)
        _refuse_cancel(job)
        lapsed = job.state == Job.RUNNING and (job.lease_expires_at is None or job.lease_expires_at < timezone.now())
        if job.state == Job.RUNNING and not lapsed:
            Job.objects.filter(pk=job.pk).update(cancel_requested_at=Now(), cancel_requested_by=user)
            _event(job, JobEvent.CANCEL_REQUESTED, job.attempts, job.state,
                   f"{user.username} asked to cancel it; it stops at its next progress report.",
                   user=user, using="default")
        else:
            when = {Job.QUEUED: "before it ran again" if job.attempts else "before it ran",
                    Job.WAITING: "while it waited"}.get(job.state, "after its run was lost")
            message = f"Cancelled by {user.username} {when}."
            Job.objects.filter(pk=job.pk).update(
                state=Job.CANCELLED, stage=FINAL_STAGES[Job.CANCELLED], finished_at=Now(), message=message,
                cancel_requested_at=Now(), cancel_requested_by=user, lease_expires_at=None, available_at=None)
            _event(job, JobEvent.CANCELLED, job.attempts, Job.CANCELLED, message, user=user, using="default")
    job.refresh_from_db()
    return job


def _refuse_retry(job: Job) -> None:
    if job.state == Job.WAITING and job.available_at is None:
        raise ServiceError(JobErrorCode.JOB_AWAITS_DECISION,
                           "This job waits for a person's decision (an approval), not for a retry.", "id")
    backing_off = job.state in (Job.QUEUED, Job.WAITING) and job.available_at is not None
    if job.state not in (Job.FAILED, Job.CANCELLED) and not backing_off:
        raise ServiceError(JobErrorCode.JOB_NOT_RETRYABLE,
                           "Only a failed or cancelled job, or one waiting to run again, can be retried; "
                           f"this one is {job.state.lower()}.", "id")


def check_retry_job(actor: User, job_id: Any) -> JobRequest:
    require(actor, JOB_MANAGE)
    job = _visible_job(actor, job_id)
    _refuse_retry(job)
    return JobRequest(actor, job)


def do_retry_job(request: JobRequest) -> Job:
    """Run a failed or cancelled job again (its handler continues or redoes its work, never
    twice), or run now a job waiting for its back-off or to resume by itself. The budget of
    lost runs starts again. The job is handed to the queue on commit."""
    user = request.actor
    with transaction.atomic():
        job = _visible_job(user, request.job.pk, lock=True)
        _refuse_retry(job)
        message = f"Retried by {user.username}."
        Job.objects.filter(pk=job.pk).update(
            state=Job.QUEUED, finished_at=None, available_at=None, dispatched_at=None, failures=0,
            cancel_requested_at=None, cancel_requested_by=None, message=message, error_code="",
            stage="queued" if job.is_final else job.stage)
        _event(job, JobEvent.RETRIED, job.attempts, Job.QUEUED, message, user=user, using="default")
        job.refresh_from_db()
        dispatch_on_commit(job)
    return job


def cancel_job(user: User, job_id: Any) -> Job:
    """Both steps of cancelling at once (scripts and tests)."""
    return do_cancel_job(check_cancel_job(user, job_id))


def retry_job(user: User, job_id: Any) -> Job:
    """Both steps of retrying at once (scripts and tests)."""
    return do_retry_job(check_retry_job(user, job_id))
