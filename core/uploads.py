"""Receiving files: streamed to disk with a checksum, for a purpose the user has the right to."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from core.errors import ServiceError
from core.http import error_response, service_error_response
from core.models import Upload, User
from core.permissions import has_permission, registry

CHUNK = 1024 * 1024


def max_upload_bytes() -> int:
    return int(os.environ.get("COREMIS_MAX_UPLOAD_MB", "1024")) * 1024 * 1024


def store_upload(stream: IO[bytes], filename: str, purpose: str, user: User, content_type: str = "") -> Upload:
    """Copy ``stream`` to the media folder in chunks, hashing as it goes."""
    if purpose not in registry():
        raise ServiceError("UNKNOWN_PURPOSE", f"'{purpose}' is not an upload purpose (a permission code).", "purpose")
    if not has_permission(user, purpose):
        raise ServiceError("PERMISSION_DENIED", f"Uploading for '{purpose}' requires that permission.", "purpose")
    upload_id = uuid.uuid4()
    folder = Path(settings.MEDIA_ROOT) / "uploads" / timezone.now().strftime("%Y/%m")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{upload_id}{Path(filename).suffix.lower()[:10]}"
    digest = hashlib.sha256()
    size = 0
    limit = max_upload_bytes()
    try:
        with open(target, "wb") as out:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise ServiceError(
                        "FILE_TOO_LARGE", f"The file is larger than {limit // (1024 * 1024)} MiB.", "file"
                    )
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    if size == 0:
        target.unlink(missing_ok=True)
        raise ServiceError("EMPTY_FILE", "The file is empty.", "file")
    return Upload.objects.create(
        id=upload_id, purpose=purpose, filename=filename[:255], content_type=content_type[:100],
        size=size, sha256=digest.hexdigest(), stored_path=str(target), created_by=user,
    )


def get_upload(upload_id: Any, user: User, purpose: str) -> Upload:
    upload = Upload.objects.filter(pk=upload_id, purpose=purpose).first()
    if upload is None or (upload.created_by_id != user.pk and not user.is_superuser):
        raise ServiceError("UPLOAD_NOT_FOUND", f"No upload {upload_id} of yours for '{purpose}'.", "uploadId")
    return upload


@csrf_exempt
@require_POST
def upload_view(request: HttpRequest) -> JsonResponse:
    """``POST /api/upload?purpose=<permission>`` with a multipart ``file``; token auth only."""
    user = request.user
    if not user.is_authenticated:
        return error_response(401, "UNAUTHENTICATED", "Log in first.")
    file = request.FILES.get("file")
    if file is None:
        return error_response(400, "NO_FILE", "Send the file as multipart field 'file'.", "file")
    try:
        upload = store_upload(file, file.name or "upload", request.GET.get("purpose", ""), user, file.content_type or "")
    except ServiceError as exc:
        return service_error_response(exc)
    return JsonResponse({"uploadId": str(upload.pk), "size": upload.size, "sha256": upload.sha256}, status=201)
