"""``POST /api/location/import?mode=valid_rows`` with a multipart ``file``: upload and start
the import in one request (the GraphQL route is ``/api/upload`` + ``importLocations``); both
start it through the same use case (``services.check_import_locations`` / ``do_import_locations``)."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from core.errors import RequestErrorCode, ServiceError
from core.http import error_response, service_error_response
from core.uploads import receiving
from modules.location import services


@csrf_exempt
@require_POST
def import_view(request: HttpRequest) -> JsonResponse:
    user = request.user
    if not user.is_authenticated:
        return error_response(401, RequestErrorCode.UNAUTHENTICATED, "Log in first.")
    file = request.FILES.get("file")
    if file is None:
        return error_response(400, RequestErrorCode.NO_FILE, "Send the CSV as multipart field 'file'.", "file")
    try:
        mode = services.import_mode(request.GET.get("mode"))
        with (transaction.atomic(),
              receiving(file, file.name or "locations.csv", services.IMPORT_PURPOSE, user,
                        file.content_type or "") as upload):
            job = services.do_import_locations(services.check_import_locations(user, upload.pk, mode))
    except ServiceError as exc:
        return service_error_response(exc)
    return JsonResponse({"jobId": str(job.pk), "uploadId": str(upload.pk)}, status=202)


urlpatterns = [path("import", import_view, name="import")]
