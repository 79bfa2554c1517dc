"""``node(id:)``: any object by the Relay global id queries return, seen as its own list sees it.

The permission a type needs is the one of the root list that returns it (``locations`` for
``LocationGQLType``…), and the type's ``list_queryset`` applies the caller's scope, so an
object the caller could not find in that list is "not found" here too (``null``), whether it
does not exist or lies outside their scope. Only types listed at the root can be fetched.
"""

from __future__ import annotations

import uuid
from functools import lru_cache
from typing import Any

import graphene
from graphql import GraphQLError, GraphQLSchema
from graphql_relay import from_global_id

from core.errors import CoreErrorCode
from core.graphql.fields import ProtectedConnectionField, ProtectedField
from core.graphql.permissions import AUTHENTICATED, Forbidden, check_permission
from core.graphql.types import CoreNode
from core.permissions import has_permission


@lru_cache(maxsize=8)
def fetchable_types(schema: GraphQLSchema) -> dict[str, tuple[type[CoreNode], tuple[str, ...]]]:
    """GraphQL type name -> (type, the permissions of the root lists that return it)."""
    query = schema.query_type.graphene_type  # type: ignore[union-attr]
    found: dict[str, tuple[type[CoreNode], set[str]]] = {}
    for field in query._meta.fields.values():
        if isinstance(field, ProtectedConnectionField) and issubclass(field.node_type, CoreNode):
            node = field.node_type
            found.setdefault(node._meta.name, (node, set()))[1].add(field.permission)
    return {name: (node, tuple(sorted(codes))) for name, (node, codes) in found.items()}


def _invalid(global_id: str, why: str) -> GraphQLError:
    return GraphQLError(f"'{global_id[:100]}' is not an id node() can fetch: {why}.",
                        extensions={"code": CoreErrorCode.INVALID_ID})


class NodeQuery(graphene.ObjectType):
    node = ProtectedField(
        graphene.relay.Node, permission=AUTHENTICATED, id=graphene.ID(required=True),
        description="The object with this global id, with the permission and scope of its own list; "
                    "null when it does not exist or is not visible to you.",
    )

    def resolve_node(self, info: Any, id: str) -> Any:
        user = check_permission(info, AUTHENTICATED)
        resolved = from_global_id(id) if isinstance(id, str) else None
        if resolved is None or not resolved.type:
            raise _invalid(str(id), "it is not a global id (base64 of '<Type>:<uuid>')")
        entry = fetchable_types(info.schema).get(resolved.type)
        if entry is None:
            raise _invalid(id, f"no root list returns the type '{resolved.type[:50]}'")
        node_type, permissions = entry
        if not any(has_permission(user, code) for code in permissions):
            raise Forbidden(permissions[0])
        try:
            pk = uuid.UUID(resolved.id)
        except ValueError as exc:
            raise _invalid(id, "its key is not a UUID") from exc
        return node_type.get_node(info, pk)
