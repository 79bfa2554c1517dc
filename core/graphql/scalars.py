"""The one ``UUID`` scalar of the schema: an argument that takes a UUID also takes the Relay
global id (``id``) that queries return for the object.

Clients read ``id`` from a list and send it back to a mutation; they should not have to
decode it first. The global id's type name is not checked here (an argument does not know
which type it names): a global id of the wrong type carries a key that finds nothing, so
the service answers "not found" as for any unknown UUID.

Every module uses this class instead of ``graphene.UUID``, and graphene-django produces it for
model and filter UUID fields (:func:`use_for_django_fields`, called when the core app is
ready). Both classes are named ``UUID``, so any remaining ``graphene.UUID`` stops the schema
from building (graphene refuses two types of one name): the sweep cannot be half done.
"""

from __future__ import annotations

import uuid
from typing import Any

import graphene
from graphql import GraphQLError, Undefined
from graphql.language import StringValueNode, ValueNode
from graphql_relay import from_global_id

from core.errors import CoreErrorCode


def parse_uuid(value: Any) -> uuid.UUID:
    """A UUID from a UUID string or from a global id carrying one; GraphQLError otherwise."""
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str) and value:
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
        resolved = from_global_id(value)
        if resolved.type:
            try:
                return uuid.UUID(resolved.id)
            except ValueError:
                pass
    # GraphQL's own message around this one already quotes the value.
    raise GraphQLError("This is neither a UUID nor the global id of an object.",
                       extensions={"code": CoreErrorCode.INVALID_ID})


class UUID(graphene.Scalar):
    """A UUID, or the Relay global id (``id``) of the object, as queries return it."""

    @staticmethod
    def serialize(value: Any) -> str:
        return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))

    @staticmethod
    def parse_value(value: Any) -> uuid.UUID:
        return parse_uuid(value)

    @staticmethod
    def parse_literal(node: ValueNode, _variables: Any = None) -> Any:
        if isinstance(node, StringValueNode):
            return parse_uuid(node.value)
        return Undefined


def use_for_django_fields() -> None:
    """Make graphene-django convert model and form (filter) UUID fields to this scalar."""
    from django import forms
    from django.db import models
    from graphene_django.converter import convert_django_field, get_django_field_description
    from graphene_django.forms.converter import convert_form_field, get_form_field_description

    @convert_django_field.register(models.UUIDField)
    def _model_field(field: Any, registry: Any = None) -> UUID:
        return UUID(description=get_django_field_description(field), required=not field.null)

    @convert_form_field.register(forms.UUIDField)
    def _form_field(field: Any) -> UUID:
        return UUID(description=get_form_field_description(field), required=field.required)
