"""The schema is composed from the core's surface and what each enabled module contributes."""

from __future__ import annotations

from typing import Any

import graphene
from django.conf import settings
from graphene.validation import depth_limit_validator
from graphene_django.views import GraphQLView
from graphql import specified_rules

from core.graphql import core_schema
from core.graphql.permissions import PUBLIC_FIELDS, declared_permission
from core.loader import ModuleConfigurationError


def merge_roots(kind: str, contributions: list[tuple[str, type]]) -> type:
    """One root type from several modules' ObjectTypes; a field defined twice stops start-up."""
    owners: dict[str, str] = {}
    fields: dict[str, Any] = {}
    for module, cls in contributions:
        for name, field in cls._meta.fields.items():  # type: ignore[attr-defined]
            if name in owners:
                raise ModuleConfigurationError(
                    module,
                    f"defines the GraphQL {kind} field '{name}', which module '{owners[name]}' "
                    "already defines",
                    "rename the field in one of the two modules, or disable one of them",
                )
            permission = declared_permission(field)
            graphql_name = field.name or graphene.utils.str_converters.to_camel_case(name)
            if permission is None or (permission == "public" and graphql_name not in PUBLIC_FIELDS):
                raise ModuleConfigurationError(
                    module,
                    f"the GraphQL {kind} field '{name}' declares no permission",
                    "use ProtectedConnectionField / ProtectedField(permission=...) or a "
                    "CoreMutation with a permission",
                )
            owners[name] = module
            fields[name] = field
    # Inheriting from every contribution keeps each module's resolve_* methods.
    return type(kind, tuple(cls for _, cls in contributions), {})


def build_schema() -> graphene.Schema:
    from core.hooks import results_by_module

    queries = [("core", core_schema.Query), *results_by_module("coremis_graphql_query")]
    mutations = [("core", core_schema.Mutation), *results_by_module("coremis_graphql_mutation")]
    extra_types: list[type] = []
    for _, types in results_by_module("coremis_graphql_types"):
        extra_types.extend(types)
    return graphene.Schema(
        query=merge_roots("Query", queries),
        mutation=merge_roots("Mutation", mutations),
        types=extra_types or None,
    )


schema = build_schema()


class CoreGraphQLView(GraphQLView):
    """graphene's view with GraphQL's standard validation rules plus the query-depth limit,
    checked in graphene's own single parse-and-validate pass."""

    def __init__(self, **kwargs: Any) -> None:
        depth = depth_limit_validator(max_depth=settings.COREMIS["GRAPHQL_MAX_DEPTH"])
        kwargs.setdefault("validation_rules", (*specified_rules, depth))
        super().__init__(**kwargs)
