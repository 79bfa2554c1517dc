"""What the job reports at the end: its state, stage, message and first errors."""

from __future__ import annotations

import logging
from typing import Any

from core.jobs import JobContext, progress_db
from core.models import ImportIssue, Job
from modules.individual.bulk_import.api import report_url
from modules.individual.bulk_import.staging import report_writer
from modules.individual.import_models import ImportRun

log = logging.getLogger("coremis.individual.import")


MAX_ERRORS_ON_JOB = 1000


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def outcome(ctx: JobContext, run: ImportRun) -> dict[str, Any]:
    counts = run.counts
    total, valid, invalid = counts.get("total", 0), counts.get("valid", 0), counts.get("invalid", 0)
    duplicates = counts.get("likely_duplicates", 0)
    if run.phase == ImportRun.REFUSED:
        state, stage = Job.FAILED, "failed"
        if counts.get("written_before_check"):
            message = (f"Stopped after {counts['written_before_check']:,} of {total:,} rows were imported: "
                       "people or households registered meanwhile clash with rows not yet written, "
                       "which were not imported. The report lists them.")
        elif valid == 0:
            message = f"None of the {total:,} rows is valid, so nothing was imported. The report lists the reasons."
        else:
            message = (f"{invalid:,} of {total:,} rows are invalid, so nothing was imported (all or nothing). "
                       "The report lists the reasons.")
    elif run.phase == ImportRun.WAITING:
        state, stage = Job.WAITING, "waiting_for_approval"
        message = f"{valid:,} of {total:,} rows are valid and wait for another user's approval."
    else:
        state, stage = (Job.PARTIAL, "partially_done") if invalid else (Job.SUCCEEDED, "done")
        message = (f"Imported {_count(counts.get('created_individuals', valid), 'individual')} "
                   f"({_count(counts.get('created_households', 0), 'new household')}).")
        if invalid:
            message += f" {_count(invalid, 'row')} left out; the report lists why."
    if duplicates:
        message += (f" {_count(duplicates, 'row')} look like people already known; "
                    "the report lists them for review.")
    report_writer(ctx.job, run.mode).set_counts(**{k: v for k, v in counts.items() if isinstance(v, int)})
    errors = list(ImportIssue.objects.filter(report__job_id=ctx.job.pk, blocking=True).order_by("row", "id")
                  .values("row", "field", "code", "message")[:MAX_ERRORS_ON_JOB])
    processed = counts.get("created_individuals", 0) if state in (Job.SUCCEEDED, Job.PARTIAL) else total
    Job.objects.using(progress_db()).filter(pk=ctx.job.pk).update(
        stage=stage, message=message, errors=errors, error_count=counts.get("errors", 0), processed=processed,
    )
    ctx.job.stage, ctx.job.message, ctx.job.errors = stage, message, errors
    return {"state": state, "mode": run.mode, "report": report_url(ctx.job.pk), "awaiting_approval": state == Job.WAITING,
            **counts}
