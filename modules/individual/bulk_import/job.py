"""The ``individual.import`` job handler: validates, waits, commits, from wherever the
previous run stopped."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from django.db import connection, transaction

from core.errors import ServiceError
from core.jobs import JobContext, ends_the_job, progress_db
from core.models import Job
from core.uploads import discard_file
from modules.individual.bulk_import.api import KIND, duplicate_file, imports_that_ran, lock_file
from modules.individual.bulk_import.approval import ask_for_approval
from modules.individual.bulk_import.checks import check, validate
from modules.individual.bulk_import.commit import commit
from modules.individual.bulk_import.outcome import outcome
from modules.individual.bulk_import.staging import Staging, drop_staging, set_phase, staging_exists
from modules.individual.errors import IndividualErrorCode
from modules.individual.import_models import ImportBatch, ImportRun

log = logging.getLogger("coremis.individual.import")


@contextmanager
def _exclusive(job_id: Any) -> Iterator[None]:
    """One process at a time works on an import: a second run of the same job (a worker that
    was thought dead but was not) waits here, then finds the work done."""
    key = f"{KIND}:{job_id}"
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [key])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [key])


def run_import(ctx: JobContext) -> dict[str, Any]:
    """Job handler for ``individual.import``: validates, waits, commits, from wherever the
    job's previous run stopped."""
    with _exclusive(ctx.job.pk):
        run = ImportRun.objects.select_related("upload").get(job_id=ctx.job.pk)
        staging = Staging(ctx.job)
        try:
            if run.phase == ImportRun.RECEIVED and not run.job.params.get("allow_duplicate_file"):
                _refuse_if_another_import_ran_first(ctx.job)
            return _run(ctx, run, staging)
        except BaseException as exc:
            # The job ends (failed, cancelled), and nothing runs it again by itself: its staged
            # rows would only sit there. A run that was only lost keeps them for the next one.
            if ends_the_job(exc):
                with suppress(Exception):
                    drop_staging(staging)
            raise


def _refuse_if_another_import_ran_first(job: Job) -> None:
    """Of two imports of one file that were both queued, the one that started first goes on;
    the other refuses (a retry checks again, so it goes on if the first wrote nothing)."""
    run = ImportRun.objects.select_related("job").get(job_id=job.pk)
    with transaction.atomic():
        lock_file(run.sha256)
        mine = (run.job.started_at, str(job.pk))
        for other in imports_that_ran(run.sha256).exclude(job_id=job.pk):
            theirs = (other.job.started_at, str(other.job_id))
            if other.job.started_at is None or run.job.started_at is None or theirs < mine:
                raise duplicate_file(other, None)


def _run(ctx: JobContext, run: ImportRun, staging: Staging) -> dict[str, Any]:
    started_writing = ImportBatch.objects.filter(job=ctx.job).exists()
    if run.phase in (ImportRun.VALIDATED, ImportRun.APPROVED, ImportRun.WAITING) and not staging_exists(staging):
        if started_writing:
            raise ServiceError(
                IndividualErrorCode.STAGING_LOST, "The import's staged rows were removed after part of it was written; "
                "the report lists what was refused, and the rows written are in the registry.")
        run.phase = ImportRun.RECEIVED
    if run.phase == ImportRun.RECEIVED:
        try:
            validate(ctx, run, staging)
        except ServiceError:
            set_phase(run, ImportRun.REFUSED)
            Job.objects.using(progress_db()).filter(pk=ctx.job.pk).update(stage="failed")
            discard_file(run.upload)  # refused before anything was written: nothing reads it again
            raise
    if run.phase == ImportRun.VALIDATED and run.needs_approval:
        with transaction.atomic():  # waiting and the task to decide on, together or neither
            ask_for_approval(run)
            set_phase(run, ImportRun.WAITING)
    if run.phase == ImportRun.APPROVED and not started_writing:
        # Others may have registered people or households since the uploader's checks.
        check(ctx, run, staging)
    if run.phase in (ImportRun.VALIDATED, ImportRun.APPROVED):
        commit(ctx, run, staging)
    if run.phase == ImportRun.REFUSED:
        drop_staging(staging)  # the report lives on in the issues
        discard_file(run.upload)
    return outcome(ctx, run)
