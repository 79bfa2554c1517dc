"""Authenticate API requests by bearer token, or by the ``JWT`` cookie of a browser frontend.

The GraphQL endpoint and module API routes ignore Django's session cookie, so a page on another
site cannot ride an administrator's admin session (the endpoint is exempt from Django's own
CSRF middleware because it checks here instead). A bearer token is never added by a browser on
its own, so it needs no more. The ``JWT`` cookie is (``core.auth.cookies``): a request carrying
only it must pass the CSRF check, or it is treated as not logged in (``CSRF_FAILED``). The admin
keeps sessions.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse

from core.auth.cookies import ACCESS_COOKIE, csrf_refusal
from core.auth.tokens import decode
from core.errors import ServiceError

TOKEN_ONLY_PREFIXES = ("/graphql", "/api/")


def bearer_token(request: HttpRequest) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() in {"bearer", "jwt"} and token.strip():
        return token.strip()
    return None


class JWTAuthenticationMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = bearer_token(request)
        cookie = request.COOKIES.get(ACCESS_COOKIE) if request.path.startswith(TOKEN_ONLY_PREFIXES) else None
        if token:
            self._authenticate(request, token)
        elif cookie:
            refused = csrf_refusal(request)
            if refused is None:
                self._authenticate(request, cookie)
            else:
                request.user = AnonymousUser()
                request.token_error = refused  # type: ignore[attr-defined]
        elif request.path.startswith(TOKEN_ONLY_PREFIXES):
            request.user = AnonymousUser()
        return self.get_response(request)

    @staticmethod
    def _authenticate(request: HttpRequest, token: str) -> None:
        try:
            request.user, _ = decode(token)
        except ServiceError as exc:
            request.user = AnonymousUser()
            request.token_error = exc  # type: ignore[attr-defined]
