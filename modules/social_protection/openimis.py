"""openIMIS's frontend shapes over benefit plans that need more than a field: whether a plan
has payment plans (another module's answer) and ``benefitPlanSchemaField``. Its answer to
``workflow(group: "socialProtection")`` (the core's field) is empty: see ``upload_workflows``."""

from __future__ import annotations

from typing import Any

import graphene

from core.graphql.fields import ProtectedField
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
    """Whether the beneficiary's person or household meets the plan's criteria now (one indexed
    lookup per row asked; only the openIMIS beneficiary tabs ask for it)."""
    from modules.social_protection.services import eligible

    subject_id = getattr(beneficiary, f"{subject_field}_id")
    return eligible(beneficiary.benefit_plan, info.context.user).filter(pk=subject_id).exists()


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


def upload_workflows(group: str) -> list[tuple[str, str]] | None:
    """openIMIS's beneficiary upload dialog (``workflow(group: "socialProtection")``) uploads a
    file of beneficiaries to a plan. coremis has no such upload: a plan's beneficiaries are the
    registry's people or households that meet its criteria, enrolled by
    ``confirmIndividualEnrollment`` / ``confirmGroupEnrollment``. So no workflow is offered."""
    return [] if group == "socialProtection" else None
