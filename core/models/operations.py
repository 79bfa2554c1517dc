"""The mutation log and background jobs: what a client can watch after it asked for work."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class MutationLog(models.Model):
    """One GraphQL mutation request, in the shape openIMIS frontends poll."""

    RECEIVED = 0
    ERROR = 1
    SUCCESS = 2
    STATUSES = ((RECEIVED, "received"), (ERROR, "error"), (SUCCESS, "success"))

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    mutation_name = models.CharField(max_length=100)
    client_mutation_id = models.CharField(max_length=255, null=True, blank=True, db_index=True)
    client_mutation_label = models.CharField(max_length=255, null=True, blank=True)
    client_mutation_details = models.JSONField(null=True, blank=True)
    json_content = models.JSONField(null=True, blank=True)
    status = models.PositiveSmallIntegerField(choices=STATUSES, default=RECEIVED)
    error = models.JSONField(null=True, blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    request_date_time = models.DateTimeField(default=timezone.now)
    finished_date_time = models.DateTimeField(null=True, blank=True)
    affected_ids = models.JSONField(null=True, blank=True)
    # The clientMutationId while it is the user's idempotency key: a replay finds this entry
    # and answers its outcome. Cleared when the mutation did not complete (a crash, a
    # timeout, a lost database), so sending it again runs it again.
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    result = models.JSONField(null=True, blank=True, help_text="the payload's objects, to answer a replay")

    class Meta:
        indexes = [models.Index(fields=["user", "-request_date_time"], name="core_mutlog_user")]
        constraints = [
            # Two requests with one key, even at the same moment, make one entry: the second
            # insert waits for the first and then fails, and that request replays it.
            models.UniqueConstraint(fields=["user", "idempotency_key"], name="core_mutlog_idempotency",
                                    condition=models.Q(idempotency_key__isnull=False)),
        ]


class Job(models.Model):
    """A background job with progress a client reads while a worker runs it.

    A running job is *leased*: the worker renews ``lease_expires_at`` while the handler runs
    (see ``core.jobs``). A lease that lapses means the run was lost (work horse or worker
    killed, machine gone); the scheduler then queues the job again after a back-off, up to
    ``max_failures`` lost runs, and fails it after that.
    """

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    # Paused: until a person acts (an import awaiting approval; ``available_at`` is null), or
    # until ``available_at``, when it resumes by itself (a payroll send whose provider is silent).
    WAITING = "WAITING"
    SUCCEEDED = "SUCCEEDED"
    PARTIAL = "PARTIAL"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    STATES = [(s, s.lower()) for s in (QUEUED, RUNNING, WAITING, SUCCEEDED, PARTIAL, FAILED, CANCELLED)]
    FINAL_STATES = frozenset({SUCCEEDED, PARTIAL, FAILED, CANCELLED})
    ACTIVE_STATES = (QUEUED, RUNNING, WAITING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=100, db_index=True)
    module = models.CharField(max_length=50)
    state = models.CharField(max_length=20, choices=STATES, default=QUEUED)
    stage = models.CharField(max_length=50, blank=True, default="")
    params = models.JSONField(default=dict)
    processed = models.BigIntegerField(default=0)
    total = models.BigIntegerField(null=True)
    error_count = models.BigIntegerField(default=0)
    errors = models.JSONField(default=list)
    result = models.JSONField(null=True)
    message = models.TextField(blank=True, default="")
    error_code = models.CharField(
        max_length=60, blank=True, default="",
        help_text="why the job failed, as a declared error code (a ServiceError's code, INTERNAL for a crash); "
                  "empty unless FAILED")
    attempts = models.PositiveIntegerField(default=0, help_text="runs started")
    failures = models.PositiveIntegerField(
        default=0, help_text="runs lost: the lease lapsed, or the database or Redis failed under it")
    max_failures = models.PositiveIntegerField(
        default=5, help_text="lost runs retried automatically before the job is failed")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, help_text="when its first run started")
    finished_at = models.DateTimeField(null=True)
    heartbeat_at = models.DateTimeField(null=True)
    lease_expires_at = models.DateTimeField(
        null=True, help_text="a RUNNING job whose lease is past was lost and is retried")
    available_at = models.DateTimeField(
        null=True, help_text="QUEUED: not run before (retry back-off); WAITING: resumes by itself then")
    dispatched_at = models.DateTimeField(
        null=True, help_text="last handed to the RQ queue; a QUEUED job the queue lost is handed again")
    cancel_requested_at = models.DateTimeField(null=True)
    cancel_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    worker_name = models.CharField(
        max_length=255, blank=True, default="",
        help_text="the RQ worker running it, so a job whose worker died can be found and re-run",
    )

    class Meta:
        indexes = [
            models.Index(fields=["created_by", "-created_at"], name="core_job_user"),
            # What the scheduler's sweep reads every few seconds: the few jobs not yet finished.
            models.Index(fields=["state", "lease_expires_at"], name="core_job_active",
                         condition=models.Q(state__in=["QUEUED", "RUNNING", "WAITING"])),
        ]

    @property
    def is_final(self) -> bool:
        return self.state in self.FINAL_STATES


class JobEvent(models.Model):
    """The history of a job: each run started, lost, retried, finished or cancelled, and who
    retried or cancelled it (progress is not history; it is on the job itself)."""

    STARTED = "started"
    LEASE_LAPSED = "lease_lapsed"
    INTERRUPTED = "interrupted"
    RETRY_SCHEDULED = "retry_scheduled"
    DISPATCHED_AGAIN = "dispatched_again"
    RESUMED = "resumed"
    FINISHED = "finished"
    GAVE_UP = "gave_up"
    RETRIED = "retried"
    CANCEL_REQUESTED = "cancel_requested"
    CANCELLED = "cancelled"
    EVENTS = [(e, e.replace("_", " ")) for e in (
        STARTED, LEASE_LAPSED, INTERRUPTED, RETRY_SCHEDULED, DISPATCHED_AGAIN, RESUMED,
        FINISHED, GAVE_UP, RETRIED, CANCEL_REQUESTED, CANCELLED)]

    id = models.BigAutoField(primary_key=True)
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    event = models.CharField(max_length=30, choices=EVENTS)
    attempt = models.PositiveIntegerField(default=0)
    state = models.CharField(max_length=20, blank=True, default="", help_text="the job's state after it")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                             related_name="+")
    message = models.TextField(blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["job", "at"], name="core_jobevent_job")]


class ScheduleRun(models.Model):
    """When the scheduler last fired each schedule (and last swept the jobs), for ``/health``
    and so a schedule missed while no scheduler ran fires once when one starts again."""

    name = models.CharField(max_length=150, primary_key=True)
    kind = models.CharField(max_length=100, blank=True, default="")
    cron = models.CharField(max_length=100, blank=True, default="")
    since = models.DateTimeField(default=timezone.now, help_text="first seen; the base of its first run")
    last_run_at = models.DateTimeField(null=True)
    last_job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    last_error = models.TextField(blank=True, default="")


class Upload(models.Model):
    """A file a user sent for later processing (an import), kept on disk, never in memory."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    purpose = models.CharField(max_length=100, help_text="the permission code it was uploaded for")
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100, blank=True, default="")
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64, db_index=True)
    stored_path = models.CharField(max_length=500)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
