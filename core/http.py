"""The JSON error body every HTTP route (uploads, imports, downloads) answers with."""

from __future__ import annotations

from django.http import JsonResponse

from core.errors import ServiceError


def error_response(status: int, code: str, message: str, field: str | None = None) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message, "field": field}}, status=status)


def service_error_response(exc: ServiceError) -> JsonResponse:
    """A refused request: 403 when it was a missing permission, 400 otherwise."""
    return error_response(403 if exc.code == "PERMISSION_DENIED" else 400, exc.code, exc.message, exc.field)
