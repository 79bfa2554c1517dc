"""The reconciliation report as a downloadable CSV or XLSX, written by a background job.

The rows are exactly those of ``reconciliationReport`` with the same arguments for the user who
started the job (``services.check_report`` and ``services.report_rows``: the same permission,
the same location scope, checked again when the job runs). The mutation
``exportReconciliationReport`` starts the job; ``GET /api/reconciliation/report/<job>/download``
serves the file to its creator (or to a job administrator whose locations cover the creator's).
XLSX is written with openpyxl's write-only workbook; text a spreadsheet would run is neutralised.
"""

from __future__ import annotations

import csv
import io
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.http import require_GET

from core.errors import CoreErrorCode, RequestErrorCode, ServiceError
from core.http import error_response
from core.jobs import JobContext, start_job
from core.models import Job, User
from core.permissions import JOB_VIEW_ALL, has_permission
from core.spreadsheets import neutralise, xlsx_text
from modules.location.services import scope_paths
from modules.reconciliation import services
from modules.reconciliation.errors import ReconciliationErrorCode as E
from modules.reconciliation.models import MismatchClass
from modules.reconciliation.permissions import REPORT_SEARCH

EXPORT_JOB = "reconciliation.report_export"
FORMATS = ("csv", "xlsx")
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8",
                 "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
FOLDER = "exports/reconciliation"
# (header, report column); amounts stay in the plan's minor unit, as in the GraphQL report.
COLUMNS = (("Group", "label"), ("Key", "key"), ("Ordered", "ordered_count"), ("Ordered sum", "ordered_sum"),
           ("Paid", "paid_count"), ("Paid sum", "paid_sum"), ("Failed", "failed_count"),
           ("Failed sum", "failed_sum"), ("Pending", "pending_count"), ("Pending sum", "pending_sum"),
           ("Mismatched", "mismatched_count"), ("Mismatched sum", "mismatched_sum"),
           *((f"Open {k}", k) for k in MismatchClass.values))
PARAMS = ("payroll_id", "payment_cycle_id", "payment_point_id", "group_by", "location_level")


def _path(relative: str) -> Path:
    return Path(settings.MEDIA_ROOT) / relative


@dataclass(frozen=True)
class ExportReportRequest:
    actor: User
    params: dict[str, Any]


def check_export_report(actor: User, file_format: str, **report: Any) -> ExportReportRequest:
    """The report's own checks (permission, grouping, the payroll visible), now, so a bad request
    is a typed error rather than a failed job."""
    if file_format not in FORMATS:
        raise ServiceError(E.INVALID_FORMAT, f"Export as 'csv' or 'xlsx', not '{file_format}'.", "format")
    checked = services.check_report(actor, **report)
    params = {k: (str(checked[k]) if checked[k] and k.endswith("_id") else checked[k]) for k in PARAMS}
    return ExportReportRequest(actor, {**params, "format": file_format})


def do_export_report(request: ExportReportRequest) -> Job:
    """Queue the export (once the transaction commits)."""
    return start_job(EXPORT_JOB, request.params, request.actor)


def run_export_report(ctx: JobContext) -> dict[str, Any]:
    """Job ``reconciliation.report_export``: writes ``MEDIA_ROOT/exports/reconciliation/<job>.<format>``
    and returns ``{"rows", "file", "format"}``. Checked again as the job's user: a right or a
    location withdrawn meanwhile applies."""
    params = dict(ctx.params)
    file_format = params.pop("format", "csv")
    if file_format not in FORMATS:
        raise ServiceError(E.INVALID_FORMAT, f"Export as 'csv' or 'xlsx', not '{file_format}'.", "format")
    rows = services.report_rows(services.check_report(ctx.user, **{k: params.get(k) for k in PARAMS}))
    relative = f"{FOLDER}/{ctx.job.pk}.{file_format}"
    target = _path(relative)
    target.parent.mkdir(parents=True, exist_ok=True)
    # written beside and renamed: a reader never sees half a file
    partial = target.parent / f".{ctx.job.pk}.{uuid.uuid4().hex}.part"
    try:
        with open(partial, "xb") as out:
            (_write_csv if file_format == "csv" else _write_xlsx)(out, rows)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return {"rows": len(rows), "file": relative, "format": file_format,
            "message": f"Exported {len(rows):,} report row{'' if len(rows) == 1 else 's'} to {file_format.upper()}."}


def _cells(row: dict[str, Any]) -> list[Any]:
    return [row.get(column) for _, column in COLUMNS]


def _write_csv(out: IO[bytes], rows: list[dict[str, Any]]) -> None:
    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="")  # the BOM: Excel reads UTF-8
    writer = csv.writer(text)
    writer.writerow([h for h, _ in COLUMNS])
    for row in rows:
        writer.writerow([neutralise(str(v)) if isinstance(v, str) else ("" if v is None else v) for v in _cells(row)])
    text.flush()
    text.detach()


def _write_xlsx(out: IO[bytes], rows: list[dict[str, Any]]) -> None:
    from openpyxl import Workbook

    book = Workbook(write_only=True)  # rows stream to disk, not into memory
    sheet = book.create_sheet("Reconciliation")
    sheet.append([h for h, _ in COLUMNS])
    for row in rows:
        sheet.append([xlsx_text(sheet, v) if isinstance(v, str) else v for v in _cells(row)])
    book.save(out)


# --- download --------------------------------------------------------------------------------


def _covers(viewer: User, creator: User | None) -> bool:
    """Whether ``viewer``'s locations include all of ``creator``'s: the file holds the totals of
    its creator's scope, and reading someone else's must not widen the reader's."""
    mine = scope_paths(viewer)
    if mine is None:
        return True
    theirs = scope_paths(creator) if creator is not None else None
    return theirs is not None and all(any(p.startswith(prefix) for prefix in mine) for p in theirs)


@require_GET
def download(request: HttpRequest, job_id: Any) -> HttpResponse:
    user = request.user
    if not user.is_authenticated:
        return error_response(401, RequestErrorCode.UNAUTHENTICATED, "Send 'Authorization: Bearer <token>'.")
    job = Job.objects.select_related("created_by").filter(pk=job_id, kind=EXPORT_JOB).first()
    # someone else's export answers like a missing one
    if job is None or not has_permission(user, REPORT_SEARCH) or not (
            job.created_by_id == user.pk or (has_permission(user, JOB_VIEW_ALL) and _covers(user, job.created_by))):
        return error_response(404, CoreErrorCode.NOT_FOUND, f"No report export {job_id} of yours.")
    result = job.result if isinstance(job.result, dict) else {}
    relative = str(result.get("file") or "")
    if job.state != Job.SUCCEEDED or not relative.startswith(f"{FOLDER}/"):
        return error_response(404, E.NOT_READY, f"Report export {job_id} is {job.state.lower()}, not finished.")
    file = _path(relative)
    if file.resolve().parent != _path(FOLDER).resolve() or not file.is_file():
        return error_response(404, E.FILE_GONE, f"The file of report export {job_id} is no longer kept; export again.")
    file_format = str(result.get("format") or "csv")
    response = FileResponse(open(file, "rb"), as_attachment=True,
                            filename=f"reconciliation-{job.created_at:%Y%m%d-%H%M}.{file_format}",
                            content_type=CONTENT_TYPES.get(file_format, "application/octet-stream"))
    response["Cache-Control"] = "private, no-store"
    return response


urlpatterns = [path("report/<uuid:job_id>/download", download, name="reconciliation-report-download")]

