"""What the API accepts in an argument, checked once at the edge for every root field.

GraphQL's own coercion already types each value; what it lets through and PostgreSQL (or
Python's ``decimal``) would later choke on is refused here, with the argument's path:

- text with a NUL character or an unpaired UTF-16 surrogate (``"\\ud800"`` in JSON):
  neither is text PostgreSQL can store;
- numbers that are not finite (``NaN``, ``Infinity``: a ``Decimal`` from ``"NaN"``, a Float
  literal ``1e400``, a JSON value inside a ``JSONString``), which JSON and SQL have no
  place for;
- decimals beyond ``MAX_DECIMAL`` (no amount or ceiling is a quadrillion; the database's
  numeric columns overflow long before a value like ``1e40``);
- JSON documents nested deeper than ``MAX_JSON_DEPTH`` or bigger than ``MAX_JSON_NODES``.
"""

from __future__ import annotations

import datetime
import math
import re
import uuid
from collections.abc import Mapping
from decimal import Decimal
from enum import Enum
from typing import Any

from graphene.utils.str_converters import to_camel_case
from graphql import GraphQLError, StringValueNode, ValidationRule

from core.errors import CoreErrorCode, ServiceError

MAX_DECIMAL = Decimal(10) ** 15
NOT_TEXT = re.compile("[\x00\ud800-\udfff]")
NOT_TEXT_REASON = "contains a character that is not text (a NUL or an unpaired surrogate)"


def is_storable_text(text: str) -> bool:
    return NOT_TEXT.search(text) is None
MAX_JSON_DEPTH = 32
MAX_JSON_NODES = 100_000


class InputRefused(ServiceError):
    pass


def _label(path: list[str | int]) -> str:
    label = ""
    for part in path:
        label += f"[{part}]" if isinstance(part, int) else (f".{part}" if label else part)
    return label or "input"


class _Walker:
    def __init__(self) -> None:
        self.nodes = 0

    def walk(self, value: Any, path: list[str | int], depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_JSON_NODES:
            raise InputRefused(CoreErrorCode.INPUT_TOO_LARGE, f"The input has more than {MAX_JSON_NODES} values.", _label(path[:1]))
        if depth > MAX_JSON_DEPTH:
            raise InputRefused(CoreErrorCode.INPUT_TOO_DEEP, f"{_label(path)} is nested deeper than {MAX_JSON_DEPTH} levels.",
                               _label(path))
        if isinstance(value, str):
            if not is_storable_text(value):
                raise InputRefused(CoreErrorCode.INVALID_CHARACTER, f"{_label(path)} {NOT_TEXT_REASON}.", _label(path))
        elif isinstance(value, bool | int | None | uuid.UUID | datetime.date | datetime.time | Enum):
            return
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise InputRefused(CoreErrorCode.INVALID_NUMBER, f"{_label(path)} is not a finite number.", _label(path))
        elif isinstance(value, Decimal):
            if not value.is_finite():
                raise InputRefused(CoreErrorCode.INVALID_NUMBER, f"{_label(path)} is not a finite number.", _label(path))
            if abs(value) >= MAX_DECIMAL:
                raise InputRefused(CoreErrorCode.NUMBER_OUT_OF_RANGE,
                                   f"{_label(path)} is out of range (at most {MAX_DECIMAL:,.0f} in size).",
                                   _label(path))
        elif isinstance(value, Mapping):
            for key, item in value.items():
                name = to_camel_case(key) if isinstance(key, str) and depth == 0 else key
                if isinstance(key, str) and not is_storable_text(key):
                    raise InputRefused(CoreErrorCode.INVALID_CHARACTER, f"A key of {_label(path)} {NOT_TEXT_REASON}.",
                                       _label(path))
                self.walk(item, [*path, str(name)], depth + 1)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                self.walk(item, [*path, index], depth + 1)


def check_arguments(arguments: Mapping[str, Any]) -> None:
    """Raise :class:`InputRefused` for the first value the API does not accept."""
    walker = _Walker()
    for name, value in arguments.items():
        walker.walk(value, [to_camel_case(name)], 0)


class TextLiteralRule(ValidationRule):
    """Validation rule: every string literal in the document is storable text."""

    def enter_string_value(self, node: StringValueNode, *_args: Any) -> None:
        if not is_storable_text(node.value):
            self.report_error(GraphQLError(
                f"A string in the query {NOT_TEXT_REASON}; no field accepts it.", node,
                extensions={"code": CoreErrorCode.INVALID_CHARACTER},
            ))


def unstorable_path(value: Any, path: str = "") -> str | None:
    """The path (``.conditions[0].value``) of the first value in a JSON document that no text or
    jsonb column can keep: text that is not text (a NUL, an unpaired surrogate, in a value or
    a key) or a number that is not finite. ``None`` when there is none."""
    if isinstance(value, str):
        return None if is_storable_text(value) else path
    if isinstance(value, float):
        return None if math.isfinite(value) else path
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and not is_storable_text(key):
                return path
            found = unstorable_path(item, f"{path}.{key}")
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = unstorable_path(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None
