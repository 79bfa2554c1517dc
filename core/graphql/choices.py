"""Choice filters that accept a code quoted (``status: "ACTIVE"``, coremis's clients) or
unquoted (``status: ACTIVE``, as openIMIS's frontends send enum values), one argument for both.

``ChoiceTextFilter(field_name="status", choices=Status.choices)`` in a FilterSet becomes the
argument type ``ChoiceText``; a code outside the choices is refused by the filter form.
"""

from __future__ import annotations

from typing import Any

import django_filters
import graphene
from django import forms
from graphene_django.forms.converter import convert_form_field
from graphql import EnumValueNode, StringValueNode, Undefined


class ChoiceText(graphene.Scalar):
    """A choice's code, written as a string or as an unquoted enum value."""

    @staticmethod
    def serialize(value: Any) -> str:
        return str(value)

    @staticmethod
    def parse_value(value: Any) -> Any:
        return value if isinstance(value, str) else Undefined

    @staticmethod
    def parse_literal(node: Any, _variables: Any = None) -> Any:
        if isinstance(node, StringValueNode | EnumValueNode):
            return node.value
        return Undefined


class ChoiceTextFormField(forms.ChoiceField):
    pass


class ChoiceTextFilter(django_filters.ChoiceFilter):
    field_class = ChoiceTextFormField


@convert_form_field.register(ChoiceTextFormField)
def _convert(field: forms.Field) -> Any:
    return ChoiceText(description=field.help_text or None, required=field.required)
