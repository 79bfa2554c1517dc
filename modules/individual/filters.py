"""Filters shared by the GraphQL lists and the exports, so an export is exactly the list."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import Exists, OuterRef, QuerySet

from core import custom_filters
from core.errors import CoreErrorCode
from modules.individual.models import Group, GroupIndividual, Individual
from modules.location.services import descendants_of


class IndividualFilter(django_filters.FilterSet):
    uuid = django_filters.UUIDFilter(field_name="id")
    location = django_filters.UUIDFilter(method="filter_location", label="a location and all under it")
    group_id = django_filters.UUIDFilter(method="filter_group", label="members of this household")
    filter_not_attached_to_group = django_filters.BooleanFilter(method="filter_unattached")

    class Meta:
        model = Individual
        fields = {
            "first_name": ["exact", "iexact", "istartswith", "icontains"],
            "last_name": ["exact", "iexact", "istartswith", "icontains"],
            "dob": ["exact", "lt", "lte", "gt", "gte"],
            "sex": ["exact"],
            "is_deleted": ["exact"],
            "date_created": ["lt", "lte", "gt", "gte"],
        }

    def filter_location(self, queryset: QuerySet, name: str, value: Any) -> QuerySet:
        return queryset.filter(descendants_of([value], "location"))

    def filter_group(self, queryset: QuerySet, name: str, value: Any) -> QuerySet:
        return queryset.filter(Exists(GroupIndividual.objects.filter(individual=OuterRef("pk"), group_id=value)))

    def filter_unattached(self, queryset: QuerySet, name: str, value: Any) -> QuerySet:
        if value is None:
            return queryset
        attached = Exists(GroupIndividual.objects.filter(individual=OuterRef("pk")))
        return queryset.exclude(attached) if value else queryset.filter(attached)


class GroupFilter(django_filters.FilterSet):
    uuid = django_filters.UUIDFilter(field_name="id")
    location = django_filters.UUIDFilter(method="filter_location", label="a location and all under it")

    class Meta:
        model = Group
        fields = {
            "code": ["exact", "iexact", "istartswith", "icontains"],
            "is_deleted": ["exact"],
            "head__last_name": ["icontains"],
            "date_created": ["lt", "lte", "gt", "gte"],
        }

    def filter_location(self, queryset: QuerySet, name: str, value: Any) -> QuerySet:
        return queryset.filter(descendants_of([value], "location"))


class GroupIndividualFilter(django_filters.FilterSet):
    uuid = django_filters.UUIDFilter(field_name="id")
    group__id = django_filters.UUIDFilter(field_name="group_id")
    individual__id = django_filters.UUIDFilter(field_name="individual_id")

    class Meta:
        model = GroupIndividual
        fields = {
            "role": ["exact"],
            "recipient_type": ["exact"],
            "is_deleted": ["exact"],
            "group__code": ["exact", "icontains"],
            "individual__last_name": ["icontains"],
        }


FILTERSETS: dict[str, type[django_filters.FilterSet]] = {
    "individual": IndividualFilter,
    "group": GroupFilter,
}


def filtered(entity: str, queryset: QuerySet, filters: dict[str, Any]) -> QuerySet:
    """Apply list filters given as the FilterSet's own names (snake_case, e.g.
    ``last_name__icontains``) plus ``custom_filters`` and ``is_deleted`` (live rows by
    default); an invalid value is a ``ServiceError``."""
    from core.errors import ServiceError

    filters = dict(filters)
    custom = filters.pop("custom_filters", None)
    if filters.get("is_deleted") is None:
        queryset = queryset.filter(is_deleted=False)
    filterset = FILTERSETS[entity](data=filters, queryset=queryset)
    if not filterset.is_valid():
        raise ServiceError(CoreErrorCode.INVALID_FILTER, f"Invalid filters: {filterset.errors.as_text()}", "filters")
    return custom_filters.apply(filterset.qs, custom)
