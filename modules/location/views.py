"""``POST /api/location/import?mode=valid_rows`` with a multipart ``file``: upload and start
the import in one request (the GraphQL route is ``/api/upload`` + ``importLocations``)."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from core.errors import ServiceError
from core.http import error_response, service_error_response
from core.jobs import start_job
from core.uploads import receiving


@csrf_exempt
@require_POST
def import_view(request: HttpRequest) -> JsonResponse:
    user = request.user
    if not user.is_authenticated:
        return error_response(401, "UNAUTHENTICATED", "Log in first.")
    file = request.FILES.get("file")
    mode = request.GET.get("mode", "all_or_nothing")
    if file is None:
        return error_response(400, "NO_FILE", "Send the CSV as multipart field 'file'.", "file")
    if mode not in ("all_or_nothing", "valid_rows"):
        return error_response(400, "INVALID_MODE", "mode is all_or_nothing or valid_rows.", "mode")
    try:
        with (transaction.atomic(),
              receiving(file, file.name or "locations.csv", "location.import", user,
                        file.content_type or "") as upload):
            job = start_job("location.import", {"upload_id": str(upload.pk), "mode": mode}, user)
    except ServiceError as exc:
        return service_error_response(exc)
    return JsonResponse({"jobId": str(job.pk), "uploadId": str(upload.pk)}, status=202)


urlpatterns = [path("import", import_view, name="import")]
