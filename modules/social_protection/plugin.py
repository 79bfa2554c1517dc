"""Hook implementations of the social protection module."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.hooks import hookimpl
from core.permissions import Permission, declared


@hookimpl
def coremis_permissions() -> list[Permission]:
    from modules.social_protection import permissions

    return declared(permissions)


@hookimpl
def coremis_graphql_query() -> type:
    from modules.social_protection.openimis import Query as OpenimisQuery
    from modules.social_protection.schema import Query

    return type("Query", (Query, OpenimisQuery), {})


@hookimpl
def coremis_graphql_mutation() -> type:
    from modules.social_protection.schema import Mutation

    return Mutation


@hookimpl
def coremis_jobs() -> dict[str, Callable[..., Any]]:
    from modules.social_protection.jobs import run_bulk_status, run_enrollment
    from modules.social_protection.use_cases import BULK_STATUS, ENROLL

    return {ENROLL: run_enrollment, BULK_STATUS: run_bulk_status}


@hookimpl
def individual_validate_delete(individual: Any) -> None:
    from core.errors import ServiceError
    from modules.individual.errors import IndividualErrorCode
    from modules.social_protection.models import Beneficiary, BeneficiaryStatus

    if Beneficiary.objects.filter(individual=individual, status=BeneficiaryStatus.ACTIVE).exists():
        raise ServiceError(IndividualErrorCode.ACTIVE_BENEFICIARY, "This person is an active beneficiary; suspend or graduate them first.", "id")


@hookimpl
def group_validate_delete(group: Any) -> None:
    from core.errors import ServiceError
    from modules.individual.errors import IndividualErrorCode
    from modules.social_protection.models import BeneficiaryStatus, GroupBeneficiary

    if GroupBeneficiary.objects.filter(group=group, status=BeneficiaryStatus.ACTIVE).exists():
        raise ServiceError(IndividualErrorCode.ACTIVE_BENEFICIARY, "This household is an active beneficiary; suspend or graduate it first.", "id")


@hookimpl
def coremis_approval_actions() -> dict[str, Any]:
    from modules.social_protection.approvals import ACTIONS

    return ACTIONS


@hookimpl
def individual_list_filters() -> dict[str, Any]:
    from core.graphql.scalars import UUID

    def not_in_plan(queryset: Any, plan_id: Any) -> Any:
        from django.db.models import Exists, OuterRef

        from modules.social_protection.models import Beneficiary

        enrolled = Beneficiary.objects.filter(benefit_plan_id=plan_id, individual=OuterRef("pk"))
        return queryset.exclude(Exists(enrolled))

    return {"benefitPlanToEnroll": (
        UUID(description="only people not yet beneficiaries of this plan"), not_in_plan)}


@hookimpl(optionalhook=True)  # grievance declares it; without grievance nobody asks
def grievance_beneficiaries(beneficiary_ids: list[Any]) -> dict[Any, dict[str, Any]]:
    """Who a beneficiary is, for grievance tickets that name one (a hook grievance declares)."""
    from modules.social_protection.models import Beneficiary, GroupBeneficiary

    found: dict[Any, dict[str, Any]] = {}
    for row in Beneficiary.objects.filter(pk__in=beneficiary_ids).values("pk", "individual_id", "status",
                                                                          "benefit_plan__code"):
        found[row["pk"]] = {"individual_id": row["individual_id"], "group_id": None,
                            "plan_code": row["benefit_plan__code"], "status": row["status"]}
    for row in GroupBeneficiary.objects.filter(pk__in=beneficiary_ids).values("pk", "group_id", "status",
                                                                               "benefit_plan__code"):
        found[row["pk"]] = {"individual_id": None, "group_id": row["group_id"],
                            "plan_code": row["benefit_plan__code"], "status": row["status"]}
    return found


@hookimpl
def coremis_custom_filter_schema(actor: Any, module_name: str, object_type_name: str, uuid_of_object: Any,
                                 additional_params: dict[str, Any]) -> dict[str, Any] | None:
    from modules.social_protection.openimis import custom_filter_schema

    return custom_filter_schema(actor, module_name, object_type_name, uuid_of_object, additional_params)


@hookimpl
def coremis_upload_workflows(actor: Any, group: str) -> list[tuple[str, str]] | None:
    from modules.social_protection.openimis import upload_workflows

    return upload_workflows(group)


@hookimpl
def coremis_seed_demo(stdout: Any, actor: Any) -> None:
    from modules.social_protection.demo import seed_demo_plans as seed

    created = seed(actor)
    stdout.write(f"Demo social_protection data: {created} created." if created else "Demo social_protection data present.")
