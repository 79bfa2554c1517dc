"""``<entity>History`` connections over the trigger-written ``core_history`` table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import django_filters
import graphene
from django.db.models import Model, QuerySet
from graphene_django import DjangoObjectType

from core.graphql.choices import ChoiceCodeFilter, choice_enum
from core.graphql.fields import ProtectedConnectionField
from core.graphql.types import CountableConnection
from core.models import HistoryEntry

HistoryOperation = choice_enum("HistoryOperation", HistoryEntry.OPERATIONS, "The change a history entry records.")


class HistoryEntryFilter(django_filters.FilterSet):
    operation = ChoiceCodeFilter(field_name="operation", choices=HistoryEntry.OPERATIONS)

    class Meta:
        model = HistoryEntry
        fields = {"row_id": ["exact"], "operation": ["exact"], "changed_at": ["gte", "lte"]}


class HistoryEntryType(DjangoObjectType):
    """One version of a row: ``data`` holds the row's columns after the change."""

    class Meta:
        model = HistoryEntry
        interfaces = (graphene.relay.Node,)
        connection_class = CountableConnection
        filterset_class = HistoryEntryFilter
        fields = ("id", "table_name", "row_id", "operation", "data", "changed_at", "user_id", "context")

    operation = graphene.Field(HistoryOperation, required=True, description="I insert, U update, D delete")


def history_connection(
    model: type[Model], permission: str, visible: Callable[[QuerySet, Any], QuerySet]
) -> ProtectedConnectionField:
    """A history field for ``model``; ``visible(queryset, user)`` limits which rows' history
    a user may read (the same scope as the entity's own list)."""
    table = model._meta.db_table

    def only_visible(queryset: QuerySet, info: Any, args: dict[str, Any]) -> QuerySet:
        rows = visible(model.all_objects.all(), info.context.user)  # type: ignore[attr-defined]
        return queryset.filter(table_name=table, row_id__in=rows.values("pk"))

    return ProtectedConnectionField(
        HistoryEntryType, permission=permission, order_fields=["changed_at", "id"],
        queryset_hook=only_visible,
    )
