"""Filters for plans and beneficiaries, shared by GraphQL lists and bulk jobs."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import Exists, OuterRef, QuerySet

from core import custom_filters
from core.actors import checked_actor
from core.errors import CoreErrorCode, ServiceError
from core.graphql.choices import ChoiceCodeFilter, ChoiceCodesFilter, ChoiceTextFilter
from modules.location.services import scope_queryset
from modules.social_protection import targeting
from modules.social_protection.models import (
    Beneficiary,
    BeneficiaryStatus,
    BenefitPlan,
    GroupBeneficiary,
    PlanStatus,
    PlanType,
)


class BenefitPlanFilter(django_filters.FilterSet):
    uuid = django_filters.UUIDFilter(field_name="id")
    id = django_filters.UUIDFilter(field_name="id", label="openIMIS's name for uuid")
    individual_id = django_filters.UUIDFilter(method="filter_individual")
    group_id = django_filters.UUIDFilter(method="filter_group")
    beneficiary_status = django_filters.CharFilter(method="filter_noop", label="with individualId/groupId")
    type = ChoiceCodeFilter(field_name="type", choices=PlanType.choices)
    status = ChoiceCodeFilter(field_name="status", choices=PlanStatus.choices)

    class Meta:
        model = BenefitPlan
        fields = {
            "code": ["exact", "iexact", "icontains", "istartswith"],
            "name": ["exact", "iexact", "icontains", "istartswith"],
            "type": ["exact"],
            "status": ["exact"],
            "is_deleted": ["exact"],
            "date_valid_from": ["lte", "gte"],
            "date_valid_to": ["lte", "gte"],
        }

    def _member_of(self, queryset: QuerySet, model: Any, field: str, value: Any) -> QuerySet:
        """Plans the person or household is a beneficiary of, if the user may see them: the
        answer about someone outside the scope is the answer about no one."""
        rows = model.objects.filter(benefit_plan=OuterRef("pk"), **{f"{field}_id": value})
        status = self.data.get("beneficiary_status")
        if status:
            rows = rows.filter(status=status)
        # Always within the reader's scope: a FilterSet made without a request has no reader,
        # and None is no actor (MissingActor), not "everything".
        user = getattr(self.request, "user", None)
        rows = scoped_beneficiaries(checked_actor(user), rows, PlanType.GROUP if field == "group" else PlanType.INDIVIDUAL)
        return queryset.filter(Exists(rows))

    def filter_individual(self, queryset: QuerySet, name: str, value: Any) -> QuerySet:
        return self._member_of(queryset, Beneficiary, "individual", value)

    def filter_group(self, queryset: QuerySet, name: str, value: Any) -> QuerySet:
        return self._member_of(queryset, GroupBeneficiary, "group", value)

    def filter_noop(self, queryset: QuerySet, name: str, value: Any) -> QuerySet:
        return queryset


class BeneficiaryFilter(django_filters.FilterSet):
    uuid = django_filters.UUIDFilter(field_name="id")
    benefit_plan__id = django_filters.UUIDFilter(field_name="benefit_plan_id")
    individual__id = django_filters.UUIDFilter(field_name="individual_id")
    # quoted or unquoted (openIMIS's frontend sends status: ACTIVE)
    status = ChoiceTextFilter(field_name="status", choices=BeneficiaryStatus.choices)
    status__in = ChoiceCodesFilter(field_name="status", choices=BeneficiaryStatus.choices)

    class Meta:
        model = Beneficiary
        fields = {
            "status": ["exact", "in"],
            "is_deleted": ["exact"],
            "individual__first_name": ["icontains", "iexact"],
            "individual__last_name": ["icontains", "iexact"],
            "individual__dob": ["exact", "lte", "gte"],
        }


class GroupBeneficiaryFilter(django_filters.FilterSet):
    uuid = django_filters.UUIDFilter(field_name="id")
    benefit_plan__id = django_filters.UUIDFilter(field_name="benefit_plan_id")
    group__id = django_filters.UUIDFilter(field_name="group_id")
    status = ChoiceTextFilter(field_name="status", choices=BeneficiaryStatus.choices)
    status__in = ChoiceCodesFilter(field_name="status", choices=BeneficiaryStatus.choices)

    class Meta:
        model = GroupBeneficiary
        fields = {
            "status": ["exact", "in"],
            "is_deleted": ["exact"],
            "group__code": ["exact", "icontains"],
        }


def eligible_only(queryset: QuerySet, plan_type: str, criteria: Any) -> QuerySet:
    """Beneficiaries whose person/household matches ``criteria`` (the ``isEligible`` filter)."""
    condition = targeting.build(plan_type, criteria)
    if plan_type == PlanType.GROUP:
        from modules.individual.models import Group

        subjects = Group.objects.filter(condition, pk=OuterRef("group_id"))
    else:
        from modules.individual.models import Individual

        subjects = Individual.objects.filter(condition, pk=OuterRef("individual_id"))
    return queryset.filter(Exists(subjects))


def scoped_beneficiaries(user: Any, queryset: QuerySet, plan_type: str) -> QuerySet:
    """Only beneficiaries whose person or household lives in the user's locations."""
    field = "group__location" if plan_type == PlanType.GROUP else "individual__location"
    return scope_queryset(queryset, user, field)


def beneficiaries_for(user: Any, plan: BenefitPlan, filters: dict[str, Any]) -> QuerySet:
    """Beneficiaries of ``plan`` the user may see, narrowed by list-style ``filters``
    (FilterSet names plus ``custom_filters`` over the person's json_ext)."""
    filters = dict(filters)
    custom = filters.pop("custom_filters", None)
    is_group = plan.type == PlanType.GROUP
    model = GroupBeneficiary if is_group else Beneficiary
    filterset_class = GroupBeneficiaryFilter if is_group else BeneficiaryFilter
    rows = scoped_beneficiaries(user, model.objects.filter(benefit_plan=plan), plan.type)
    filterset = filterset_class(data=filters, queryset=rows)
    if not filterset.is_valid():
        raise ServiceError(CoreErrorCode.INVALID_FILTER, f"Invalid filters: {filterset.errors.as_text()}", "filters")
    return custom_filters.apply(filterset.qs, custom, "group__json_ext" if is_group else "individual__json_ext")
