"""``customFilters: ["field__lookup__type=value"]`` over ``json_ext``, as openIMIS sends them.

Types: string, integer, decimal, boolean, date. Lookups: exact, iexact, icontains, lt, lte, gt,
gte, isnull. Comparisons are between jsonb values (no SQL cast, so a badly typed stored value
cannot make the query fail): numbers compare numerically, dates as ISO strings; iexact and
icontains work on the text value. A malformed filter is a :class:`CustomFilterError` with a
sentence, never a database error.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db.models import Q

from core.errors import CoreErrorCode, ServiceError
from core.graphql.inputs import NOT_TEXT, NOT_TEXT_REASON, is_storable_text

TYPES = ("string", "integer", "decimal", "boolean", "date")
LOOKUPS = ("exact", "iexact", "icontains", "lt", "lte", "gt", "gte", "isnull")
TEXT_ONLY = ("iexact", "icontains")
FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class CustomFilterError(ServiceError):
    def __init__(self, text: str, reason: str) -> None:
        super().__init__(CoreErrorCode.INVALID_CUSTOM_FILTER, f"Custom filter '{text}': {reason}", "customFilters")


def _value(text: str, kind: str, raw: str) -> Any:
    try:
        if kind == "integer":
            return int(raw)
        if kind == "decimal":
            number = float(Decimal(raw))  # JSON numbers; jsonb compares them numerically
            if not math.isfinite(number):
                # NaN and Infinity are not JSON: jsonb would refuse the query
                raise ValueError(raw)
            return number
        if kind == "boolean":
            lowered = raw.strip().lower()
            if lowered not in ("true", "false", "1", "0"):
                raise ValueError(raw)
            return lowered in ("true", "1")
        if kind == "date":
            return datetime.date.fromisoformat(raw.strip()).isoformat()
        return raw
    except (ValueError, InvalidOperation) as exc:
        raise CustomFilterError(text, f"'{raw}' is not a valid {kind}") from exc


def parse(text: str, column: str = "json_ext") -> Q:
    if not isinstance(text, str):
        raise CustomFilterError(str(text), "expected a string field__lookup__type=value")
    if not is_storable_text(text):
        raise CustomFilterError(NOT_TEXT.sub("", text), NOT_TEXT_REASON)
    if "=" not in text:
        raise CustomFilterError(text, "expected field__lookup__type=value")
    left, raw = text.split("=", 1)
    parts = left.split("__")
    if len(parts) != 3:
        raise CustomFilterError(text, "expected field__lookup__type=value")
    name, lookup, kind = parts
    if not FIELD.match(name):
        raise CustomFilterError(text, f"'{name}' is not a valid field name")
    if lookup not in LOOKUPS:
        raise CustomFilterError(text, f"unknown lookup '{lookup}' (use {', '.join(LOOKUPS)})")
    if kind not in TYPES:
        raise CustomFilterError(text, f"unknown type '{kind}' (use {', '.join(TYPES)})")
    path = f"{column}__{name}"
    if lookup == "isnull":
        wanted = _value(text, "boolean", raw)
        has = Q(**{f"{column}__has_key": name}) & ~Q(**{path: None})
        return ~has if wanted else has
    value = _value(text, kind, raw)
    if lookup in TEXT_ONLY and kind != "string":
        raise CustomFilterError(text, f"'{lookup}' applies to strings only")
    if kind == "boolean" and lookup != "exact":
        raise CustomFilterError(text, "booleans take only 'exact'")
    return Q(**{f"{path}__{lookup}": value})


def apply(queryset: Any, filters: Iterable[str] | None, column: str = "json_ext") -> Any:
    """Filter ``queryset`` by every custom filter (AND)."""
    for text in filters or []:
        if text is None:
            raise CustomFilterError("null", "a custom filter cannot be null")
        queryset = queryset.filter(parse(text.strip(), column))
    return queryset
