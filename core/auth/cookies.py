"""Tokens kept in cookies, for browser frontends (openIMIS's): ``JWT`` and ``JWT-refresh-token``.

A browser frontend asks ``tokenAuth`` only for ``refreshExpiresIn``; the tokens then travel as
HttpOnly, SameSite=Strict cookies, so page scripts never hold them. A cookie is sent by the
browser on its own, so a request authenticated by cookie must also prove it comes from the
frontend: Django's CSRF check (the ``csrftoken`` cookie, the ``X-CSRFToken`` header the frontend
copies from ``getCsrfToken``, and the ``Origin`` header matching the host or
``COREMIS_CSRF_TRUSTED_ORIGINS``); an upload dialog's multipart POST to a module route passes
on the ``Origin`` alone (:func:`csrf_refusal`). A request failing it is treated as not logged in,
with the reason ``CSRF_FAILED``. Bearer tokens (``Authorization: Bearer``) need no CSRF token: a browser
never adds them by itself.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware

from core.auth.errors import AuthErrorCode
from core.auth.tokens import TokenPair
from core.errors import ServiceError

ACCESS_COOKIE = "JWT"
REFRESH_COOKIE = "JWT-refresh-token"
# The frontend's session-expired handling reacts to this sentence (Django's own wording).
CSRF_MESSAGE = "CSRF token missing or incorrect."

PENDING_ATTR = "coremis_cookie_changes"


class _CsrfCheck(CsrfViewMiddleware):
    """Django's CSRF rules, answering the refusal's reason instead of an HTML page."""

    def _reject(self, request: HttpRequest, reason: str) -> Any:  # type: ignore[override]
        return _Refused(reason)


class _Refused(str):
    pass


def _view(request: HttpRequest) -> HttpResponse:  # the check needs a view that is not exempt
    return HttpResponse()


_CHECK = _CsrfCheck(_view)


def csrf_refusal(request: HttpRequest) -> ServiceError | None:
    """None when the request passes the CSRF check (safe methods always do), else why not.

    One exception to the token: openIMIS's upload dialogs (the reconciliation CSV, the
    individual and beneficiary imports) post their ``FormData`` with the cookie and no CSRF
    header. A multipart upload to a module route (not GraphQL) passes without the token when its
    ``Origin`` header names this site: the cookies are SameSite=Strict, so another site's page
    cannot send them, and a browser always sends ``Origin`` with such a POST, which no page can
    forge. Without ``Origin`` the token is required, as everywhere else."""
    outcome = _CHECK.process_view(request, _view, (), {})
    if not isinstance(outcome, _Refused):
        return None
    if _origin_only_upload(request):
        return None
    return ServiceError(AuthErrorCode.CSRF_FAILED, f"{CSRF_MESSAGE} ({outcome})")


def _origin_only_upload(request: HttpRequest) -> bool:
    if request.method != "POST" or request.content_type != "multipart/form-data":
        return False
    if request.path.rstrip("/") in ("/graphql", "/api/graphql") or "HTTP_ORIGIN" not in request.META:
        return False
    return bool(_CHECK._origin_verified(request))


def _secure(request: HttpRequest) -> bool:
    return bool(settings.COREMIS.get("COOKIE_SECURE")) or request.is_secure()


def _pending(request: HttpRequest) -> list[Any]:
    changes = getattr(request, PENDING_ATTR, None)
    if changes is None:
        changes = []
        setattr(request, PENDING_ATTR, changes)
    return changes


def set_token_cookies(request: HttpRequest, pair: TokenPair) -> None:
    """Queue the two cookies for the response (applied by :func:`apply_cookie_changes`)."""
    access_expires = datetime.fromtimestamp(int(pair.payload["exp"]), tz=UTC)
    refresh_expires = datetime.fromtimestamp(pair.refresh_expires_in, tz=UTC)
    secure = _secure(request)
    _pending(request).append(("set", ACCESS_COOKIE, pair.token, access_expires, secure))
    if pair.refresh_token:  # empty for a tab that raced another (core.auth.tokens.refresh)
        _pending(request).append(("set", REFRESH_COOKIE, pair.refresh_token, refresh_expires, secure))


def delete_cookie(request: HttpRequest, name: str) -> None:
    _pending(request).append(("delete", name, None, None, None))


def apply_cookie_changes(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    for action, name, value, expires, secure in getattr(request, PENDING_ATTR, None) or []:
        if action == "set":
            response.set_cookie(name, value, expires=expires, path="/", secure=secure, httponly=True,
                                samesite="Strict")
        else:
            response.delete_cookie(name, path="/", samesite="Strict")
    return response
