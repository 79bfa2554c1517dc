"""Receiving files: streamed to disk with a checksum, for a purpose a module declares and the
user has the right to.

A file nobody will read is not kept: a refused upload, an upload whose request was refused
after it was stored, and the file of an import refused or rejected before it ran are
removed from disk (the ``Upload`` row stays, for the record of what was sent).
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from core.errors import CoreErrorCode, ModuleConfigurationError, RequestErrorCode, ServiceError
from core.http import error_response, service_error_response
from core.models import Upload, User
from core.permissions import has_permission, registry

log = logging.getLogger("coremis.uploads")

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class UploadPurpose:
    """What files are accepted for (``individual.import``), and the permission it needs."""

    code: str
    permission: str
    description: str


@cache
def upload_purposes() -> dict[str, UploadPurpose]:
    """Every purpose the enabled modules declare (``coremis_upload_purposes``)."""
    from core.hooks import results_by_module

    purposes: dict[str, UploadPurpose] = {}
    for module, declared in results_by_module("coremis_upload_purposes"):
        for purpose in declared:
            if not purpose.code.startswith(f"{module}."):
                raise ModuleConfigurationError(module, f"declares upload purpose '{purpose.code}' outside its "
                                               "namespace", f"name it '{module}.<something>'")
            if purpose.code in purposes:
                raise ModuleConfigurationError(module, f"declares upload purpose '{purpose.code}' twice",
                                               "declare each purpose once")
            if purpose.permission not in registry():
                raise ModuleConfigurationError(module, f"upload purpose '{purpose.code}' needs the unknown "
                                               f"permission '{purpose.permission}'",
                                               "declare the permission in coremis_permissions")
            purposes[purpose.code] = purpose
    return purposes


def max_upload_bytes() -> int:
    return int(os.environ.get("COREMIS_MAX_UPLOAD_MB", "1024")) * 1024 * 1024


def store_upload(stream: IO[bytes], filename: str, purpose: str, user: User, content_type: str = "") -> Upload:
    """Copy ``stream`` to the media folder in chunks, hashing as it goes."""
    declared = upload_purposes().get(purpose)
    if declared is None:
        known = ", ".join(sorted(upload_purposes())) or "none"
        raise ServiceError(CoreErrorCode.UNKNOWN_PURPOSE, f"'{purpose}' is not an upload purpose; the purposes are {known}.",
                           "purpose")
    if not has_permission(user, declared.permission):
        raise ServiceError(CoreErrorCode.PERMISSION_DENIED, f"Uploading for '{purpose}' requires the permission "
                           f"'{declared.permission}'.", "purpose")
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
                        CoreErrorCode.FILE_TOO_LARGE, f"The file is larger than {limit // (1024 * 1024)} MiB.", "file"
                    )
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    if size == 0:
        target.unlink(missing_ok=True)
        raise ServiceError(CoreErrorCode.EMPTY_FILE, "The file is empty.", "file")
    return Upload.objects.create(
        id=upload_id, purpose=purpose, filename=filename[:255], content_type=content_type[:100],
        size=size, sha256=digest.hexdigest(), stored_path=str(target), created_by=user,
    )


@contextmanager
def receiving(stream: IO[bytes], filename: str, purpose: str, user: User, content_type: str = "") -> Iterator[Upload]:
    """:func:`store_upload`, for a request that goes on to use the file: if the block raises
    (the request is refused, its transaction rolled back), the stored file is removed."""
    upload = store_upload(stream, filename, purpose, user, content_type)
    try:
        yield upload
    except BaseException:
        discard_file(upload)
        raise


def discard_file(upload: Upload) -> None:
    """Remove an upload's file from disk (nothing will read it); its row stays."""
    try:
        Path(upload.stored_path).unlink(missing_ok=True)
    except OSError:
        log.warning("upload file not removed", extra={"upload": str(upload.pk), "path": upload.stored_path})


def discard_on_commit(upload: Upload) -> None:
    """Remove the file once the refusal that makes it useless is committed."""
    from django.db import transaction

    transaction.on_commit(lambda: discard_file(upload))


def get_upload(upload_id: Any, user: User, purpose: str) -> Upload:
    upload = Upload.objects.filter(pk=upload_id, purpose=purpose).first()
    if upload is None or (upload.created_by_id != user.pk and not user.is_superuser):
        raise ServiceError(CoreErrorCode.UPLOAD_NOT_FOUND, f"No upload {upload_id} of yours for '{purpose}'.", "uploadId")
    return upload


@csrf_exempt
@require_POST
def upload_view(request: HttpRequest) -> JsonResponse:
    """``POST /api/upload?purpose=<declared purpose>`` with a multipart ``file``; token auth only."""
    user = request.user
    if not user.is_authenticated:
        return error_response(401, RequestErrorCode.UNAUTHENTICATED, "Log in first.")
    file = request.FILES.get("file")
    if file is None:
        return error_response(400, RequestErrorCode.NO_FILE, "Send the file as multipart field 'file'.", "file")
    try:
        upload = store_upload(file, file.name or "upload", request.GET.get("purpose", ""), user, file.content_type or "")
    except ServiceError as exc:
        return service_error_response(exc)
    return JsonResponse({"uploadId": str(upload.pk), "size": upload.size, "sha256": upload.sha256}, status=201)
