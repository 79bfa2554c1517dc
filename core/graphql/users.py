"""Users over GraphQL, in openIMIS's shapes: ``users``, ``createUser``, ``updateUser``,
``deactivateUser`` / ``reactivateUser``, ``changePassword``, ``resetUserPassword``.

Inputs use openIMIS's names (``username``, ``otherNames``, ``lastName``, ``email``, ``roles``,
``locations``); the rules (scope, no privilege escalation) live in :mod:`core.auth.users`.
"""

from __future__ import annotations

from typing import Any

import django_filters
import graphene
from django.db.models import QuerySet

from core.auth import users as services
from core.auth.errors import AuthErrorCode
from core.errors import ModuleConfigurationError
from core.graphql.fields import ProtectedConnectionField
from core.graphql.history import HistoryEntryType
from core.graphql.mutations import CoreMutation
from core.graphql.permissions import AUTHENTICATED
from core.graphql.scalars import UUID
from core.graphql.types import ContributedField, CoreNode, CountableConnection
from core.hooks import hook, results_by_module
from core.models import User
from core.permissions import USER_CREATE, USER_DELETE, USER_UPDATE, USER_VIEW

USER_FIELDS = ("id", "username", "first_name", "last_name", "email", "is_active", "is_superuser",
               "date_joined", "last_login", "locked_until")


class UserFilter(django_filters.FilterSet):
    uuid = django_filters.UUIDFilter(field_name="id")
    # openIMIS calls first names "other names"; both filters read the same column.
    other_names__icontains = django_filters.CharFilter(field_name="first_name", lookup_expr="icontains")
    role__uuid = django_filters.UUIDFilter(field_name="roles__id", distinct=True, label="holds this role")
    location__uuid = django_filters.UUIDFilter(
        method="filter_location", label="scoped to this location or to a place under it")

    class Meta:
        model = User
        fields = {
            "username": ["exact", "iexact", "icontains", "istartswith"],
            "first_name": ["icontains", "istartswith"],
            "last_name": ["exact", "icontains", "istartswith"],
            "email": ["iexact", "icontains"],
            "is_active": ["exact"],
        }

    def filter_location(self, queryset: QuerySet, name: str, value: Any) -> QuerySet:
        scoped = hook().coremis_users_at_location(queryset=queryset, location_id=value)
        return queryset.none() if scoped is None else scoped


def _contributed_fields() -> dict[str, ContributedField]:
    fields: dict[str, ContributedField] = {}
    for module, contributed in results_by_module("coremis_user_fields"):
        for name, spec in contributed.items():
            if name in fields or name in _UserFields.__dict__ or name in USER_FIELDS:
                raise ModuleConfigurationError(
                    module, f"adds the user field '{name}', which exists already",
                    "rename the field in one of the modules",
                )
            fields[name] = spec
    return fields


class _UserFields:
    """The core's own fields of ``UserGQLType`` (modules add theirs, see below)."""

    other_names = graphene.String(required=True, description="openIMIS's name for firstName")
    roles = graphene.List(
        # By path: RoleType lives in core_schema, which imports this module.
        graphene.NonNull("core.graphql.core_schema.RoleType"), required=True,
        description="The roles the user holds (deleted roles grant nothing and are left out)",
    )
    is_locked = graphene.Boolean(required=True, description="locked out after failed log-ins")

    def resolve_other_names(self: Any, info: Any) -> str:
        return str(self.first_name)

    def resolve_roles(self: Any, info: Any) -> list[Any]:
        return list(self.roles.all())

    def resolve_is_locked(self: Any, info: Any) -> bool:
        return bool(self.is_locked())


CONTRIBUTED_FIELDS = _contributed_fields()
_PREFETCH = ("roles", *(lookup for spec in CONTRIBUTED_FIELDS.values() for lookup in spec.prefetch))


class _Meta:
    model = User
    name = "UserGQLType"
    interfaces = (graphene.relay.Node,)
    connection_class = CountableConnection
    filterset_class = UserFilter
    fields = USER_FIELDS
    # Objects elsewhere (``userCreated``…) keep the name-only UserType: e-mail addresses and
    # roles are for user administrators, not for whoever can read a location.
    skip_registry = True


def _list_queryset(cls: Any, queryset: QuerySet, info: Any) -> QuerySet:
    return services.visible_users(info.context.user, queryset.prefetch_related(*_PREFETCH))


UserGQLType: Any = type("UserGQLType", (_UserFields, CoreNode), {
    "__doc__": "A user account, as user administrators see it.",
    "__module__": __name__,
    "Meta": _Meta,
    "list_queryset": classmethod(_list_queryset),
    **{name: spec.field for name, spec in CONTRIBUTED_FIELDS.items()},
})


def _visible_user_history(queryset: QuerySet, info: Any, args: dict[str, Any]) -> QuerySet:
    """Changes of the accounts the caller may list, and of their roles (recorded under the user)."""
    return queryset.filter(table_name__in=USER_HISTORY_TABLES,
                           row_id__in=services.visible_users(info.context.user).values("pk"))


USER_HISTORY_TABLES = (User._meta.db_table, User.roles.through._meta.db_table)


class Query(graphene.ObjectType):
    users = ProtectedConnectionField(
        UserGQLType, permission=USER_VIEW,
        order_fields=["username", "last_name", "first_name", "email", "is_active", "date_joined",
                      "last_login"],
    )
    user_history = ProtectedConnectionField(
        HistoryEntryType, permission=USER_VIEW, order_fields=["changed_at", "id"],
        queryset_hook=_visible_user_history,
        description="Changes of user accounts (tableName core_user: no password hash, passwordChanged instead) "
                    "and of their roles (core_user_roles: roleId given or taken), within one's scope",
    )


# --- mutations -------------------------------------------------------------------------------


class UserInput(CoreMutation.Input):
    other_names = graphene.String(description="first names")
    last_name = graphene.String()
    email = graphene.String()
    roles = graphene.List(graphene.NonNull(UUID), description="replaces every role")
    locations = graphene.List(graphene.NonNull(UUID), description="replaces the location scope")


class CreateUserMutation(CoreMutation):
    """Create a user. Roles must not grant more than you hold (unless you have
    ``core.role.manage``) and locations must be within yours. Without ``password`` the account
    cannot log in until one is set with ``resetUserPassword``."""

    permission = USER_CREATE
    error_codes = AuthErrorCode
    user = graphene.Field(UserGQLType)

    class Input(UserInput):
        username = graphene.String(required=True)
        password = graphene.String()

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        request = services.check_create_user(
            user, username=data["username"], first_name=data.get("other_names") or "",
            last_name=data.get("last_name") or "", email=data.get("email") or "",
            password=data.get("password"), role_ids=data.get("roles"), location_ids=data.get("locations"),
        )
        return {"user": services.do_create_user(request)}


class UpdateUserMutation(CoreMutation):
    """Change a user within your scope; omitted fields stay as they are."""

    permission = USER_UPDATE
    error_codes = AuthErrorCode
    user = graphene.Field(UserGQLType)

    class Input(UserInput):
        uuid = UUID(required=True)
        username = graphene.String()

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        request = services.check_update_user(
            user, data["uuid"], username=data.get("username"), first_name=data.get("other_names"),
            last_name=data.get("last_name"), email=data.get("email"), role_ids=data.get("roles"),
            location_ids=data.get("locations"),
        )
        return {"user": services.do_update_user(request)}


def _activation(name: str, active: bool, doc: str) -> type[CoreMutation]:
    def perform(cls: Any, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        return {"user": services.do_set_active(services.check_set_active(user, data["uuid"], active))}

    return type(name, (CoreMutation,), {
        "__doc__": doc, "permission": USER_DELETE, "error_codes": AuthErrorCode, "user": graphene.Field(UserGQLType),
        "Input": type("Input", (CoreMutation.Input,), {"uuid": UUID(required=True)}),
        "perform": classmethod(perform),
    })


DeactivateUserMutation = _activation(
    "DeactivateUserMutation", False,
    "Deactivate a user: they can no longer log in and their open log-ins end. Nothing is deleted.")
ReactivateUserMutation = _activation(
    "ReactivateUserMutation", True, "Let a deactivated user log in again.")


class ChangePasswordMutation(CoreMutation):
    """Change your own password. A wrong ``oldPassword`` counts as a failed log-in. Every open
    log-in of the account ends, this one included: log in again with the new password."""

    permission = AUTHENTICATED
    error_codes = AuthErrorCode
    unlogged_inputs = frozenset({"old_password"})

    class Input(CoreMutation.Input):
        old_password = graphene.String(required=True)
        new_password = graphene.String(required=True)

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        services.do_set_password(services.check_change_password(user, data["old_password"], data["new_password"]))
        return {}


class ResetUserPasswordMutation(CoreMutation):
    """Set another user's password (it also lifts a lockout and ends their open log-ins)."""

    permission = USER_UPDATE
    error_codes = AuthErrorCode
    user = graphene.Field(UserGQLType)

    class Input(CoreMutation.Input):
        uuid = UUID(required=True)
        new_password = graphene.String(required=True)

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        request = services.check_reset_password(user, data["uuid"], data["new_password"])
        return {"user": services.do_set_password(request)}


class Mutation(graphene.ObjectType):
    create_user = CreateUserMutation.Field()
    update_user = UpdateUserMutation.Field()
    deactivate_user = DeactivateUserMutation.Field()
    reactivate_user = ReactivateUserMutation.Field()
    change_password = ChangePasswordMutation.Field()
    reset_user_password = ResetUserPasswordMutation.Field()
