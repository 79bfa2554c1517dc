"""Starting an import, and who may read it and its report (its approval: ``approval``)."""

from __future__ import annotations

import logging
from typing import Any

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q

from core.errors import ServiceError
from core.imports import ImportMode
from core.jobs import start_job
from core.models import ImportReport, Job, Upload
from core.permissions import JOB_VIEW_ALL, has_permission, require
from core.uploads import get_upload
from modules.individual.bulk_import.approval import check_can_ask, import_needs_approval
from modules.individual.bulk_import.staging import report_writer
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
    needs_approval = import_needs_approval()
    if needs_approval:
        check_can_ask(user)  # before a million rows are staged for nothing
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
            needs_approval=needs_approval,
        )
        report_writer(job, mode)
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
