"""Downloads: ``GET /api/grievance/attachment/<id>/download`` (a ticket's file, for those who
may read it; the read is logged when the ticket is sensitive) and
``GET /api/grievance/export/<job>/download`` (an export, for the user who made it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.http import FileResponse, HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.http import require_GET

from core.errors import CoreErrorCode, RequestErrorCode, ServiceError
from core.http import error_response
from core.models import Job
from core.permissions import has_permission
from modules.grievance.errors import GrievanceErrorCode as E
from modules.grievance.export import EXPORT_FOLDER, export_path
from modules.grievance.permissions import TICKET_EXPORT, TICKET_SEARCH
from modules.grievance.services.comments import attachment_for_download


@require_GET
def download_attachment(request: HttpRequest, attachment_id: Any) -> HttpResponse:
    user = request.user
    if not user.is_authenticated:
        return error_response(401, RequestErrorCode.UNAUTHENTICATED, "Send 'Authorization: Bearer <token>'.")
    if not has_permission(user, TICKET_SEARCH):
        return error_response(403, CoreErrorCode.PERMISSION_DENIED, f"This requires the permission '{TICKET_SEARCH}'.")
    try:
        attachment = attachment_for_download(user, attachment_id)
    except ServiceError as exc:
        return error_response(404, exc.code, exc.message)
    file = Path(attachment.upload.stored_path)
    if not file.is_file():
        return error_response(404, E.FILE_GONE, "The attachment's file is no longer stored.")
    return FileResponse(open(file, "rb"), as_attachment=True, filename=attachment.filename,
                        content_type=attachment.mime_type)


@require_GET
def download_export(request: HttpRequest, job_id: Any) -> HttpResponse:
    user = request.user
    if not user.is_authenticated:
        return error_response(401, RequestErrorCode.UNAUTHENTICATED, "Send 'Authorization: Bearer <token>'.")
    job = Job.objects.filter(pk=job_id, kind="grievance.export", created_by=user).first()
    if job is None or not has_permission(user, TICKET_EXPORT):
        return error_response(404, CoreErrorCode.NOT_FOUND, f"No export {job_id} of yours.")
    relative = str((job.result or {}).get("file") or "") if isinstance(job.result, dict) else ""
    if job.state != Job.SUCCEEDED or not relative.startswith(f"{EXPORT_FOLDER}/"):
        return error_response(404, E.EXPORT_NOT_READY, f"Export {job_id} is {job.state.lower()}, not finished.")
    file = export_path(relative)
    if file.resolve().parent != export_path(EXPORT_FOLDER).resolve() or not file.is_file():
        return error_response(404, E.FILE_GONE, "The export's file is no longer kept; export again.")
    return FileResponse(open(file, "rb"), as_attachment=True, filename=f"tickets-{job.created_at:%Y%m%d-%H%M}.csv",
                        content_type="text/csv")


urlpatterns = [
    path("attachment/<uuid:attachment_id>/download", download_attachment, name="attachment"),
    path("export/<uuid:job_id>/download", download_export, name="export"),
]
