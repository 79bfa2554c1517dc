"""The core's own GraphQL surface: log-in, the mutation log, background jobs, roles,
approvals, and users (``core.graphql.users``)."""

from __future__ import annotations

from typing import Any

import graphene
from django.middleware.csrf import get_token, rotate_token
from graphql import GraphQLError

from core import roles
from core.approvals.schema import Mutation as ApprovalMutation
from core.approvals.schema import Query as ApprovalQuery
from core.auth import tokens
from core.auth.backends import log_in
from core.auth.cookies import (
    ACCESS_COOKIE,
    REFRESH_COOKIE,
    csrf_refusal,
    delete_cookie,
    set_token_cookies,
)
from core.auth.errors import AuthErrorCode
from core.errors import RequestErrorCode, ServiceError
from core.graphql.fields import ProtectedConnectionField, ProtectedField
from core.graphql.jobs import JobType  # noqa: F401 - modules' payloads name it from here
from core.graphql.jobs import Mutation as JobMutation
from core.graphql.jobs import Query as JobQuery
from core.graphql.mutations import CoreMutation
from core.graphql.node import NodeQuery
from core.graphql.openimis import Query as OpenimisQuery
from core.graphql.permissions import mark
from core.graphql.scalars import UUID
from core.graphql.types import CoreNode, CountableConnection
from core.graphql.users import Mutation as UsersMutation
from core.graphql.users import Query as UsersQuery
from core.models import MutationLog, Role, User
from core.permissions import (
    MUTATION_LOG_VIEW,
    MUTATION_LOG_VIEW_ALL,
    ROLE_MANAGE,
    has_permission,
    registry,
)


class UserType(CoreNode):
    """Who created or changed something; only the name is exposed through other objects."""

    class Meta:
        model = User
        fields = ("id", "username", "first_name", "last_name")


class MutationLogType(CoreNode):
    class Meta:
        model = MutationLog
        interfaces = (graphene.relay.Node,)
        connection_class = CountableConnection
        filter_fields = {
            "client_mutation_id": ["exact", "in"], "status": ["exact"], "mutation_name": ["exact"]
        }
        fields = (
            "id", "mutation_name", "client_mutation_id", "client_mutation_label",
            "client_mutation_details", "json_content", "status", "request_date_time",
            "finished_date_time", "affected_ids",
        )

    status = graphene.Int(required=True, description="0 received, 1 error, 2 success")
    error = graphene.String(description="JSON list of {field, code, message} when status is 1")

    def resolve_error(self, info: Any) -> str | None:
        import json

        return json.dumps(self.error) if self.error else None

    @classmethod
    def list_queryset(cls, queryset: Any, info: Any) -> Any:
        user = info.context.user
        if not has_permission(user, MUTATION_LOG_VIEW_ALL):
            queryset = queryset.filter(user=user)
        return queryset


class RoleType(CoreNode):
    class Meta:
        model = Role
        interfaces = (graphene.relay.Node,)
        connection_class = CountableConnection
        filter_fields = {"name": ["exact", "icontains"], "is_deleted": ["exact"]}
        fields = ("id", "name", "description", "permissions", "is_deleted", "version",
                  "date_created", "date_updated")


class Query(ApprovalQuery, JobQuery, UsersQuery, NodeQuery, OpenimisQuery):
    mutation_logs = ProtectedConnectionField(
        MutationLogType, permission=MUTATION_LOG_VIEW,
        order_fields=["request_date_time", "status"],
    )
    roles = ProtectedConnectionField(RoleType, permission=ROLE_MANAGE, order_fields=["name"])
    permissions = ProtectedField(
        graphene.List(graphene.NonNull(lambda: PermissionType)), permission=ROLE_MANAGE,
        description="Every permission code the enabled modules declare.",
    )

    def resolve_permissions(self, info: Any) -> list[Any]:
        return sorted(registry().values(), key=lambda p: p.code)


class TokenPayload(graphene.ObjectType):
    token = graphene.String(required=True)
    refresh_token = graphene.String(required=True)
    payload = graphene.JSONString(required=True)
    refresh_expires_in = graphene.Int(required=True)


def _as_graphql_error(exc: ServiceError) -> GraphQLError:
    return GraphQLError(exc.message, extensions={"code": exc.code})


def _asks_for_tokens(info: Any) -> bool:
    """Whether the selection names ``token`` or ``refreshToken`` (a Bearer client) or not (a
    browser frontend asking only ``refreshExpiresIn``, which gets the tokens as cookies)."""
    for node in info.field_nodes:
        for selection in (node.selection_set.selections if node.selection_set else ()):
            if getattr(getattr(selection, "name", None), "value", None) in {"token", "refreshToken"}:
                return True
    return False


def _answer(info: Any, pair: tokens.TokenPair, *, cookies: bool) -> TokenPayload:
    if cookies:
        set_token_cookies(info.context, pair)
    return TokenPayload(pair.token, pair.refresh_token, pair.payload, pair.refresh_expires_in)


def _cookie_request_checked(info: Any) -> None:
    """A change made on the strength of a cookie must come from the frontend (CSRF)."""
    refused = csrf_refusal(info.context)
    if refused is not None:
        raise _as_graphql_error(refused)


class TokenAuth(graphene.Mutation):
    """Log in; returns an access token (``Authorization: Bearer``) and a refresh token. Asked
    for neither (only ``refreshExpiresIn`` or ``payload``), it sets them as the HttpOnly cookies
    ``JWT`` and ``JWT-refresh-token`` instead, for browser frontends (``core/auth/cookies.py``)."""

    class Arguments:
        username = graphene.String(required=True)
        password = graphene.String(required=True)

    Output = TokenPayload

    @staticmethod
    def mutate(root: Any, info: Any, username: str, password: str) -> TokenPayload:
        try:
            user = log_in(info.context, username, password)
        except ServiceError as exc:
            raise _as_graphql_error(exc) from exc
        cookies = not _asks_for_tokens(info)
        if cookies:
            rotate_token(info.context)  # a fresh CSRF secret for the new log-in
        return _answer(info, tokens.issue(user), cookies=cookies)


class RefreshToken(graphene.Mutation):
    """Spend a refresh token for a new pair. Each refresh token works once: keep the new one.
    Sending a spent one again ends that log-in everywhere (``TOKEN_INVALID``). Without
    ``refreshToken``, the ``JWT-refresh-token`` cookie is spent and both cookies are renewed."""

    class Arguments:
        refresh_token = graphene.String()

    Output = TokenPayload

    @staticmethod
    def mutate(root: Any, info: Any, refresh_token: str | None = None) -> TokenPayload:
        from_cookie = refresh_token is None
        if from_cookie:
            refresh_token = info.context.COOKIES.get(REFRESH_COOKIE)
            if not refresh_token:
                raise GraphQLError("Send refreshToken, or log in by tokenAuth first (no refresh cookie).",
                                   extensions={"code": AuthErrorCode.TOKEN_INVALID})
            _cookie_request_checked(info)
        try:
            pair = tokens.refresh(refresh_token)
        except ServiceError as exc:
            raise _as_graphql_error(exc) from exc
        return _answer(info, pair, cookies=from_cookie)


class RevokeToken(graphene.Mutation):
    """Log out: end the log-in a refresh token belongs to; its access tokens stop working too."""

    class Arguments:
        refresh_token = graphene.String(required=True)

    revoked = graphene.Int(required=True, description="when the log-in was ended (Unix time)")

    @staticmethod
    def mutate(root: Any, info: Any, refresh_token: str) -> RevokeToken:
        try:
            revoked_at = tokens.revoke(refresh_token)
        except ServiceError as exc:
            raise _as_graphql_error(exc) from exc
        return RevokeToken(revoked=int(revoked_at.timestamp()))


class DeleteTokenCookie(graphene.Mutation):
    """Forget the ``JWT`` cookie (openIMIS's log-out, first half)."""

    deleted = graphene.Boolean(required=True)

    @staticmethod
    def mutate(root: Any, info: Any) -> DeleteTokenCookie:
        delete_cookie(info.context, ACCESS_COOKIE)
        return DeleteTokenCookie(deleted=True)


class DeleteRefreshTokenCookie(graphene.Mutation):
    """Log out a browser: end the log-in of the ``JWT-refresh-token`` cookie (its access tokens
    stop working too) and forget the cookie. ``deleted`` is false when there was no cookie."""

    deleted = graphene.Boolean(required=True)

    @staticmethod
    def mutate(root: Any, info: Any) -> DeleteRefreshTokenCookie:
        refresh_token = info.context.COOKIES.get(REFRESH_COOKIE)
        delete_cookie(info.context, REFRESH_COOKIE)
        if not refresh_token:
            return DeleteRefreshTokenCookie(deleted=False)
        _cookie_request_checked(info)
        try:
            tokens.revoke(refresh_token)
        except ServiceError as exc:
            raise _as_graphql_error(exc) from exc
        return DeleteRefreshTokenCookie(deleted=True)


class GetCsrfToken(graphene.Mutation):
    """The CSRF token a browser frontend sends as ``X-CSRFToken`` with every request its
    ``JWT`` cookie logs in (it also sets the ``csrftoken`` cookie). Needs that cookie."""

    csrf_token = graphene.String(required=True)

    @staticmethod
    def mutate(root: Any, info: Any) -> GetCsrfToken:
        cookie = info.context.COOKIES.get(ACCESS_COOKIE)
        if not cookie:
            raise GraphQLError("Log in by tokenAuth (asking only refreshExpiresIn) first: there is no JWT cookie.",
                               extensions={"code": RequestErrorCode.UNAUTHENTICATED})
        try:
            tokens.decode(cookie)
        except ServiceError as exc:
            raise _as_graphql_error(exc) from exc
        return GetCsrfToken(csrf_token=get_token(info.context))


class VerifyToken(graphene.Mutation):
    class Arguments:
        token = graphene.String(required=True)

    payload = graphene.JSONString(required=True)

    @staticmethod
    def mutate(root: Any, info: Any, token: str) -> VerifyToken:
        try:
            _, payload = tokens.decode(token)
        except ServiceError as exc:
            raise _as_graphql_error(exc) from exc
        return VerifyToken(payload=payload)


class RoleInput(CoreMutation.Input):
    name = graphene.String()
    description = graphene.String()
    permissions = graphene.List(graphene.NonNull(graphene.String))


class CreateRoleMutation(CoreMutation):
    """Create a role granting declared permission codes (unknown codes are refused)."""

    permission = ROLE_MANAGE
    error_codes = AuthErrorCode
    role = graphene.Field(RoleType)

    class Input(RoleInput):
        pass

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        request = roles.check_create_role(user, data.get("name") or "", data.get("permissions") or [],
                                          data.get("description") or "")
        return {"role": roles.do_create_role(request)}


class UpdateRoleMutation(CoreMutation):
    permission = ROLE_MANAGE
    error_codes = AuthErrorCode
    role = graphene.Field(RoleType)

    class Input(RoleInput):
        uuid = UUID(required=True)
        version = graphene.Int()

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        request = roles.check_update_role(user, data["uuid"], version=data.get("version"), name=data.get("name"),
                                          permissions=data.get("permissions"), description=data.get("description"))
        return {"role": roles.do_update_role(request)}


class DeleteRoleMutation(CoreMutation):
    permission = ROLE_MANAGE
    error_codes = AuthErrorCode
    role = graphene.Field(RoleType)

    class Input(CoreMutation.Input):
        uuid = UUID(required=True)
        version = graphene.Int()

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        return {"role": roles.do_delete_role(roles.check_delete_role(user, data["uuid"], data.get("version")))}


class SetUserRolesMutation(CoreMutation):
    permission = ROLE_MANAGE
    error_codes = AuthErrorCode
    user = graphene.Field(UserType)

    class Input(CoreMutation.Input):
        user_uuid = UUID(required=True)
        role_uuids = graphene.List(graphene.NonNull(UUID), required=True)

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        return {"user": roles.do_set_user_roles(roles.check_set_user_roles(user, data["user_uuid"], data["role_uuids"]))}


class PermissionType(graphene.ObjectType):
    code = graphene.String(required=True)
    description = graphene.String(required=True)


class Mutation(ApprovalMutation, JobMutation, UsersMutation):
    create_role = CreateRoleMutation.Field()
    update_role = UpdateRoleMutation.Field()
    delete_role = DeleteRoleMutation.Field()
    set_user_roles = SetUserRolesMutation.Field()

    # Logging in and out needs no valid access token: these are the schema's only public fields.
    token_auth = mark(TokenAuth.Field(), "public")
    refresh_token = mark(RefreshToken.Field(), "public")
    verify_token = mark(VerifyToken.Field(), "public")
    revoke_token = mark(RevokeToken.Field(), "public")
    # openIMIS's browser log-in (cookies): they read or clear the caller's own cookies only.
    get_csrf_token = mark(GetCsrfToken.Field(), "public")
    delete_token_cookie = mark(DeleteTokenCookie.Field(), "public")
    delete_refresh_token_cookie = mark(DeleteRefreshTokenCookie.Field(), "public")
