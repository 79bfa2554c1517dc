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
from django.db.models.fields.json import KT

from core.errors import FieldError, ValidationFailed
from modules.social_protection.models import PlanType

BUILT_IN = {
    PlanType.INDIVIDUAL: {"first_name": "individual__first_name", "last_name": "individual__last_name",
                          "dob": "individual__dob", "sex": "individual__sex",
                          "location": "individual__location_id"},
    PlanType.GROUP: {"code": "group__code", "location": "group__location_id"},
}
JSON_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _expressions(plan_type: str, fields: list[str]) -> dict[str, Any]:
    if not fields:
        raise ValidationFailed([FieldError("fields", "REQUIRED", "Choose at least one field to compare.")])
    owner = "group" if plan_type == PlanType.GROUP else "individual"
    expressions: dict[str, Any] = {}
    for index, name in enumerate(fields):
        if name in BUILT_IN[plan_type]:
            expressions[f"k{index}"] = F(BUILT_IN[plan_type][name])
        elif name.startswith("json_ext.") and JSON_KEY.match(name[9:]):
            expressions[f"k{index}"] = KT(f"{owner}__json_ext__{name[9:]}")
        else:
            known = ", ".join([*BUILT_IN[plan_type], "json_ext.<key>"])
            raise ValidationFailed([FieldError("fields", "INVALID", f"'{name}' is not one of {known}.")])
    return expressions


def summary(rows: QuerySet, plan_type: str, fields: list[str], limit: int = 1000) -> list[dict[str, Any]]:
    """Groups of beneficiaries sharing every chosen field (nulls never match), largest first."""
    expressions = _expressions(plan_type, fields)
    keys = list(expressions)
    grouped = (
        rows.annotate(**expressions)
        .exclude(**{f"{k}__isnull": True for k in keys})
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
