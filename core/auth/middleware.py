"""Authenticate API requests by bearer token.

The GraphQL endpoint and module API routes are token-only: a session cookie is ignored there,
so a page on another site cannot ride an administrator's browser session (the endpoint is
exempt from CSRF checks because tokens are not sent automatically). The admin keeps sessions.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse

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
        if token:
            try:
                request.user, _ = decode(token)
            except ServiceError as exc:
                request.user = AnonymousUser()
                request.token_error = exc  # type: ignore[attr-defined]
        elif request.path.startswith(TOKEN_ONLY_PREFIXES):
            request.user = AnonymousUser()
        return self.get_response(request)
