"""Eligibility criteria: stored with a plan, turned into one SQL condition.

A criteria document is a tree::

    {"combine": "AND", "conditions": [
        {"location": ["<uuid>", ...]},                          # these places and below
        {"filter": "vulnerability_score__lt__integer=30"},      # json_ext, customFilters language
        {"field": "sex", "lookup": "exact", "value": "F"},      # a built-in field
        {"on": "head", "filter": "disability__exact__boolean=true"},  # GROUP plans: the head
        {"combine": "OR", "conditions": [...]}
    ]}

For INDIVIDUAL plans conditions apply to individuals; for GROUP plans to households, or to
their head with ``"on": "head"``. An empty document matches everyone. Every error names its
JSON path.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from django.db.models import Q

from core import custom_filters
from core.errors import FieldError, ServiceError, ValidationFailed
from core.graphql.inputs import unstorable_path
from modules.location.models import Location
from modules.location.services import within_paths
from modules.social_protection.errors import SocialProtectionErrorCode

LOOKUPS = ("exact", "iexact", "icontains", "istartswith", "lt", "lte", "gt", "gte", "in")
BUILT_IN: dict[str, dict[str, str]] = {
    "INDIVIDUAL": {"first_name": "text", "last_name": "text", "sex": "text", "dob": "date"},
    "GROUP": dict(code="text"),
}
HEAD_FIELDS = BUILT_IN["INDIVIDUAL"]


class _Builder:
    def __init__(self, plan_type: str) -> None:
        self.plan_type = plan_type
        self.errors: list[FieldError] = []

    def fail(self, path: str, message: str) -> Q:
        self.errors.append(FieldError(f"criteria{path}", SocialProtectionErrorCode.INVALID_CRITERIA, f"criteria{path}: {message}"))
        return Q()

    def node(self, value: Any, path: str) -> Q:
        if not isinstance(value, dict):
            return self.fail(path, "expected an object")
        if "conditions" in value or "combine" in value:
            return self.group(value, path)
        return self.condition(value, path)

    def group(self, value: dict[str, Any], path: str) -> Q:
        combine = value.get("combine", "AND")
        if combine not in ("AND", "OR"):
            return self.fail(f"{path}.combine", "is AND or OR")
        conditions = value.get("conditions", [])
        if not isinstance(conditions, list):
            return self.fail(f"{path}.conditions", "expected a list")
        result: Q | None = None
        for index, item in enumerate(conditions):
            part = self.node(item, f"{path}.conditions[{index}]")
            result = part if result is None else (result & part if combine == "AND" else result | part)
        return result if result is not None else Q()

    def prefix(self, on: Any, path: str) -> str | None:
        if on is None or on == "self":
            return ""
        if on == "head" and self.plan_type == "GROUP":
            return "head__"
        self.fail(f"{path}.on", "'head' applies to GROUP plans only")
        return None

    def condition(self, value: dict[str, Any], path: str) -> Q:
        prefix = self.prefix(value.get("on"), path)
        if prefix is None:
            return Q()
        known = {"on", "location", "filter", "field", "lookup", "value"}
        extra = set(value) - known
        if extra:
            return self.fail(path, f"unknown keys {', '.join(sorted(extra))}")
        if "location" in value:
            return self.location(value["location"], f"{path}.location", prefix)
        if "filter" in value:
            if not isinstance(value["filter"], str):
                return self.fail(f"{path}.filter", "expected a string field__lookup__type=value")
            try:
                parsed = custom_filters.parse(value["filter"], f"{prefix}json_ext")
            except ServiceError as exc:
                return self.fail(f"{path}.filter", exc.message)
            return parsed
        if "field" in value:
            return self.field(value, path, prefix)
        return self.fail(path, "needs one of location, filter, field")

    def location(self, ids: Any, path: str, prefix: str) -> Q:
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            return self.fail(path, "expected a non-empty list of location ids")
        try:
            # Parsed here, so only a malformed id is refused as one: a database that cannot be
            # reached is an outage (SERVICE_UNAVAILABLE at the edge), never "invalid id".
            wanted = {uuid.UUID(i) for i in ids}
        except ValueError:
            return self.fail(path, "contains an invalid location id")
        paths = list(Location.objects.filter(pk__in=wanted).values_list("path", flat=True))
        if len(paths) != len(wanted):
            return self.fail(path, "names a location that does not exist")
        return within_paths(paths, f"{prefix}location")

    def field(self, value: dict[str, Any], path: str, prefix: str) -> Q:
        fields = HEAD_FIELDS if prefix else BUILT_IN[self.plan_type]
        name, lookup, raw = value.get("field"), value.get("lookup", "exact"), value.get("value")
        if not isinstance(name, str) or name not in fields:
            return self.fail(f"{path}.field", f"'{name}' is not one of {', '.join(fields)}")
        if not isinstance(lookup, str) or lookup not in LOOKUPS:
            return self.fail(f"{path}.lookup", f"'{lookup}' is not one of {', '.join(LOOKUPS)}")
        if lookup == "in" and not isinstance(raw, list):
            return self.fail(f"{path}.value", "'in' takes a list")
        values = raw if lookup == "in" else [raw]
        if fields[name] == "date":
            try:
                dates = [datetime.date.fromisoformat(v) for v in values]
            except (TypeError, ValueError):
                return self.fail(f"{path}.value", "expected an ISO date (YYYY-MM-DD)")
            raw = dates if lookup == "in" else dates[0]
        elif not all(isinstance(v, str) for v in values):
            # a number, object or null compared with a text column is a database error, not
            # a match; the criteria language takes the text it will compare
            return self.fail(f"{path}.value", "expected text" if lookup != "in" else "expected a list of texts")
        return Q(**{f"{prefix}{name}__{lookup}": raw})


def build(plan_type: str, criteria: Any) -> Q:
    """The SQL condition for ``criteria``; raises ValidationFailed listing every problem."""
    if criteria is None or criteria == {} or criteria == []:
        return Q()
    builder = _Builder(plan_type)
    unstorable = unstorable_path(criteria)
    if unstorable is not None:
        # Stored, such a value would break every later preview, enrollment and isEligible.
        builder.fail(unstorable, "NaN, Infinity and characters that are not text (NUL, unpaired "
                                 "surrogates) are not allowed")
        raise ValidationFailed(builder.errors)
    condition = builder.node(criteria, "")
    if builder.errors:
        raise ValidationFailed(builder.errors)
    return condition


def as_head(criteria: Any) -> Any | None:
    """GROUP-plan ``criteria`` whose every condition is ``"on": "head"``, rewritten as
    INDIVIDUAL-plan criteria over the head alone (the same conditions without ``on``), so a
    caller holding the head's id can select the matching people directly instead of joining
    every household to its head. ``None`` when some condition is about the household itself
    or the document is empty (it matches every household, head or not)."""

    def rewritten(node: Any) -> Any | None:
        if not isinstance(node, dict):
            return None
        if "conditions" in node or "combine" in node:
            conditions = node.get("conditions", [])
            if not isinstance(conditions, list) or not conditions:
                return None
            parts = [rewritten(item) for item in conditions]
            if any(part is None for part in parts):
                return None
            return {**node, "conditions": parts}
        if node.get("on") != "head":
            return None
        return {key: value for key, value in node.items() if key != "on"}

    return rewritten(criteria)


def validate(plan_type: str, criteria: Any) -> list[FieldError]:
    try:
        build(plan_type, criteria)
    except ValidationFailed as exc:
        return exc.errors
    return []
