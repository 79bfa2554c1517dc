"""The openIMIS route ``/api/payroll/csv_reconciliation/`` (GET the blank CSV of a payroll's
payments, POST it filled in) and ``POST /api/reconciliation/result_file`` (a provider's result
file for its payment point). Uploads are read by a background job; the answer says where to
follow it (``csvReconciliationUpload``)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from core.errors import CoreErrorCode, RequestErrorCode, ServiceError
from core.http import error_response, service_error_response
from core.permissions import has_permission
from core.spreadsheets import neutralise
from core.uploads import receiving
from modules.location.services import scope_queryset
from modules.payroll.models import BenefitConsumption
from modules.reconciliation import services
from modules.reconciliation.models import Source
from modules.reconciliation.permissions import REPORT_INGEST, REPORT_SEARCH
from modules.reconciliation.reading import OPENIMIS_BLANK_HEADER

PURPOSE = "reconciliation.result_file"


class _Echo:
    def write(self, value: str) -> str:
        return value


def _blank_lines(user: Any, payroll: Any) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow(OPENIMIS_BLANK_HEADER)
    minor = payroll.payment_plan.minor_unit
    rows = scope_queryset(BenefitConsumption.objects.filter(payroll=payroll).exclude(status="CANCELLED"), user,
                          services.PAYMENT_LOCATION)
    for code, first, last, amount, currency, status, receipt, paid in rows.order_by("code").values_list(
            "code", "individual__first_name", "individual__last_name", "amount", "currency", "status",
            "provider_transaction_id", "date_paid").iterator(chunk_size=2000):
        major = str(amount) if minor == 0 else f"{amount // 10 ** minor}.{amount % 10 ** minor:0{minor}d}"
        done = status in ("PAID", "RECONCILED")
        yield writer.writerow([code, neutralise(first or ""), neutralise(last or ""), major, currency,
                               "Yes" if done else "", neutralise(receipt) if done else "",
                               paid.date().isoformat() if done and paid else ""])


def _authenticated(request: HttpRequest, permission: str) -> HttpResponse | None:
    user = request.user
    if not user.is_authenticated:
        return error_response(401, RequestErrorCode.UNAUTHENTICATED, "Log in first.")
    if not has_permission(user, permission):
        return error_response(403, CoreErrorCode.PERMISSION_DENIED, f"This requires the permission '{permission}'.")
    return None


def _ingest(request: HttpRequest, source: str, payroll_id: Any, point_code: str | None) -> HttpResponse:
    refused = _authenticated(request, REPORT_INGEST)
    if refused:
        return refused
    file = request.FILES.get("file")
    if file is None:
        return error_response(400, RequestErrorCode.NO_FILE, "Send the file as multipart field 'file'.", "file")
    try:
        with receiving(file, file.name or "results.csv", PURPOSE, request.user, file.content_type or "") as upload:
            checked = services.check_ingest(request.user, source=source, upload=upload, payroll_id=payroll_id,
                                            point_code=point_code)
            done = services.do_ingest(checked)
    except ServiceError as exc:
        return service_error_response(exc)
    return JsonResponse({"success": True, "id": str(done.pk), "fileName": done.file_name, "status": done.status,
                         "duplicateOf": str(done.duplicate_of_id) if done.duplicate_of_id else None}, status=202)


@csrf_exempt
def csv_reconciliation(request: HttpRequest) -> HttpResponse:
    payroll_id = request.GET.get("payroll_id") or None
    if request.method == "POST":
        return _ingest(request, Source.OPENIMIS_CSV, payroll_id, None)
    if request.method != "GET":
        return error_response(405, RequestErrorCode.METHOD_NOT_ALLOWED, "GET the blank file or POST the filled one.")
    refused = _authenticated(request, REPORT_SEARCH)
    if refused:
        return refused
    try:
        payroll = services.visible_payroll(request.user, payroll_id) if payroll_id else None
    except (ServiceError, ValueError):
        payroll = None
    if payroll is None:
        return error_response(404, CoreErrorCode.NOT_FOUND, "Name a payroll you may see: ?payroll_id=<uuid>.",
                              "payroll_id")
    if request.GET.get("blank", "true").lower() not in ("true", "1", "yes"):
        return _uploaded_file(request, payroll)
    response = StreamingHttpResponse(_blank_lines(request.user, payroll), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="reconciliation_{payroll.pk}.csv"'
    return response


def _uploaded_file(request: HttpRequest, payroll: Any) -> HttpResponse:
    """A file uploaded for the payroll (``payroll_file_name``), as it was received."""
    from django.http import FileResponse

    from modules.reconciliation.models import ReportFile

    name = request.GET.get("payroll_file_name", "")
    file = (services.visible_files(request.user, ReportFile.objects.filter(payroll=payroll, file_name=name))
            .select_related("upload").order_by("-date_created").first())
    if file is None or file.upload is None:
        return error_response(404, CoreErrorCode.NOT_FOUND, f"No file '{name}' was uploaded for this payroll.",
                              "payroll_file_name")
    try:
        return FileResponse(open(file.upload.stored_path, "rb"), as_attachment=True, filename=file.file_name)
    except OSError:
        return error_response(404, CoreErrorCode.NOT_FOUND, "The file is no longer kept.", "payroll_file_name")


@csrf_exempt
def result_file(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return error_response(405, RequestErrorCode.METHOD_NOT_ALLOWED, "POST the file.")
    return _ingest(request, Source.RESULT_FILE, request.GET.get("payroll_id") or None, request.GET.get("point"))


payroll_urlpatterns = [path("csv_reconciliation/", csv_reconciliation, name="csv_reconciliation")]
urlpatterns = [path("result_file", result_file, name="result_file")]
