"""Likely duplicates among a plan's beneficiaries: people sharing the chosen fields.

The summary is one GROUP BY in SQL. Each group can be turned into a review task (core
approvals); approving it suspends every member of the group but the earliest enrolled,
rejecting it leaves them all as they are.
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib.postgres.aggregates import ArrayAgg
from django.db.models import Count, F, QuerySet
from django.db.models.fields.json import KeyTextTransform

from core.errors import CoreErrorCode, FieldError, ValidationFailed
from modules.social_protection.models import PlanType

BUILT_IN = {
    PlanType.INDIVIDUAL: {"first_name": "individual__first_name", "last_name": "individual__last_name",
                          "dob": "individual__dob", "sex": "individual__sex",
                          "location": "individual__location_id"},
    PlanType.GROUP: dict(code="group__code", location="group__location_id"),
}
TEXT_FIELDS = frozenset({"first_name", "last_name", "sex", "code"})
JSON_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _expressions(plan_type: str, fields: list[str]) -> dict[str, Any]:
    if not fields:
        raise ValidationFailed([FieldError("fields", CoreErrorCode.REQUIRED, "Choose at least one field to compare.")])
    owner = "group" if plan_type == PlanType.GROUP else "individual"
    expressions: dict[str, Any] = {}
    if len(fields) > len(BUILT_IN[plan_type]) + 10:
        raise ValidationFailed([FieldError("fields", CoreErrorCode.INVALID, "Compare at most a few fields at once.")])
    for index, name in enumerate(fields):
        if name in BUILT_IN[plan_type]:
            expressions[f"k{index}"] = F(BUILT_IN[plan_type][name])
        elif name.startswith("json_ext.") and JSON_KEY.match(name[9:]):
            # KT("individual__json_ext__key") would read the key from the first path part
            # (the uuid foreign key), not from the related row's json_ext.
            expressions[f"k{index}"] = KeyTextTransform(name[9:], f"{owner}__json_ext")
        else:
            known = ", ".join([*BUILT_IN[plan_type], "json_ext.<key>"])
            raise ValidationFailed([FieldError("fields", CoreErrorCode.INVALID, f"'{name}' is not one of {known}.")])
    return expressions


def summary(rows: QuerySet, plan_type: str, fields: list[str], limit: int = 1000) -> list[dict[str, Any]]:
    """Groups of beneficiaries sharing every chosen field (missing values, null or empty, never
    match), largest first."""
    expressions = _expressions(plan_type, fields)
    keys = list(expressions)
    rows = rows.annotate(**expressions).exclude(**{f"{k}__isnull": True for k in keys})
    for key, name in zip(keys, fields, strict=True):
        if name in TEXT_FIELDS or name.startswith("json_ext."):
            rows = rows.exclude(**{key: ""})  # an empty text is a missing value, not a shared one
    grouped = (
        rows
        .values(*keys)
        .annotate(count=Count("pk"), ids=ArrayAgg("pk", order_by=("date_created", "pk")))
        .filter(count__gt=1)
        .order_by("-count", *keys)[:limit]
    )
    return [
        {"values": {name: str(row[key]) for name, key in zip(fields, keys, strict=True)},
         "count": row["count"], "ids": [str(i) for i in row["ids"]]}
        for row in grouped
    ]
