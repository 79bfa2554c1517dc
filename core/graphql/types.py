"""Shared GraphQL types: counted connections, typed mutation errors, base node types, the
user as other objects name it, the import mode."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import graphene
from django.db.models import QuerySet
from graphene import relay
from graphene_django import DjangoObjectType

from core.graphql.scalars import UUID
from core.models import User


class CountableConnection(relay.Connection):
    """A Relay connection with ``totalCount``, as openIMIS frontends expect."""

    class Meta:
        abstract = True

    total_count = graphene.Int(required=True, description="exact, unless totalCountIsEstimate")
    total_count_is_estimate = graphene.Boolean(
        required=True, description="totalCount is PostgreSQL's estimate: a list of a whole table larger than the "
        "exact-count limit (COREMIS_EXACT_COUNT_LIMIT); filtered and location-scoped lists are always exact")

    def resolve_total_count(self, info: Any) -> int:
        return int(getattr(self, "length", 0))

    def resolve_total_count_is_estimate(self, info: Any) -> bool:
        return bool(getattr(self, "length_is_estimate", False))


class MutationError(graphene.ObjectType):
    """One reason a mutation was refused; ``field`` is null when it is about the whole input."""

    field = graphene.String()
    code = graphene.String(required=True)
    message = graphene.String(required=True)


class CoreNode(DjangoObjectType):
    """Base for model types: Relay ``id`` plus ``uuid``.

    Subclasses limit lists to the user's scope in :meth:`list_queryset`, and join or prefetch
    there only what a resolver reads behind a field (a payroll's ``paymentMethod`` reads its
    point), when the request asks for that field (``core.graphql.fields.selects``): the foreign
    keys a request selects are joined by the list itself, and joining the others costs every
    request their columns. They do not override ``get_queryset``: graphene-django then runs one
    query per related object to re-check it, which turns every list into N+1 queries.
    """

    uuid = UUID(required=True)

    class Meta:
        abstract = True

    def resolve_uuid(self, info: Any) -> Any:
        return self.pk

    @classmethod
    def list_queryset(cls, queryset: QuerySet, info: Any) -> QuerySet:
        return queryset

    @classmethod
    def get_node(cls, info: Any, id: Any) -> Any:
        """One object by key, within the same scope as the type's lists (``node(id:)``)."""
        return cls.list_queryset(cls._meta.model._default_manager.all(), info).filter(pk=id).first()


class UserType(CoreNode):
    """Who created or changed something; only the name is exposed through other objects."""

    # The user's Relay id, the same one the users list (``UserGQLType``) gives, as every other
    # object's ``id`` is: openIMIS's screens decode it (a task's checkers, a ticket's attending
    # staff) and compare it with ``current_user``'s id; ``uuid`` is the bare key.
    id = graphene.ID(required=True, description="the user's Relay id (as the users list gives it)")

    class Meta:
        model = User
        fields = ("id", "username", "first_name", "last_name")

    def resolve_id(self, info: Any) -> str:
        return relay.Node.to_global_id("UserGQLType", str(self.pk))


class JSONString(graphene.JSONString):
    """Alias kept in one place so every module returns ``json_ext`` the same way."""


@dataclass(frozen=True)
class ContributedField:
    """A field a module adds to a core type, with the ``prefetch_related`` lookups its
    resolver reads (so lists do not cost one query per row)."""

    field: graphene.Field
    prefetch: tuple[str, ...] = ()


def _import_mode_enum() -> type[graphene.Enum]:
    from core.imports import ImportMode

    return graphene.Enum.from_enum(
        ImportMode, description="What an import does with a file some of whose rows are invalid.")


# The one GraphQL enum of import modes (``ImportMode``): every import mutation's ``mode``.
ImportModeEnum = _import_mode_enum()
