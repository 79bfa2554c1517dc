"""openIMIS's frontend shapes over benefit plans that need more than a field: whether a plan
has payment plans (another module's answer), ``benefitPlanSchemaField`` and the core's
``customFilters`` for a plan's beneficiaries (``custom_filter_schema``). Its answer to
``workflow(group: "socialProtection")`` (the core's field) is empty: see ``upload_workflows``."""

from __future__ import annotations

from typing import Any

import graphene

from core.graphql.fields import ProtectedField, once_per_page
from core.hooks import hook
from modules.social_protection.permissions import PLAN_SEARCH


def plans_with_payment_plans(info: Any) -> set[Any]:
    """Once per request: every plan id a payment plan pays (none without the payroll module)."""
    cached = getattr(info.context, "_coremis_paid_plans", None)
    if cached is None:
        cached = set()
        for answer in hook().social_protection_plans_with_payment_plans():
            cached.update(answer)
        info.context._coremis_paid_plans = cached
    return cached


class ProjectType(graphene.ObjectType):
    """openIMIS's social protection project; coremis has none, so a beneficiary's is null."""

    id = graphene.ID()
    name = graphene.String()


def is_eligible(info: Any, beneficiary: Any, subject_field: str) -> bool:
    """Whether the beneficiary's person or household meets its plan's criteria now, read for
    the whole page at once (one statement, whatever the page's size and plans)."""
    eligible_pairs = once_per_page(beneficiary, f"is_eligible:{subject_field}",
                                   lambda rows: _eligible_pairs(rows, subject_field, info.context.user))
    return (beneficiary.benefit_plan_id, getattr(beneficiary, f"{subject_field}_id")) in eligible_pairs


def _eligible_pairs(beneficiaries: list[Any], subject_field: str, user: Any) -> set[tuple[Any, Any]]:
    """``(plan id, subject id)`` for each of these beneficiaries whose subject meets its plan's
    criteria: each plan's criteria over its rows' subjects, one ``UNION ALL`` for all plans."""
    from django.db.models import UUIDField, Value

    from modules.social_protection.services import eligible

    plans: dict[Any, Any] = {}
    subjects: dict[Any, list[Any]] = {}
    for row in beneficiaries:
        plans.setdefault(row.benefit_plan_id, row.benefit_plan)
        subjects.setdefault(row.benefit_plan_id, []).append(getattr(row, f"{subject_field}_id"))
    parts = [eligible(plan, user).filter(pk__in=subjects[plan_id])
             .annotate(coremis_plan=Value(plan_id, output_field=UUIDField())).values_list("pk", "coremis_plan")
             .order_by()
             for plan_id, plan in plans.items()]
    if not parts:
        return set()
    query = parts[0].union(*parts[1:], all=True) if len(parts) > 1 else parts[0]
    return {(plan_id, subject_id) for subject_id, plan_id in query}


class SchemaFieldsType(graphene.ObjectType):
    schema_fields = graphene.List(graphene.NonNull(graphene.String), required=True,
                                  description="the beneficiary json_ext properties of the plans of this type")


class BfTypeEnum(graphene.Enum):
    INDIVIDUAL = "INDIVIDUAL"
    GROUP = "GROUP"


class Query(graphene.ObjectType):
    benefit_plan_schema_field = ProtectedField(
        SchemaFieldsType, permission=PLAN_SEARCH, bf_type=BfTypeEnum(),
        description="The properties of the beneficiary data schemas of the live plans (of one type).",
    )

    def resolve_benefit_plan_schema_field(self, info: Any, bf_type: Any = None) -> SchemaFieldsType:
        from modules.social_protection.models import BenefitPlan

        plans = BenefitPlan.objects.filter(is_deleted=False)
        if bf_type is not None:
            plans = plans.filter(type=getattr(bf_type, "value", bf_type))
        names: set[str] = set()
        for schema in plans.values_list("beneficiary_data_schema", flat=True):
            names.update(((schema or {}).get("properties") or {}).keys())
        return SchemaFieldsType(schema_fields=sorted(names))


def custom_filter_schema(actor: Any, module_name: str, object_type_name: str, uuid_of_object: Any,
                         additional_params: dict[str, Any]) -> dict[str, Any] | None:
    """openIMIS's ``customFilters(moduleName: "social_protection", objectTypeName: "BenefitPlan",
    uuidOfObject: <plan>)``, which its benefit plan screens ask for before they filter the plan's
    beneficiaries: the properties ``customFilters`` on ``beneficiary`` / ``groupBeneficiary``
    can compare, which are the person's or household's ``json_ext`` (the registry's schema for
    the plan's type), with the plan's own ``beneficiaryDataSchema`` properties beside them (its
    types win where both name a property). None for any other object type."""
    from core.errors import CoreErrorCode, ServiceError
    from core.graphql.scalars import parse_uuid
    from core.permissions import require
    from modules.individual.validation import group_schema, individual_schema
    from modules.social_protection.models import BenefitPlan, PlanType
    from modules.social_protection.permissions import BENEFICIARY_SEARCH

    if module_name != "social_protection" or object_type_name.lower() != "benefitplan":
        return None
    require(actor, BENEFICIARY_SEARCH)
    if not uuid_of_object:
        raise ServiceError(CoreErrorCode.REQUIRED, "uuidOfObject names the benefit plan whose beneficiaries "
                           "are filtered.", "uuidOfObject")
    plan_id = parse_uuid(str(uuid_of_object))  # (INVALID_ID for neither a UUID nor an id)
    plan = BenefitPlan.objects.filter(pk=plan_id).only("type", "beneficiary_data_schema").first()
    if plan is None:
        raise ServiceError(CoreErrorCode.NOT_FOUND, f"No benefit plan has the id {plan_id}.", "uuidOfObject")
    registry = (group_schema() if plan.type == PlanType.GROUP else individual_schema()).schema
    own = (plan.beneficiary_data_schema or {}).get("properties") or {}
    return {"properties": {**(registry.get("properties") or {}), **own}}


def upload_workflows(group: str) -> list[tuple[str, str]] | None:
    """openIMIS's beneficiary upload dialog (``workflow(group: "socialProtection")``) uploads a
    file of beneficiaries to a plan. coremis has no such upload: a plan's beneficiaries are the
    registry's people or households that meet its criteria, enrolled by
    ``confirmIndividualEnrollment`` / ``confirmGroupEnrollment``. So no workflow is offered."""
    return [] if group == "socialProtection" else None
