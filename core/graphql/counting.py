"""``totalCount`` of a list: exact up to ``COREMIS["EXACT_COUNT_LIMIT"]`` rows, and above it
exact too unless the list is a whole table.

A count is a scan of every matching row, so counting a million-row table for each page an
officer opens costs more than the page. The rule:

- a list that selects the whole live table is counted up to the limit only
  (``SELECT count(*) FROM (… LIMIT limit + 1)``): up to the limit it is exact and cheap;
- above it, that list (no filter, no location scope: the only
  condition is ``is_deleted = false``) answers PostgreSQL's own estimate of its rows (the
  planner's statistics, kept by autovacuum) and says so, ``totalCountIsEstimate: true``.
  A table whose estimate is at least twice the limit is remembered as large by the process
  for ``LARGE_TABLE_SECONDS`` (5 s): its lists answer that estimate again without the bounded
  count and the EXPLAIN (on a million people the bounded count alone read 10,001 rows, about
  4 ms of the database's CPU, on every page). A table below the limit is never remembered, so
  it is counted exactly on every request; one remembered as large could answer an estimate
  for at most those seconds after losing more than half its rows, and that answer still says
  it is an estimate;
- every other list (a filter, a scoped user) counts exactly, however many rows match: those
  counts are made fast by the indexes behind each filter (``tests/test_list_indexes.py``), not
  skipped;
- a list whose only conditions are the soft-delete one and conditions on one counted foreign
  key (``counted_by`` on the model: a location scope, ``benefitPlan_Id``, a payroll) is summed
  from the counters triggers keep exact (``core.row_counts``): a province of 350,000 people is a
  sum over its collines' counter rows, not a scan of the people.

A counted list (the third case) on a forward page reads its count and its page's keys in one
statement (:func:`count_and_window`, :func:`_counted_keys`): its matches, read once through the
filters' indexes into a materialized CTE of at most ``SORT_FROM_MATCHES_LIMIT`` + 1 rows, are
both counted and top-N sorted there; when the CTE is full, the list has more matches than
that, and it is counted on its own and paged by walking the ordering's index as below.

Otherwise its page is read after the count, so the count also chooses the page's plan: a list of at most
``SORT_FROM_MATCHES_LIMIT`` matching rows that is not a whole table is sorted from its
matches (top-N) instead of walking the ordering's index, which costs a walk past every row
that does not match when the matches sit at the far end of the ordering (a name filter whose
people are the oldest registered walked a million rows). Bounded by the limit, the sort costs
at most what the exact count already did.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import EmptyResultSet, FieldDoesNotExist
from django.db import connections
from django.db.models import F, Q, QuerySet, Sum
from django.db.models.expressions import Col, OrderBy
from django.db.models.functions import Coalesce
from django.db.models.lookups import Exact, In, Lookup
from django.db.models.sql.datastructures import Join
from django.db.models.sql.where import AND, WhereNode

log = logging.getLogger("coremis.counting")

# Above this many matches a filtered list's page keeps the ordering index's plan (see above).
SORT_FROM_MATCHES_LIMIT = 50_000

# A whole table whose estimate is at least LARGE_TABLE_MARGIN times the exact-count limit is
# taken as large, without the bounded count and the EXPLAIN, for LARGE_TABLE_SECONDS in this
# process (see :func:`count_and_window`). Keyed by (database, table, soft-delete condition,
# limit): (monotonic expiry, the estimate answered).
LARGE_TABLE_SECONDS = 5.0
LARGE_TABLE_MARGIN = 2
_large_tables: dict[tuple[str, str, bool, int], tuple[float, int]] = {}


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


def _is_live_condition(node: Any) -> bool:
    return (isinstance(node, Exact) and isinstance(node.lhs, Col) and node.lhs.target.name == "is_deleted"
            and node.rhs is False)


def _key_condition(node: Any, query: Any, fields: dict[str, Any]) -> tuple[Any, Q] | None:
    """``node`` as a condition on the related model of one counted foreign key: (field, Q), or
    None when it reads anything else. ``(None, Q)`` is a condition that matches nothing."""
    if isinstance(node, WhereNode):
        if node.negated or not node.children:
            return None
        field, combined = None, Q()
        for child in node.children:
            found = _key_condition(child, query, fields)
            if found is None or (found[0] is not None and field not in (None, found[0])):
                return None
            field = field or found[0]
            combined = Q(combined, found[1], _connector=node.connector) if combined else found[1]
        return field, combined
    if not isinstance(node, Lookup) or not isinstance(node.lhs, Col) or hasattr(node.rhs, "resolve_expression"):
        return None
    column, alias = node.lhs.target, node.lhs.alias
    if alias == query.base_table:
        if isinstance(node, In) and not node.rhs:  # within_paths' empty start: nothing
            return None, Q(pk__in=[])
        if column.column in fields:
            return fields[column.column], Q(**{f"pk__{node.lookup_name}": node.rhs})
        return None
    join = query.alias_map.get(alias)
    if (isinstance(join, Join) and join.parent_alias == query.base_table and join.join_type is not None
            and getattr(join.join_field, "column", None) in fields):
        return fields[join.join_field.column], Q(**{f"{column.name}__{node.lookup_name}": node.rhs})
    return None


def maintained_count(queryset: QuerySet) -> int | None:
    """The count of live rows selected by conditions on one counted foreign key, summed from
    ``core_row_count``; None when the queryset is not of that shape (it is then counted)."""
    model = queryset.model
    counted = getattr(model, "counted_by", ())
    query = queryset.query
    if not counted or query.distinct or query.group_by or query.combinator or query.is_sliced:
        return None
    where = query.where
    if where.negated or where.connector != AND:
        return None
    fields = {f.column: f for f in (model._meta.get_field(name) for name in counted)}
    live, key_conditions = False, []
    for child in where.children:
        if _is_live_condition(child):
            live = True
            continue
        found = _key_condition(child, query, fields)
        if found is None:
            return None
        key_conditions.append(found)
    chosen = {field for field, _ in key_conditions if field is not None}
    if not live or len(chosen) != 1:
        return None
    field = chosen.pop()
    direct = _direct_keys(key_conditions)
    if direct is not None:
        return _summed(queryset.db, model._meta.db_table, field.column, direct)
    from core.models import RowCount

    # the base manager: the rows of a soft-deleted location still count, as the list's join does
    keys = field.related_model._base_manager.using(queryset.db).filter(
        *(condition for _, condition in key_conditions)).values("pk")
    total = RowCount.objects.using(queryset.db).filter(
        table_name=model._meta.db_table, column_name=field.column, key__in=keys).aggregate(total=Sum("live"))["total"]
    if total is not None and total < 0:  # writes bypassed the triggers: count, and say so in the log
        log.error("core_row_count of %s.%s is negative for a list; counting its rows (run core.row_counts.recount)",
                  model._meta.db_table, field.column)
        return None
    return int(total or 0)


def _direct_keys(key_conditions: list[tuple[Any, Q]]) -> list[uuid.UUID] | None:
    """The keys of one condition on the list's own foreign key column (``benefit_plan_id = X``,
    ``payroll_id IN (…)``), or None for any other shape. Such keys need no look-up in the
    related table: a row can only name a key that exists, and a key no row names has no
    counter (or a zero one)."""
    if len(key_conditions) != 1 or key_conditions[0][0] is None:
        return None
    condition = key_conditions[0][1]
    if condition.negated or len(condition.children) != 1 or not isinstance(condition.children[0], tuple):
        return None
    lookup, value = condition.children[0]
    values = [value] if lookup == "pk__exact" else list(value) if lookup == "pk__in" else None
    if values is None:
        return None
    try:
        return [v if isinstance(v, uuid.UUID) else uuid.UUID(str(v)) for v in values]
    except (TypeError, ValueError, AttributeError):
        return None


def _summed(db: str, table: str, column: str, keys: list[uuid.UUID]) -> int | None:
    """The live rows of ``table`` under ``keys`` of ``column``, from their counters: one
    statement, written out rather than built by the ORM (it is on every such list's path)."""
    with connections[db].cursor() as cursor:
        cursor.execute("SELECT sum(live) FROM core_row_count WHERE table_name = %s AND column_name = %s "
                       "AND key = ANY(%s)", [table, column, keys])
        total = cursor.fetchone()[0]
    if total is not None and total < 0:
        log.error("core_row_count of %s.%s is negative for a list; counting its rows (run core.row_counts.recount)",
                  table, column)
        return None
    return int(total or 0)


def total_count(queryset: QuerySet) -> Count:
    return count_and_window(queryset, None)[0]


def count_and_window(queryset: QuerySet, window: tuple[int, int] | None) -> tuple[Count, list[Any] | None]:
    """The list's count and, when ``window`` (start, size) is given and the list is counted and
    sorted from its matches, the keys of the rows ``[start, start + size)`` read by the same
    statement (:func:`_counted_keys`); ``None`` keys when the page is still to be read."""
    unordered = queryset.order_by()
    maintained = maintained_count(unordered)
    if maintained is not None:
        return Count(maintained, False), None
    if not selects_whole_table(unordered):
        if window is not None:
            found = _counted_keys(queryset, *window)
            if found is not None:
                return Count(found[0], False), found[1]
        return Count(unordered.count(), False), None  # one statement, as exact as it is fast
    limit = exact_limit()
    key = (unordered.db, unordered.model._meta.db_table, bool(unordered.query.where.children), limit)
    remembered = _large_tables.get(key)
    if remembered is not None and remembered[0] > time.monotonic():
        return Count(remembered[1], True), None
    bounded = unordered.values("pk")[: limit + 1].count()
    if bounded <= limit:
        _large_tables.pop(key, None)
        return Count(bounded, False), None
    value = max(estimate(unordered), limit + 1)
    if value >= LARGE_TABLE_MARGIN * limit:
        _large_tables[key] = (time.monotonic() + LARGE_TABLE_SECONDS, value)
    return Count(value, True), None


def forget_large_tables() -> None:
    """Count every whole table again on its next list (a test that shrinks a table calls it)."""
    _large_tables.clear()


def _sort_columns(queryset: QuerySet) -> tuple[list[str], list[tuple[int, bool]]] | None:
    """The paths the list's ordering reads besides the key, and per ordering term the index of
    its column among (key, *paths) and whether it descends; None for an ordering a plain
    column cannot reproduce (an expression, a random order, a relation sorted by its own
    ``Meta.ordering``, a path through a set)."""
    model = queryset.model
    paths: list[str] = []
    terms: list[tuple[int, bool]] = []
    for term in queryset.query.order_by:
        if not isinstance(term, str) or term == "?" or term.startswith("+"):
            return None
        path = term.lstrip("-")
        if path in ("pk", model._meta.pk.name):
            terms.append((0, term.startswith("-")))
            continue
        if not _column_path(model, path):
            return None
        if path not in paths:
            paths.append(path)
        terms.append((1 + paths.index(path), term.startswith("-")))
    return (paths, terms) if terms else None


def _column_path(model: Any, path: str) -> bool:
    """``path`` reaches a concrete column through forward foreign keys only (one value a row)."""
    names = path.split("__")
    for position, name in enumerate(names):
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:
            return False
        last = position == len(names) - 1
        if last:
            return bool(field.concrete and not field.is_relation)
        if not (field.concrete and (field.many_to_one or field.one_to_one)):
            return False
        model = field.related_model
    return False


def _counted_keys(queryset: QuerySet, start: int, size: int) -> tuple[int, list[Any]] | None:
    """(count, the keys of rows ``[start, start + size)`` in the list's order) in one statement,
    or None when the list has more than ``SORT_FROM_MATCHES_LIMIT`` matches (the statement
    then stopped reading at one more) or a shape this cannot sort (:func:`_sort_columns`).

    The matching keys and sort columns are read once, through the filters' indexes, into a
    materialized CTE; the count and the top-N sort of the page are both taken from it. Sorted
    from its matches, a filtered list no longer reads them twice (once to count, once to sort)
    nor walks the ordering's index past every row that does not match."""
    query = queryset.query
    if query.distinct or query.group_by or query.combinator or query.is_sliced or start < 0 or size < 0:
        return None
    columns = _sort_columns(queryset)
    if columns is None:
        return None
    paths, terms = columns
    try:
        inner, params = queryset.order_by().values_list("pk", *paths).query.sql_with_params()
    except EmptyResultSet:  # no row can match: ``.none()``, ``id__in=[]`` (a scope with no places)
        return 0, []
    names = ", ".join(f"c{i}" for i in range(len(paths) + 1))
    order = ", ".join(f"c{index} {'DESC' if descending else 'ASC'}" for index, descending in terms)
    limit = SORT_FROM_MATCHES_LIMIT
    sql = (f"WITH matches ({names}) AS MATERIALIZED ({inner} LIMIT {limit + 1}) "
           "SELECT counted.n, page.c0 FROM (SELECT count(*) AS n FROM matches) AS counted "
           f"LEFT JOIN LATERAL (SELECT c0 FROM matches WHERE counted.n <= {limit} "
           f"ORDER BY {order} LIMIT %s OFFSET %s) AS page ON true")
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(sql, [*params, size, start])
        rows = cursor.fetchall()
    total = int(rows[0][0])
    if total > limit:
        return None
    return total, [key for _, key in rows if key is not None]


def page(queryset: QuerySet, count: Count, item: Any) -> Any:
    """``queryset[item]``; for a list sorted from its matches (see above), in two statements:
    the page's keys, sorted on the list's own table alone (the joins the nodes need would
    otherwise widen every match before the sort), then those rows with their joins.

    graphene-django first asks for everything from the page's offset on (``[start:]``) and
    only then cuts the page from that; the keys are read at the cut (:class:`KeyedRows`), so
    a statement never carries more keys than the page has rows."""
    if (not isinstance(item, slice) or item.step not in (None, 1) or count.is_estimate
            or count.value > SORT_FROM_MATCHES_LIMIT or selects_whole_table(queryset.order_by())):
        return queryset[item]
    sorted_keys = _sorted_from_matches(queryset.values_list("pk", flat=True))
    if sorted_keys is None:
        return queryset[item]
    rows = KeyedRows(queryset, sorted_keys, item.start or 0)
    return rows if item.stop is None else rows[: item.stop - (item.start or 0)]


class KeyedRows:
    """The rows of ``queryset`` from ``start`` on, in ``sorted_keys``' order, read only when a
    closed slice is cut from them: that slice's keys in one statement, their rows in another."""

    def __init__(self, queryset: QuerySet, sorted_keys: QuerySet, start: int) -> None:
        self.queryset, self.sorted_keys, self.start = queryset, sorted_keys, start

    def __getitem__(self, item: slice) -> Any:
        if not isinstance(item, slice) or item.step not in (None, 1) or (item.start or 0) < 0 or (
                item.stop is not None and item.stop < 0):
            raise TypeError("a list's rows are cut by a slice of non-negative bounds")
        begin = self.start + (item.start or 0)
        end = None if item.stop is None else self.start + item.stop
        if end is not None and end <= begin:
            return []
        keys = list(self.sorted_keys[begin:end])
        if not keys:
            return []
        # the rows keep the list's own ordering, so they come back in the keys' order
        return self.queryset.filter(pk__in=keys)


class ReadKeys:
    """The rows of ``queryset`` whose keys were already read, in the list's order, from the
    first of ``keys`` on: a cut reads its keys' rows in one statement."""

    def __init__(self, queryset: QuerySet, keys: list[Any]) -> None:
        self.queryset, self.keys = queryset, keys

    def __getitem__(self, item: slice) -> Any:
        if not isinstance(item, slice) or item.step not in (None, 1) or (item.start or 0) < 0 or (
                item.stop is not None and item.stop < 0):
            raise TypeError("a list's rows are cut by a slice of non-negative bounds")
        keys = self.keys[item]
        if not keys:
            return []
        # the rows keep the list's own ordering, so they come back in the keys' order
        return self.queryset.filter(pk__in=keys)


def _sorted_from_matches(queryset: QuerySet) -> QuerySet | None:
    terms = []
    for term in queryset.query.order_by:
        if not isinstance(term, str) or term == "?":
            return None
        path = term.lstrip("-")
        # COALESCE(x, x) is x, in the same order, but no index holds it: the planner reads the
        # matches through the filters' indexes and keeps the top of them
        key = Coalesce(F(path), F(path))
        terms.append(OrderBy(key, descending=term.startswith("-")))
    return queryset.order_by(*terms)
