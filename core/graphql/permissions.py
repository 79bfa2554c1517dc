"""Every root field and mutation declares the permission it needs; nothing is open by default."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError

from core.errors import CoreErrorCode, RequestErrorCode
from core.permissions import has_permission

# Fields anyone may call: logging in (and out) needs no valid access token.
PUBLIC_FIELDS = frozenset({"tokenAuth", "refreshToken", "verifyToken", "revokeToken",
                           # a browser's own cookies (core/auth/cookies.py)
                           "getCsrfToken", "deleteTokenCookie", "deleteRefreshTokenCookie",
                           # the frontend's settings, read before the log-in form shows
                           "moduleConfigurations",
                           # the grievance module's vocabulary, read by its frontend while loading
                           "grievanceConfig"})

# Fields any logged-in user may call because they act only on the caller themselves
# (``changePassword``) or check per object what they return (``node`` applies the permission
# of the type asked for). Their declared permission is AUTHENTICATED.
AUTHENTICATED = "authenticated"
AUTHENTICATED_FIELDS = frozenset({"node", "changePassword", "languages", "user",
                                  # the owning module checks the right (coremis_custom_filter_schema)
                                  "customFilters",
                                  # the owning module checks the right (coremis_upload_workflows)
                                  "workflow"})

PERMISSION_ATTR = "coremis_permission"


class NotAuthenticated(GraphQLError):
    def __init__(self) -> None:
        super().__init__(
            "Authentication required: log in with tokenAuth and send the token as "
            "'Authorization: Bearer <token>'.",
            extensions={"code": RequestErrorCode.UNAUTHENTICATED},
        )


class Forbidden(GraphQLError):
    def __init__(self, code: str) -> None:
        super().__init__(
            f"Permission denied: this requires the permission '{code}'.",
            extensions={"code": CoreErrorCode.PERMISSION_DENIED, "permission": code},
        )


def user_of(info: Any) -> Any:
    return getattr(info.context, "user", None)


def check_permission(info: Any, code: str) -> Any:
    """Return the acting user, or raise the GraphQL error a client should see."""
    user = user_of(info)
    if user is None or not user.is_authenticated:
        refused = getattr(info.context, "token_error", None)
        if refused is not None:
            # A token was sent but is expired or invalid: say so, so a client knows to refresh
            # (TOKEN_EXPIRED) or to log in again (TOKEN_INVALID) rather than guess.
            raise GraphQLError(refused.message, extensions={"code": refused.code})
        raise NotAuthenticated()
    if code == AUTHENTICATED:
        return user
    if not has_permission(user, code):
        raise Forbidden(code)
    return user


def mark(field: Any, code: str) -> Any:
    setattr(field, PERMISSION_ATTR, code)
    return field


def declared_permission(field: Any) -> str | None:
    return getattr(field, PERMISSION_ATTR, None)
