"""The filter sets of the grievance lists (the names the openIMIS frontend sends)."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from modules.grievance.models import Attachment, Comment, Ticket, TicketTask


class TicketFilter(django_filters.FilterSet):
    id = django_filters.UUIDFilter(field_name="id")
    reporter_id = django_filters.UUIDFilter(field_name="reporter_id")
    household_id = django_filters.UUIDFilter(field_name="household_id")
    payment_id = django_filters.UUIDFilter(field_name="payment_id")
    attending_staff__id = django_filters.UUIDFilter(field_name="attending_staff_id")
    flags__icontains = django_filters.CharFilter(method="filter_flag", label="tickets carrying this flag")
    # the frontend sends the priority quoted ("High"), so these stay text rather than the enum
    priority = django_filters.CharFilter(field_name="priority", lookup_expr="exact")
    priority__icontains = django_filters.CharFilter(field_name="priority", lookup_expr="icontains")

    class Meta:
        model = Ticket
        fields = {
            "code": ["exact", "icontains", "istartswith"],
            "title": ["icontains"],
            "category": ["exact", "icontains", "istartswith"],
            "channel": ["exact"],
            "is_overdue": ["exact"],
            "is_deleted": ["exact"],
            "date_created": ["gte", "lte"],
            "due_date": ["gte", "lte"],
            "date_of_incident": ["gte", "lte"],
        }

    def filter_flag(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(flags__contains=[value.strip().upper()]) if value else queryset


class CommentFilter(django_filters.FilterSet):
    ticket__id = django_filters.UUIDFilter(field_name="ticket_id")
    is_resolution = django_filters.BooleanFilter()

    class Meta:
        model = Comment
        fields = {"is_deleted": ["exact"], "date_created": ["gte", "lte"]}


class RelatedFilter(django_filters.FilterSet):
    ticket__id = django_filters.UUIDFilter(field_name="ticket_id")

    class Meta:
        model = Attachment
        fields = {"is_deleted": ["exact"]}


class TaskFilter(django_filters.FilterSet):
    ticket__id = django_filters.UUIDFilter(field_name="ticket_id")
    assignee__id = django_filters.UUIDFilter(field_name="assignee_id")
    status = django_filters.CharFilter()

    class Meta:
        model = TicketTask
        fields = {"workflow": ["exact"], "is_deleted": ["exact"]}
