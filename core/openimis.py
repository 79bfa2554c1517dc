"""openIMIS's frontend on coremis: the shapes its screens read that are not GraphQL types of
a module — the user's rights as openIMIS's numbers and ``GET /api/core/users/current_user/``.

The numbers are declared beside each permission code (``Permission(code, text, openimis=(…))``);
this file only gathers them. A user holding a code holds its numbers; a superuser holds all.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from core.permissions import registry


def openimis_rights(user: Any) -> list[int]:
    """The openIMIS right numbers ``user`` holds, ascending (none when not logged in)."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return []
    everything = user.is_superuser or getattr(user, "is_system", False)
    held = set() if everything else set(user.permission_codes())
    return sorted({number for code, permission in registry().items() if everything or code in held
                   for number in permission.openimis})


def language_of(user: Any) -> str:
    return str(settings.COREMIS.get("LANGUAGES", ["en"])[0])


def current_user_json(user: Any) -> dict[str, Any]:
    """openIMIS's ``current_user`` answer: the account, and ``i_user`` with rights and language."""
    rights = openimis_rights(user)
    return {
        "id": str(user.uuid),
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_superuser": bool(user.is_superuser),
        "is_staff": bool(user.is_staff),
        "rights": rights,
        "i_user": {
            "id": str(user.uuid),
            "uuid": str(user.uuid),
            "login_name": user.username,
            "other_names": user.first_name,
            "last_name": user.last_name,
            "email": user.email,
            "language": language_of(user),
            "rights": rights,
            "health_facility_id": None,
            "has_password": user.has_usable_password(),
        },
        "t_user": None,
        "officer_id": None,
        "claim_admin_id": None,
        "is_imis_admin": bool(user.is_superuser),
    }


@require_GET
def current_user_view(request: HttpRequest) -> JsonResponse:
    """``GET /api/core/users/current_user/``: who the token or the ``JWT`` cookie names; null
    when neither was sent, 401 (with the reason) when the one sent is not valid."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        refused = getattr(request, "token_error", None)
        if refused is None:
            # Nothing was sent: nobody is logged in, which the frontend asks at start-up (it
            # reads a null user as "show the log-in form").
            return JsonResponse(None, safe=False)
        return JsonResponse({"detail": refused.message, "code": str(refused.code)}, status=401)
    return JsonResponse(current_user_json(user))
