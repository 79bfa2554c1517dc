"""``GET /api/individual/export/<job uuid>/download``: the file an export job wrote."""

from __future__ import annotations

from typing import Any

from django.http import FileResponse, HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.http import require_GET

from core.errors import CoreErrorCode, RequestErrorCode
from core.http import error_response
from core.models import Job
from core.permissions import JOB_VIEW_ALL, has_permission
from modules.individual.errors import IndividualErrorCode
from modules.individual.export import CONTENT_TYPES, EXPORT_FOLDER, export_path
from modules.individual.permissions import REGISTRY_EXPORT
from modules.location.services import scope_paths


def _covers(viewer: Any, creator: Any) -> bool:
    """Whether ``viewer``'s locations include all of ``creator``'s: an export holds the people
    of its creator's scope, and reading someone else's must not widen the reader's."""
    mine = scope_paths(viewer)
    if mine is None:
        return True
    theirs = scope_paths(creator) if creator is not None else None
    if theirs is None:
        return False
    return all(any(path.startswith(prefix) for prefix in mine) for path in theirs)


def _may_read(user: Any, job: Job) -> bool:
    if not has_permission(user, REGISTRY_EXPORT):
        return False
    if job.created_by_id == user.pk:
        return True
    return has_permission(user, JOB_VIEW_ALL) and _covers(user, job.created_by)


@require_GET
def download_export(request: HttpRequest, job_id: Any) -> HttpResponse:
    user = request.user
    if not user.is_authenticated:
        return error_response(401, RequestErrorCode.UNAUTHENTICATED, "Send 'Authorization: Bearer <token>'.")
    job = Job.objects.select_related("created_by").filter(pk=job_id, kind="individual.export").first()
    # Someone else's export answers like a missing one: its existence is not theirs to learn.
    if job is None or not _may_read(user, job):
        return error_response(404, CoreErrorCode.NOT_FOUND, f"No export {job_id} of yours.")
    result = job.result if isinstance(job.result, dict) else {}
    relative = str(result.get("file") or "")
    if job.state != Job.SUCCEEDED or not relative.startswith(f"{EXPORT_FOLDER}/"):
        return error_response(404, IndividualErrorCode.NOT_READY, f"Export {job_id} is {job.state.lower()}, not finished.")
    file = export_path(relative)
    # The path comes from the job's result; never serve anything outside the export folder.
    if file.resolve().parent != export_path(EXPORT_FOLDER).resolve() or not file.is_file():
        return error_response(404, IndividualErrorCode.FILE_GONE, f"The file of export {job_id} is no longer kept; export again.")
    file_format = str(result.get("format") or file.suffix.lstrip("."))
    entity = "households" if job.params.get("entity") == "group" else "individuals"
    name = f"{entity}-{job.created_at:%Y%m%d-%H%M}.{file_format}"
    response = FileResponse(
        open(file, "rb"),  # FileResponse closes it once sent
        as_attachment=True, filename=name,
        content_type=CONTENT_TYPES.get(file_format, "application/octet-stream"),
    )
    # Personal data: no shared cache keeps a copy.
    response["Cache-Control"] = "private, no-store"
    return response


export_urlpatterns: list = [
    path("export/<uuid:job_id>/download", download_export, name="export-download"),
]
