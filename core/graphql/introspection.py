"""Who may introspect the schema (``__schema``, ``__type``).

``COREMIS_GRAPHQL_INTROSPECTION`` chooses: ``public`` (anyone; the default in the embedded
demo and with ``COREMIS_DEBUG``), ``authenticated`` (the default in production: logged-in
callers only) or ``off``. The refusal is a validation error, so a refused query runs nothing.
``__typename`` stays available: clients add it to every selection.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from graphql import GraphQLError
from graphql.language import FieldNode
from graphql.validation import ValidationRule

from core.errors import RequestErrorCode

INTROSPECTION_ENTRY_FIELDS = frozenset({"__schema", "__type"})


def introspection_allowed(user: Any) -> bool:
    policy = settings.COREMIS["GRAPHQL_INTROSPECTION"]
    if policy == "public":
        return True
    return policy == "authenticated" and bool(user is not None and user.is_authenticated)


class IntrospectionRefused(ValidationRule):
    def enter_field(self, node: FieldNode, *_args: Any) -> None:
        # The entry points only; what is selected under them would repeat the same refusal.
        if node.name.value in INTROSPECTION_ENTRY_FIELDS:
            anonymous = settings.COREMIS["GRAPHQL_INTROSPECTION"] == "authenticated"
            self.report_error(GraphQLError(
                ("Schema introspection needs a logged-in caller" if anonymous
                 else "Schema introspection is turned off on this server")
                + f" ('{node.name.value}'). The schema is published as schema.graphql.",
                node, extensions={"code": RequestErrorCode.INTROSPECTION_DISABLED},
            ))


def introspection_rules(user: Any) -> tuple[type[ValidationRule], ...]:
    """The validation rules this caller's requests get for introspection (none when allowed)."""
    return () if introspection_allowed(user) else (IntrospectionRefused,)
