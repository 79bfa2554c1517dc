"""Every ordering and filter a list offers on a table that can be large has an index behind it.

The lists, their ``orderBy`` terms and their filters are read from the schema, and the indexes
from PostgreSQL's catalogue, so a list that gains an ordering or filter without its index fails
here the day it is added. Supported means: an ordering or an equality/range filter on a column
has a B-tree index whose first key is that column (a path through a relation, such as
``individual__last_name``, is looked up on the related table); a substring filter
(``icontains``, ``iexact``) has a trigram index (``gin_trgm_ops`` / ``gist_trgm_ops``) on it.
Boolean columns (``isDeleted``…) are left out: half the table matches either value, so no index
helps; the other conditions of the list choose the rows.

``NOT_YET_INDEXED`` is what is still missing; it may only shrink (an entry that became indexed
fails the test too, so it is taken off).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, models

from core.graphql.fields import ProtectedConnectionField
from core.graphql.schema import schema

pytestmark = pytest.mark.django_db

# Tables a national deployment fills with hundreds of thousands to millions of rows.
LARGE_TABLES = frozenset({
    "individual_individual", "individual_group", "individual_groupindividual",
    "social_protection_beneficiary", "social_protection_groupbeneficiary", "payroll_benefitconsumption",
    "grievance_ticket", "grievance_comment", "grievance_notification", "grievance_accesslog",
    "core_history", "core_mutationlog", "core_job", "core_approvaltask",
})
SUBSTRING_LOOKUPS = ("icontains", "iexact", "contains", "istartswith")
RANGE_LOOKUPS = ("exact", "in", "lt", "lte", "gt", "gte", "startswith", "isnull", "range")

# What is still without a supporting index, per root field: ("orderBy"/"filter", term). Each
# entry is either to index (AddIndexConcurrently, as individual 0005 does) or to take off the
# list's offer; an index costs every bulk insert of its table (the import, enrollment, payroll
# generation, core_history for all of them), so each is weighed against its write cost.
_NOT_YET_INDEXED: dict[str, tuple[tuple[str, str], ...]] = {
    "approval_route_history": (
        ("filter", "changed_at__gte"), ("filter", "changed_at__lte"), ("filter", "operation"),
        ("orderBy", "changed_at"),
    ),
    "beneficiary": (
        ("filter", "status"), ("filter", "status__in"), ("orderBy", "date_created"),
        ("orderBy", "individual__first_name"), ("orderBy", "status"),
    ),
    "benefit_consumption_by_payroll": (("orderBy", "amount"), ("orderBy", "date_paid")),
    "benefit_plan_history": (
        ("filter", "changed_at__gte"), ("filter", "changed_at__lte"), ("filter", "operation"),
        ("orderBy", "changed_at"),
    ),
    "comments": (
        ("filter", "date_created__gte"), ("filter", "date_created__lte"), ("orderBy", "date_created"),
    ),
    "grievance_notifications": (
        ("filter", "channel"), ("filter", "event"), ("filter", "status"), ("orderBy", "created_at"),
    ),
    "group": (("orderBy", "date_updated"),),
    "group_beneficiary": (
        ("filter", "status"), ("filter", "status__in"), ("orderBy", "date_created"), ("orderBy", "status"),
    ),
    "group_history": (
        ("filter", "changed_at__gte"), ("filter", "changed_at__lte"), ("filter", "operation"),
        ("orderBy", "changed_at"),
    ),
    "group_individual": (
        ("filter", "recipient_type"), ("filter", "role"), ("orderBy", "date_created"),
        ("orderBy", "individual__first_name"), ("orderBy", "recipient_type"), ("orderBy", "role"),
    ),
    "individual": (
        ("filter", "first_name"), ("filter", "sex"), ("orderBy", "date_updated"), ("orderBy", "first_name"),
        ("orderBy", "sex"),
    ),
    "individual_history": (
        ("filter", "changed_at__gte"), ("filter", "changed_at__lte"), ("filter", "operation"),
        ("orderBy", "changed_at"),
    ),
    "jobs": (("filter", "module"), ("orderBy", "created_at")),
    "location_history": (
        ("filter", "changed_at__gte"), ("filter", "changed_at__lte"), ("filter", "operation"),
        ("orderBy", "changed_at"),
    ),
    "mutation_logs": (
        ("filter", "client_mutation_label"), ("filter", "mutation_name"), ("filter", "status"),
        ("orderBy", "request_date_time"),
        ("orderBy", "status"),
    ),
    "task": (
        ("filter", "action__icontains"), ("filter", "action__istartswith"), ("filter", "date_created__gt"),
        ("filter", "date_created__gte"), ("filter", "date_created__lt"), ("filter", "date_created__lte"),
        ("filter", "entity_id"), ("filter", "entity_id__in"), ("filter", "module"),
        ("filter", "module__icontains"), ("filter", "status"), ("orderBy", "date_created"),
        ("orderBy", "date_updated"), ("orderBy", "module"), ("orderBy", "status"),
    ),
    "ticket_access_log": (("filter", "at__gte"), ("filter", "at__lte"), ("orderBy", "at")),
    "tickets": (
        ("filter", "category"), ("filter", "category__icontains"), ("filter", "category__istartswith"),
        ("filter", "channel"), ("filter", "code__icontains"), ("filter", "code__istartswith"),
        ("filter", "date_of_incident__gte"), ("filter", "date_of_incident__lte"), ("filter", "due_date__gte"),
        ("filter", "due_date__lte"), ("filter", "flags__icontains"), ("filter", "payment_id"),
        ("filter", "priority"), ("filter", "priority__icontains"), ("filter", "title__icontains"),
        ("orderBy", "category"), ("orderBy", "date_of_incident"), ("orderBy", "due_date"),
        ("orderBy", "escalation_level"), ("orderBy", "priority"), ("orderBy", "title"), ("orderBy", "version"),
    ),
    "user_history": (
        ("filter", "changed_at__gte"), ("filter", "changed_at__lte"), ("filter", "operation"),
        ("orderBy", "changed_at"),
    ),
}
NOT_YET_INDEXED = frozenset((root, kind, term) for root, terms in _NOT_YET_INDEXED.items() for kind, term in terms)


# Columns every list of a table fixes by equality before anything else: a history list is
# always one table's (``table_name``), payments are listed by payroll (``payrollUuid`` is
# required). An index may lead with them.
FIXED_COLUMNS = {"core_history": ("table_name",), "payroll_benefitconsumption": ("payroll_id",)}


def _indexes(table: str) -> list[tuple[str, list[str | None], str]]:
    """(access method, key columns (None for an expression), definition) per valid index."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT am.amname, (SELECT array_agg(a.attname ORDER BY k.n) FROM unnest(i.indkey::int2[]) "
            "WITH ORDINALITY k(attnum, n) LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = k.attnum), pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam "
            "WHERE i.indrelid = %s::regclass AND i.indisvalid", [table])
        return list(cursor.fetchall())


def _leads_with(columns: list[str | None], fixed: tuple[str, ...], column: str) -> bool:
    """Whether an index's keys are ``column`` first, or the fixed columns and then it."""
    if columns[:1] == [column]:
        return True
    return bool(fixed) and columns[:len(fixed)] == list(fixed) and columns[len(fixed):len(fixed) + 1] == [column]


def _column(model: type[models.Model], path: str) -> tuple[type[models.Model], models.Field] | None:
    """The model and field at the end of ``path`` (``individual__last_name``), or None."""
    parts = path.split("__")
    for i, part in enumerate(parts):
        try:
            field = model._meta.get_field(part)
        except Exception:  # a filter on something that is not a column (a method)
            return None
        if i == len(parts) - 1:
            if field.is_relation and field.many_to_one:
                return model, field
            return (model, field) if field.concrete and not field.is_relation else None
        if not field.is_relation or field.related_model is None:
            return None
        model = field.related_model
    return None


def _supported(model: type[models.Model], field: models.Field, substring: bool) -> bool:
    table = model._meta.db_table
    if table not in LARGE_TABLES or isinstance(field, models.BooleanField) or field.primary_key:
        return True
    column = field.column
    for method, columns, definition in _indexes(table):
        if substring and method in ("gin", "gist") and "trgm_ops" in definition and column in definition:
            return True
        if not substring and method == "btree" and _leads_with(columns, FIXED_COLUMNS.get(table, ()), column):
            return True
    return False


def _terms(field: ProtectedConnectionField) -> list[tuple[str, str, bool]]:
    """("orderBy"/"filter", model path, substring?) for what the list offers."""
    terms = [("orderBy", path, False) for path in field.order_fields]
    for name, declared in field.filterset_class.base_filters.items():
        if getattr(declared, "method", None) and not declared.field_name:
            continue
        path = declared.field_name or name
        lookup = declared.lookup_expr or "exact"
        if lookup not in SUBSTRING_LOOKUPS + RANGE_LOOKUPS:
            continue
        terms.append(("filter", f"{path}__{lookup}" if lookup != "exact" else path, lookup in SUBSTRING_LOOKUPS))
    return terms


def test_orderings_and_filters_of_lists_on_large_tables_have_indexes() -> None:
    missing: set[tuple[str, str, str]] = set()
    for root, field in schema.query._meta.fields.items():
        if not isinstance(field, ProtectedConnectionField):
            continue
        model = field.node_type._meta.model
        for kind, term, substring in _terms(field):
            path = term.rsplit("__", 1)[0] if kind == "filter" and term.rsplit("__", 1)[-1] in (
                *SUBSTRING_LOOKUPS, *RANGE_LOOKUPS) else term
            found = _column(model, path)
            if found is not None and not _supported(*found, substring):
                missing.add((root, kind, term))
    new = sorted(missing - NOT_YET_INDEXED)
    fixed = sorted(NOT_YET_INDEXED - missing)
    assert not new, "orderings and filters on large tables without a supporting index:\n" + "\n".join(map(str, new))
    assert not fixed, "indexed now, take them off NOT_YET_INDEXED: " + ", ".join(map(str, fixed))


def _fake_field(order_fields: tuple[str, ...]) -> Any:
    return type("F", (), {"order_fields": order_fields, "filterset_class": type("FS", (), {"base_filters": {}})})()


def test_the_check_sees_an_ordering_without_an_index() -> None:
    """The check itself can fail: ``status_message`` of payments has no index."""
    from modules.payroll.models import BenefitConsumption

    found = _column(BenefitConsumption, "status_message")
    assert found is not None and not _supported(*found, False)
    assert _supported(*_column(BenefitConsumption, "code"), False)
    assert [t[1] for t in _terms(_fake_field(("status_message",)))] == ["status_message"]
