"""Starting, approving and rejecting an import, and who may read it and its report."""

from __future__ import annotations

import logging
from typing import Any

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from core.errors import CoreErrorCode, NotFound, ServiceError
from core.imports import ImportMode
from core.jobs import dispatch_on_commit, start_job
from core.loader import module_config
from core.models import ImportReport, Job, Upload
from core.permissions import JOB_VIEW_ALL, has_permission, require
from core.uploads import discard_on_commit, get_upload
from modules.individual.bulk_import.checks import rows_outside_scope
from modules.individual.bulk_import.staging import Staging, drop_staging, report_writer
from modules.individual.errors import IndividualErrorCode
from modules.individual.import_models import ImportBatch, ImportRun
from modules.individual.permissions import IMPORT_APPROVE, IMPORT_START
from modules.location.services import scope_paths

log = logging.getLogger("coremis.individual.import")


KIND = "individual.import"


MODES = tuple(mode.value for mode in ImportMode)


# An import in one of these states has run (or runs now): the same file again would register
# the same people twice. A queued one has not run yet; it checks again when it starts.
BLOCKING_STATES = (Job.RUNNING, Job.WAITING, Job.SUCCEEDED, Job.PARTIAL)


def report_url(job_id: Any) -> str:
    return f"/api/individual/import/{job_id}/report.csv"


def start_import(user: Any, upload_id: Any, mode: str = "all_or_nothing",
                 allow_duplicate_file: bool = False) -> Job:
    """Queue the import of an uploaded file (``POST /api/upload?purpose=individual.import``)."""
    require(user, IMPORT_START)
    if mode not in MODES:
        raise ServiceError(IndividualErrorCode.INVALID_MODE, f"Unknown import mode '{mode}'; use all_or_nothing or valid_rows.", "mode")
    upload = get_upload(upload_id, user, "individual.import")
    return _start(user, upload, mode, allow_duplicate_file)


def imports_that_ran(sha256: str) -> Any:
    """Imports of the file with this SHA-256 that have run: running, waiting for approval,
    done, or ended after writing rows (queued ones and those that wrote nothing do not count)."""
    wrote = ImportBatch.objects.filter(job_id=OuterRef("job_id"))
    return (ImportRun.objects.select_related("job").filter(sha256=sha256)
            .filter(Q(job__state__in=BLOCKING_STATES) | Q(Exists(wrote))))


def lock_file(sha256: str) -> None:
    """Until the transaction ends, no other import of this file passes its duplicate check."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"{KIND}:{sha256}"])


def duplicate_file(previous: ImportRun, field: str | None) -> ServiceError:
    return ServiceError(
        IndividualErrorCode.DUPLICATE_FILE,
        f"This file was already imported (job {previous.job_id}, {previous.job.state.lower()}); "
        "importing it again would register the same people twice. To import it anyway, "
        "send allowDuplicateFile: true.",
        field,
    )


def _start(user: Any, upload: Upload, mode: str, allow_duplicate_file: bool) -> Job:
    with transaction.atomic():
        # Two uploads of one file started at the same moment must not both pass the check.
        lock_file(upload.sha256)
        if not allow_duplicate_file:
            previous = imports_that_ran(upload.sha256).order_by("-created_at").first()
            if previous is not None:
                raise duplicate_file(previous, "uploadId")
        job = start_job(KIND, {"upload_id": str(upload.pk), "mode": mode,
                               "allow_duplicate_file": allow_duplicate_file}, user)
        job.stage = "received"
        Job.objects.filter(pk=job.pk).update(stage=job.stage)
        ImportRun.objects.create(
            job=job, upload=upload, sha256=upload.sha256, mode=mode,
            needs_approval=bool(module_config("individual")["import_requires_approval"]),
        )
        report_writer(job, mode)
    return job


def _waiting_run(job_id: Any) -> ImportRun:
    run = (ImportRun.objects.select_for_update(of=("self",)).select_related("job", "job__created_by", "upload")
           .filter(job_id=job_id).first())
    if run is None:
        raise NotFound("Import", job_id)
    if run.phase != ImportRun.WAITING or run.job.state != Job.WAITING:
        raise ServiceError(IndividualErrorCode.NOT_AWAITING_APPROVAL,
                           f"This import is not waiting for approval (it is {run.job.state.lower()}).", "jobId")
    return run


def approve_import(user: Any, job_id: Any) -> Job:
    """A second user lets a validated import write to the registry; the job resumes."""
    require(user, IMPORT_APPROVE)
    with transaction.atomic():
        run = _waiting_run(job_id)
        if run.job.created_by_id is not None and run.job.created_by_id == getattr(user, "pk", None):
            raise ServiceError(IndividualErrorCode.SELF_APPROVAL,
                               "You started this import; another user with the right to approve imports must approve it.",
                               "jobId")
        outside = rows_outside_scope(run, user)
        if outside:
            raise ServiceError(CoreErrorCode.OUT_OF_SCOPE,
                               f"{outside} of the rows to import are in locations outside yours; "
                               "a user whose locations cover them must approve this import.", "jobId")
        run.phase, run.decided_by, run.decided_at = ImportRun.APPROVED, user, timezone.now()
        run.save(update_fields=["phase", "decided_by", "decided_at"])
        job = run.job
        job.state, job.stage = Job.QUEUED, "approved"
        Job.objects.filter(pk=job.pk).update(state=job.state, stage=job.stage)
        dispatch_on_commit(job)
    return job


def reject_import(user: Any, job_id: Any, reason: str) -> Job:
    """Refuse a waiting import; nothing is written and its staged rows are dropped."""
    require(user, IMPORT_APPROVE)
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError(CoreErrorCode.REQUIRED, "Say why the import is rejected; its uploader reads it.", "reason")
    with transaction.atomic():
        run = _waiting_run(job_id)
        run.phase, run.decided_by, run.decided_at, run.decision_reason = (
            ImportRun.REJECTED, user, timezone.now(), reason)
        run.save(update_fields=["phase", "decided_by", "decided_at", "decision_reason"])
        job = run.job
        job.state, job.stage, job.finished_at = Job.CANCELLED, "rejected", timezone.now()
        job.message = f"Rejected by {user.username}: {reason}"
        Job.objects.filter(pk=job.pk).update(state=job.state, stage=job.stage, finished_at=job.finished_at,
                                             message=job.message)
        staging = Staging(job)
        transaction.on_commit(lambda: drop_staging(staging))
        discard_on_commit(run.upload)
    return job


def can_see(user: Any, job: Job) -> bool:
    """The uploader may read an import and its report; so may whoever reads every job and
    the approvers, when their locations cover the uploader's (a report names people)."""
    if not (user and user.is_authenticated):
        return False
    if job.created_by_id == user.pk:
        return True
    if not (has_permission(user, JOB_VIEW_ALL) or has_permission(user, IMPORT_APPROVE)):
        return False
    mine = scope_paths(user)
    if mine is None:
        return True
    theirs = scope_paths(job.created_by) if job.created_by is not None else None
    return theirs is not None and all(any(p.startswith(m) for m in mine) for p in theirs)


def report_of(job: Job) -> ImportReport | None:
    """The import's report (the core's): every refused row with its reasons, and the rows to
    review (``LIKELY_DUPLICATE``)."""
    return ImportReport.objects.filter(job=job).first()
