"""HTTP routes of the individual module: the bulk import's one-step upload and its report
(exports have theirs in ``export_views``)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from core.errors import CoreErrorCode, RequestErrorCode, ServiceError
from core.http import error_response, service_error_response
from core.imports import report_csv_response
from core.models import Job
from core.permissions import has_permission
from core.uploads import receiving
from modules.individual import bulk_import
from modules.individual.errors import IndividualErrorCode
from modules.individual.export_views import export_urlpatterns
from modules.individual.permissions import IMPORT_START


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes"}


@csrf_exempt
@require_POST
def import_view(request: HttpRequest) -> JsonResponse:
    """``POST /api/individual/import?mode=valid_rows&allowDuplicateFile=true`` with a multipart
    ``file`` (CSV or XLSX): upload and start the import in one request."""
    user = request.user
    if not user.is_authenticated:
        return error_response(401, RequestErrorCode.UNAUTHENTICATED, "Send 'Authorization: Bearer <token>'.")
    if not has_permission(user, IMPORT_START):
        return error_response(403, CoreErrorCode.PERMISSION_DENIED, "This requires the permission 'individual.import'.")
    file = request.FILES.get("file")
    if file is None:
        return error_response(400, RequestErrorCode.NO_FILE, "Send the CSV or XLSX file as multipart field 'file'.", "file")
    mode = request.GET.get("mode", "all_or_nothing")
    if mode not in bulk_import.MODES:  # before the file is stored for nothing
        return error_response(400, IndividualErrorCode.INVALID_MODE, "mode is all_or_nothing or valid_rows.", "mode")
    try:
        # a refused start (a duplicate file, say) leaves no file behind
        with (transaction.atomic(),
              receiving(file, file.name or "individuals.csv", "individual.import", user,
                        file.content_type or "") as upload):
            job = bulk_import.start_import(user, upload.pk, mode, _flag(request.GET.get("allowDuplicateFile")))
    except ServiceError as exc:
        return service_error_response(exc)
    return JsonResponse({"jobId": str(job.pk), "uploadId": str(upload.pk),
                         "report": bulk_import.report_url(job.pk)}, status=202)


@require_GET
def report_view(request: HttpRequest, job_id: Any) -> HttpResponse:
    """``GET /api/individual/import/<job uuid>/report.csv``: every refused row with its
    reasons, and the rows to review (``LIKELY_DUPLICATE``), in file order (the core's
    import report)."""
    user = request.user
    if not user.is_authenticated:
        return error_response(401, RequestErrorCode.UNAUTHENTICATED, "Send 'Authorization: Bearer <token>'.")
    job = Job.objects.select_related("created_by").filter(pk=job_id, kind=bulk_import.KIND).first()
    # Someone else's import answers like a missing one: its existence is not theirs to learn.
    report = bulk_import.report_of(job) if job is not None else None
    if report is None or not bulk_import.can_see(user, job):
        return error_response(404, CoreErrorCode.NOT_FOUND, f"No import {job_id} of yours.")
    # The core's report CSV (row, field, code, message, value), streamed; it names people,
    # hence the access rule above.
    return report_csv_response(report)


urlpatterns: list = [
    *export_urlpatterns,
    path("import", import_view, name="import"),
    path("import/<uuid:job_id>/report.csv", report_view, name="import_report"),
]
