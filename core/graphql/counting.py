"""``totalCount`` of a list: exact up to ``COREMIS["EXACT_COUNT_LIMIT"]`` rows, and above it
exact too unless the list is a whole table.

A count is a scan of every matching row, so counting a million-row table for each page an
officer opens costs more than the page. The rule:

- a list that selects the whole live table is counted up to the limit only
  (``SELECT count(*) FROM (… LIMIT limit + 1)``): up to the limit it is exact and cheap;
- above it, that list (no filter, no location scope: the only
  condition is ``is_deleted = false``) answers PostgreSQL's own estimate of its rows (the
  planner's statistics, kept by autovacuum) and says so, ``totalCountIsEstimate: true``;
- every other list (a filter, a scoped user) counts exactly, however many rows match: those
  counts are made fast by the indexes behind each filter (``tests/test_list_indexes.py``), not
  skipped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.conf import settings
from django.db import connections
from django.db.models import QuerySet
from django.db.models.lookups import Exact


@dataclass(frozen=True)
class Count:
    value: int
    is_estimate: bool


def exact_limit() -> int:
    return int(settings.COREMIS.get("EXACT_COUNT_LIMIT", 10_000))


def selects_whole_table(queryset: QuerySet) -> bool:
    """No condition but the soft-delete one, no DISTINCT, no grouping: the table's live rows."""
    query = queryset.query
    if query.distinct or query.group_by or query.combinator or query.is_sliced:
        return False
    for child in query.where.children:
        if not (isinstance(child, Exact) and getattr(child.lhs, "target", None) is not None
                and child.lhs.target.name == "is_deleted" and child.rhs is False):
            return False
    return True


def estimate(queryset: QuerySet) -> int:
    """The planner's row estimate for the queryset (no scan)."""
    sql, params = queryset.order_by().values("pk").query.sql_with_params()
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return int(plan[0]["Plan"]["Plan Rows"])


def total_count(queryset: QuerySet) -> Count:
    unordered = queryset.order_by()
    if not selects_whole_table(unordered):
        return Count(unordered.count(), False)  # one statement, as exact as it is fast
    limit = exact_limit()
    bounded = unordered.values("pk")[: limit + 1].count()
    if bounded <= limit:
        return Count(bounded, False)
    return Count(max(estimate(unordered), limit + 1), True)
