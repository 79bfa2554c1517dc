"""Choice filters that accept a code quoted (``status: "ACTIVE"``, coremis's clients) or
unquoted (``status: ACTIVE``, as openIMIS's frontends send enum values), one argument for both.

``ChoiceTextFilter(field_name="status", choices=Status.choices)`` in a FilterSet becomes the
argument type ``ChoiceText``; a code outside the choices is refused by the filter form.

Choice fields are GraphQL enums in answers (:func:`choice_enum`); their filters keep accepting
codes as text: :class:`ChoiceTextFilter` (``ChoiceText``, quoted or unquoted),
:class:`ChoiceCodeFilter` and :class:`ChoiceCodesFilter` (``String`` and ``[String]``, the types
those arguments had before the field became an enum).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import Enum as PyEnum
from typing import Any

import django_filters
import graphene
from django import forms
from django.db import models
from graphene_django.filter import ListFilter, TypedFilter
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


# One GraphQL enum per name, whatever number of types expose the field (a second ``graphene.Enum``
# of the same name would be a schema conflict).
_ENUMS: dict[str, tuple[tuple[str, ...], type[graphene.Enum]]] = {}
_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]*$")


def choice_enum(name: str, choices: type[models.Choices] | Iterable[tuple[Any, Any]],
                description: str | None = None) -> type[graphene.Enum]:
    """The GraphQL enum of a model field's choices, named after the field (``PayrollStatus``).

    ``choices`` is the field's ``TextChoices`` class (pass the class, not ``.choices``: a model
    instance not yet reloaded holds its members, which only that class's enum can answer) or its
    ``(code, label)`` pairs. Each member's name is the stored code, so an answer carries exactly
    what the column holds (``"ACTIVE"``, ``"started"``); the label is the member's description.
    Unlike graphene-django's automatic conversion, no code is renamed (``A_1``) or upper-cased.
    Output types only: the field's filters keep taking text (:class:`ChoiceTextFilter`,
    :class:`ChoiceCodeFilter`, :class:`ChoiceCodesFilter`).
    """
    py_enum: type[PyEnum] | None = None
    if isinstance(choices, type) and issubclass(choices, models.Choices):
        py_enum = choices
        renamed = [member.name for member in choices if member.name != member.value]
        if renamed:
            raise ValueError(f"{name}: members {renamed} are not named as their stored codes")
        labels = {str(member.value): str(member.label) for member in choices}
    else:
        labels = {str(code): str(label) for code, label in choices}
    codes = tuple(labels)
    bad = [code for code in codes if not _NAME.match(code) or code in ("true", "false", "null")]
    if bad:
        raise ValueError(f"{name}: {bad} cannot be GraphQL enum values; give the field codes that can")
    known = _ENUMS.get(name)
    if known is not None:
        if known[0] != codes:
            raise ValueError(f"{name} is already an enum of other codes {list(known[0])}")
        return known[1]

    def describe(member: Any) -> str | None:
        if member is None:
            return description
        label = labels.get(member.value, "")
        # a label that only restates the code ("queued" for QUEUED) says nothing
        return label if label.lower().replace(" ", "_") != member.value.lower() else None

    if py_enum is None:
        py_enum = PyEnum(name, [(code, code) for code in codes])  # type: ignore[misc]
    enum = graphene.Enum.from_enum(py_enum, name=name, description=describe)
    _ENUMS[name] = (codes, enum)
    return enum


class ChoiceCodeFilter(TypedFilter):
    """A choice field's exact filter whose argument keeps its type (``String`` by default) when the
    field's output is an enum: graphene-django would otherwise type an undeclared filter like the
    output field, and ``status: "ACTIVE"`` (quoted, in a query or a ``String`` variable) would be
    refused. A code outside the choices is refused by the filter form."""

    field_class = forms.ChoiceField

    def __init__(self, *, field_name: str, choices: Iterable[tuple[Any, Any]], input_type: Any = graphene.String,
                 **kwargs: Any) -> None:
        super().__init__(input_type=input_type, field_name=field_name, choices=list(choices), **kwargs)


class _ListValue(forms.SelectMultiple):
    def value_from_datadict(self, data: Any, files: Any, name: str) -> Any:
        # the list as given; a select's getlist would turn a missing argument into []
        return data.get(name)


class _ChoiceCodesField(forms.MultipleChoiceField):
    """No value is no filter (``None``), an empty list is a filter that matches nothing."""

    widget = _ListValue

    def to_python(self, value: Any) -> Any:
        return None if value in (None, "") else super().to_python(value)

    def validate(self, value: Any) -> None:
        if value is not None:
            super().validate(value)


class ChoiceCodesFilter(ListFilter):
    """``<field>_In: [String]`` on a choice field: any of these codes; one outside the choices is
    refused by the filter form."""

    field_class = _ChoiceCodesField

    def __init__(self, *, field_name: str, choices: Iterable[tuple[Any, Any]], **kwargs: Any) -> None:
        super().__init__(input_type=graphene.List(graphene.String), field_name=field_name, lookup_expr="in",
                         choices=list(choices), **kwargs)
