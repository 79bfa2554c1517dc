"""GraphQL surface of benefit plans, targeting and beneficiaries (openIMIS shapes)."""

from __future__ import annotations

import json
from typing import Any

import graphene
from django.db.models import QuerySet
from graphql import GraphQLError

from core.approvals.schema import TaskGQLType
from core.approvals.services import needs_approval, request_approval
from core.errors import ServiceError
from core.graphql.core_schema import JobType, UserType  # noqa: F401 - user fields resolve to it
from core.graphql.fields import ProtectedConnectionField, ProtectedField
from core.graphql.history import history_connection
from core.graphql.mutations import CoreMutation
from core.graphql.scalars import UUID
from core.graphql.types import CoreNode, CountableConnection
from core.jobs import start_job
from modules.individual.schema import GroupGQLType, IndividualGQLType
from modules.social_protection import services
from modules.social_protection.filters import (
    BeneficiaryFilter,
    BenefitPlanFilter,
    GroupBeneficiaryFilter,
    eligible_only,
    scoped_beneficiaries,
)
from modules.social_protection.models import Beneficiary, BenefitPlan, GroupBeneficiary, PlanType

PLAN_FIELDS = ("id", "code", "name", "type", "description", "institution", "max_beneficiaries",
               "ceiling_per_beneficiary", "date_valid_from", "date_valid_to", "beneficiary_data_schema",
               "criteria", "status", "json_ext", "is_deleted", "version", "date_created", "date_updated",
               "user_created", "user_updated")


class BenefitPlanGQLType(CoreNode):
    class Meta:
        model = BenefitPlan
        interfaces = (graphene.relay.Node,)
        connection_class = CountableConnection
        filterset_class = BenefitPlanFilter
        fields = PLAN_FIELDS

    type = graphene.String(required=True)
    status = graphene.String(required=True)

    # --- openIMIS frontend (modules/social_protection/openimis.py)
    replacement_uuid = graphene.UUID(description="openIMIS's plan replacing this one; coremis keeps one row per plan "
                                                 "(history instead), so always null")
    has_payment_plans = graphene.Boolean(required=True, description="whether a payment plan pays this plan "
                                                                    "(asked of the payroll module when enabled)")

    def resolve_replacement_uuid(self, info: Any) -> None:
        return None

    def resolve_has_payment_plans(self, info: Any) -> bool:
        from modules.social_protection.openimis import plans_with_payment_plans

        return self.pk in plans_with_payment_plans(info)

    @classmethod
    def list_queryset(cls, queryset: QuerySet, info: Any) -> QuerySet:
        return queryset.select_related("user_created", "user_updated")


BENEFICIARY_FIELDS = ("id", "benefit_plan", "status", "json_ext", "is_deleted", "version", "date_created",
                      "date_updated", "user_created", "user_updated")


class BeneficiaryGQLType(CoreNode):
    class Meta:
        model = Beneficiary
        interfaces = (graphene.relay.Node,)
        connection_class = CountableConnection
        filterset_class = BeneficiaryFilter
        fields = (*BENEFICIARY_FIELDS, "individual")

    status = graphene.String(required=True)

    # --- openIMIS frontend (modules/social_protection/openimis.py)
    project = graphene.Field("modules.social_protection.openimis.ProjectType",
                             description="openIMIS's project; always null (coremis has no projects)")
    is_eligible = graphene.Boolean(required=True, description="whether the individual meets the plan's criteria now")

    def resolve_project(self, info: Any) -> None:
        return None

    def resolve_is_eligible(self, info: Any) -> bool:
        from modules.social_protection.openimis import is_eligible

        return is_eligible(info, self, "individual")

    @classmethod
    def list_queryset(cls, queryset: QuerySet, info: Any) -> QuerySet:
        queryset = queryset.select_related("benefit_plan", "individual", "individual__location",
                                           "user_created", "user_updated")
        return scoped_beneficiaries(info.context.user, queryset, PlanType.INDIVIDUAL)


class GroupBeneficiaryGQLType(CoreNode):
    class Meta:
        model = GroupBeneficiary
        interfaces = (graphene.relay.Node,)
        connection_class = CountableConnection
        filterset_class = GroupBeneficiaryFilter
        fields = (*BENEFICIARY_FIELDS, "group")

    status = graphene.String(required=True)

    # --- openIMIS frontend (modules/social_protection/openimis.py)
    project = graphene.Field("modules.social_protection.openimis.ProjectType",
                             description="openIMIS's project; always null (coremis has no projects)")
    is_eligible = graphene.Boolean(required=True, description="whether the group meets the plan's criteria now")

    def resolve_project(self, info: Any) -> None:
        return None

    def resolve_is_eligible(self, info: Any) -> bool:
        from modules.social_protection.openimis import is_eligible

        return is_eligible(info, self, "group")

    @classmethod
    def list_queryset(cls, queryset: QuerySet, info: Any) -> QuerySet:
        queryset = queryset.select_related("benefit_plan", "group", "group__location", "group__head",
                                           "user_created", "user_updated")
        return scoped_beneficiaries(info.context.user, queryset, PlanType.GROUP)


class ValidationMessageGQLType(graphene.ObjectType):
    is_valid = graphene.Boolean(required=True)
    error_code = graphene.String()
    error_message = graphene.String()


def _validity(errors: list[Any]) -> ValidationMessageGQLType:
    if not errors:
        return ValidationMessageGQLType(is_valid=True)
    return ValidationMessageGQLType(is_valid=False, error_code=errors[0].code, error_message=errors[0].message)


class EnrollmentSummaryGQLType(graphene.ObjectType):
    """Counts for a targeting preview, in openIMIS's names plus ``sample``."""

    total_number_of_individuals = graphene.Int(description="matching the criteria")
    number_of_individuals_assigned_to_selected_programme = graphene.Int()
    number_of_individuals_not_assigned_to_selected_programme = graphene.Int()
    number_to_enroll = graphene.Int(description="not yet enrolled and within the plan's maximum")
    capacity_left = graphene.Int()
    sample_individuals = graphene.List(graphene.NonNull(IndividualGQLType))
    sample_groups = graphene.List(graphene.NonNull(GroupGQLType))


def _raise(exc: ServiceError) -> GraphQLError:
    return GraphQLError(exc.message, extensions={"code": exc.code, "field": exc.field})


def _criteria_from(custom_filters: list[str] | None, criteria: Any) -> Any:
    """openIMIS frontends send customFilters; the plan's own criteria apply when neither is given."""
    if criteria is not None:
        return json.loads(criteria) if isinstance(criteria, str) else criteria
    if custom_filters:
        return {"combine": "AND", "conditions": [{"filter": f} for f in custom_filters]}
    return None


def _summary(info: Any, plan_id: Any, custom_filters: Any, criteria: Any, kind: str) -> EnrollmentSummaryGQLType:
    user = info.context.user
    try:
        plan = services.get_plan(plan_id)
        if plan.type != kind:
            raise ServiceError("WRONG_PLAN_TYPE", f"This is a {plan.type} plan.", "benefitPlanId")
        result = services.preview(user, plan.pk, _criteria_from(custom_filters, criteria))
    except ServiceError as exc:
        raise _raise(exc) from exc
    sample = result["sample"]
    return EnrollmentSummaryGQLType(
        total_number_of_individuals=result["matching"],
        number_of_individuals_assigned_to_selected_programme=result["already_enrolled"],
        number_of_individuals_not_assigned_to_selected_programme=result["not_enrolled"],
        number_to_enroll=result["would_enroll"],
        capacity_left=result["capacity_left"],
        sample_individuals=sample if kind == PlanType.INDIVIDUAL else [],
        sample_groups=sample if kind == PlanType.GROUP else [],
    )


def _beneficiary_hook(plan_type: str) -> Any:
    def hook(queryset: QuerySet, info: Any, args: dict[str, Any]) -> QuerySet:
        if args.get("is_eligible"):
            plan_id = args.get("benefit_plan__id")
            if not plan_id:
                raise GraphQLError("isEligible needs benefitPlan_Id.", extensions={"code": "INVALID_FILTER"})
            plan = BenefitPlan.objects.filter(pk=plan_id).first()
            if plan is None:
                return queryset.none()
            queryset = eligible_only(queryset, plan_type, plan.criteria)
        return queryset

    return hook


class DuplicateGroupGQLType(graphene.ObjectType):
    values = graphene.JSONString(required=True, description="the shared field values")
    count = graphene.Int(required=True)
    beneficiary_ids = graphene.List(graphene.NonNull(UUID), required=True,
                                    description="earliest enrolled first")


def _duplicates(user: Any, plan_id: Any, fields: list[str]) -> list[dict[str, Any]]:
    from modules.social_protection import duplicates
    from modules.social_protection.filters import beneficiaries_for

    plan = services.get_plan(plan_id)
    return duplicates.summary(beneficiaries_for(user, plan, {}), plan.type, fields)


class Query(graphene.ObjectType):
    beneficiary_duplicates_summary = ProtectedField(
        graphene.List(graphene.NonNull(DuplicateGroupGQLType)), permission="social_protection.beneficiary_search",
        benefit_plan_id=UUID(required=True), fields=graphene.List(graphene.NonNull(graphene.String), required=True),
        description="Beneficiaries of a plan sharing every chosen field (first_name, last_name, dob, "
                    "sex, location, code, json_ext.<key>), largest groups first.",
    )

    def resolve_beneficiary_duplicates_summary(self, info: Any, benefit_plan_id: Any, fields: list[str]) -> Any:
        try:
            groups = _duplicates(info.context.user, benefit_plan_id, fields)
        except ServiceError as exc:
            raise _raise(exc) from exc
        return [DuplicateGroupGQLType(values=g["values"], count=g["count"], beneficiary_ids=g["ids"]) for g in groups]

    benefit_plan = ProtectedConnectionField(
        BenefitPlanGQLType, permission="social_protection.plan_search",
        order_fields=["code", "name", "type", "status", "date_valid_from", "date_valid_to", "date_created"],
    )
    benefit_plan_history = history_connection(BenefitPlan, "social_protection.plan_search", lambda qs, user: qs)
    bf_code_validity = ProtectedField(ValidationMessageGQLType, permission="social_protection.plan_search",
                                      bf_code=graphene.String(required=True), exclude_id=UUID())
    bf_name_validity = ProtectedField(ValidationMessageGQLType, permission="social_protection.plan_search",
                                      bf_name=graphene.String(required=True), exclude_id=UUID())
    bf_schema_validity = ProtectedField(ValidationMessageGQLType, permission="social_protection.plan_search",
                                        bf_schema=graphene.String(required=True))
    beneficiary = ProtectedConnectionField(
        BeneficiaryGQLType, permission="social_protection.beneficiary_search", custom_filters=True,
        is_eligible=graphene.Boolean(), queryset_hook=_beneficiary_hook(PlanType.INDIVIDUAL),
        order_fields=["status", "date_created", "individual__last_name", "individual__first_name",
                      "individual__dob"],
    )
    group_beneficiary = ProtectedConnectionField(
        GroupBeneficiaryGQLType, permission="social_protection.beneficiary_search", custom_filters=True,
        is_eligible=graphene.Boolean(), queryset_hook=_beneficiary_hook(PlanType.GROUP),
        order_fields=["status", "date_created", "group__code"],
    )
    individual_enrollment_summary = ProtectedField(
        EnrollmentSummaryGQLType, permission="social_protection.enroll",
        benefit_plan_id=UUID(required=True), custom_filters=graphene.List(graphene.String),
        criteria=graphene.JSONString(description="criteria document; defaults to the plan's"),
    )
    group_enrollment_summary = ProtectedField(
        EnrollmentSummaryGQLType, permission="social_protection.enroll",
        benefit_plan_id=UUID(required=True), custom_filters=graphene.List(graphene.String),
        criteria=graphene.JSONString(),
    )

    def resolve_bf_code_validity(self, info: Any, bf_code: str, exclude_id: Any = None) -> Any:
        return _validity(services.code_errors(bf_code, exclude_id))

    def resolve_bf_name_validity(self, info: Any, bf_name: str, exclude_id: Any = None) -> Any:
        return _validity(services.name_errors(bf_name, exclude_id))

    def resolve_bf_schema_validity(self, info: Any, bf_schema: str) -> Any:
        try:
            schema = json.loads(bf_schema)
        except json.JSONDecodeError as exc:
            return ValidationMessageGQLType(is_valid=False, error_code="INVALID_JSON", error_message=str(exc))
        return _validity(services.schema_errors(schema))

    def resolve_individual_enrollment_summary(self, info: Any, benefit_plan_id: Any,
                                              custom_filters: Any = None, criteria: Any = None) -> Any:
        return _summary(info, benefit_plan_id, custom_filters, criteria, PlanType.INDIVIDUAL)

    def resolve_group_enrollment_summary(self, info: Any, benefit_plan_id: Any,
                                         custom_filters: Any = None, criteria: Any = None) -> Any:
        return _summary(info, benefit_plan_id, custom_filters, criteria, PlanType.GROUP)


# --- mutations -------------------------------------------------------------------------------


class PlanInput(CoreMutation.Input):
    code = graphene.String()
    name = graphene.String()
    type = graphene.String()
    description = graphene.String()
    institution = graphene.String()
    max_beneficiaries = graphene.Int()
    ceiling_per_beneficiary = graphene.Decimal()
    date_valid_from = graphene.Date()
    date_valid_to = graphene.Date()
    beneficiary_data_schema = graphene.JSONString()
    criteria = graphene.JSONString()
    json_ext = graphene.JSONString()


class CreateBenefitPlanMutation(CoreMutation):
    permission = "social_protection.plan_create"
    benefit_plan = graphene.Field(BenefitPlanGQLType)

    class Input(PlanInput):
        pass

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        return {"benefit_plan": services.create_plan(user, **data)}


class UpdateBenefitPlanMutation(CoreMutation):
    permission = "social_protection.plan_update"
    benefit_plan = graphene.Field(BenefitPlanGQLType)

    class Input(PlanInput):
        id = UUID(required=True)
        version = graphene.Int()

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        pk, version = data.pop("id"), data.pop("version", None)
        return {"benefit_plan": services.update_plan(user, pk, version=version, **data)}


class DeleteBenefitPlanMutation(CoreMutation):
    permission = "social_protection.plan_delete"
    benefit_plan = graphene.Field(BenefitPlanGQLType)

    class Input(CoreMutation.Input):
        id = UUID(required=True)
        version = graphene.Int()

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        return {"benefit_plan": services.delete_plan(user, data["id"], data.get("version"))}


class CloseBenefitPlanMutation(CoreMutation):
    """Close a plan; every beneficiary who is not yet GRADUATED graduates, in every location,
    so it needs national scope."""

    permission = "social_protection.plan_close"
    benefit_plan = graphene.Field(BenefitPlanGQLType)
    graduated = graphene.Int()
    task = graphene.Field(TaskGQLType, description="set instead when closing needs approval")

    class Input(CoreMutation.Input):
        id = UUID(required=True)
        version = graphene.Int()

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        if needs_approval("social_protection.close_plan"):
            plan = services.check_close_plan(user, data["id"])
            payload = {"id": str(plan.pk), "version": data.get("version")}
            task = request_approval(user, "social_protection.close_plan", "BenefitPlan", plan.pk, payload)
            return {"benefit_plan": plan, "task": task}
        result = services.close_plan(user, data["id"], data.get("version"))
        return {"benefit_plan": result["plan"], "graduated": result["graduated"]}


class ConfirmEnrollmentInput(CoreMutation.Input):
    benefit_plan_id = UUID(required=True)
    status = graphene.String(default_value="POTENTIAL")
    custom_filters = graphene.List(graphene.String)
    criteria = graphene.JSONString()
    selection = graphene.List(graphene.NonNull(UUID), description="enroll only these, if eligible")


def _start_enrollment(user: Any, data: dict[str, Any], kind: str) -> dict[str, Any]:
    plan = services.get_plan(data["benefit_plan_id"])
    if plan.type != kind:
        raise ServiceError("WRONG_PLAN_TYPE", f"This is a {plan.type} plan.", "benefitPlanId")
    status = data.get("status") or "POTENTIAL"
    services.validate_enrollment(user, plan, status)
    criteria = _criteria_from(data.get("custom_filters"), data.get("criteria"))
    if criteria is not None:
        from modules.social_protection import targeting

        targeting.build(plan.type, criteria)  # refuse a bad document now, not in the job
    params = {"plan_id": str(plan.pk), "status": status, "criteria": criteria,
              "selection": [str(s) for s in data["selection"]] if data.get("selection") else None}
    if needs_approval("social_protection.enroll"):
        return {"task": request_approval(user, "social_protection.enroll", "BenefitPlan", plan.pk, params)}
    return {"job": start_job("social_protection.enroll", params, user)}


def _enrollment_mutation(name: str, kind: str, who: str) -> type[CoreMutation]:
    def perform(cls: Any, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        return _start_enrollment(user, data, kind)

    return type(name, (CoreMutation,), {
        "__doc__": f"Enroll every eligible {who} (or a selection) in a background job, or propose "
                   "it for approval (``task``) when enrollment needs approval.",
        "permission": "social_protection.enroll",
        "job": graphene.Field(JobType), "task": graphene.Field(TaskGQLType),
        "Input": type("Input", (ConfirmEnrollmentInput,), {}), "perform": classmethod(perform),
    })


ConfirmIndividualEnrollmentMutation = _enrollment_mutation(
    "ConfirmIndividualEnrollmentMutation", PlanType.INDIVIDUAL, "individual")
ConfirmGroupEnrollmentMutation = _enrollment_mutation(
    "ConfirmGroupEnrollmentMutation", PlanType.GROUP, "household")


class UpdateBeneficiaryMutation(CoreMutation):
    """Change one beneficiary's status (an invalid transition is a clear error)."""

    permission = "social_protection.beneficiary_update"
    beneficiary = graphene.Field(BeneficiaryGQLType)
    group_beneficiary = graphene.Field(GroupBeneficiaryGQLType)
    task = graphene.Field(TaskGQLType, description="set instead when status changes need approval")

    class Input(CoreMutation.Input):
        id = UUID(required=True)
        status = graphene.String(required=True)
        version = graphene.Int()

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        for model, plan_type, key in ((Beneficiary, PlanType.INDIVIDUAL, "beneficiary"),
                                      (GroupBeneficiary, PlanType.GROUP, "group_beneficiary")):
            row = scoped_beneficiaries(user, model.objects.filter(pk=data["id"]), plan_type).first()
            if row is not None:
                if needs_approval("social_protection.change_status"):
                    services.check_transition(row, data["status"])  # refuse a bad proposal now
                    payload = {"id": str(row.pk), "status": data["status"], "version": data.get("version")}
                    task = request_approval(user, "social_protection.change_status", model.__name__, row.pk, payload)
                    return {key: row, "task": task}
                return {key: services.change_status(user, row, data["status"], data.get("version"))}
        from core.errors import NotFound

        raise NotFound("Beneficiary", data["id"])


class BulkUpdateBeneficiaryStatusMutation(CoreMutation):
    """Move every beneficiary of a plan matching the filters to ``status`` (only those for
    which the transition is allowed) in a background job."""

    permission = "social_protection.beneficiary_update"
    job = graphene.Field(JobType)

    class Input(CoreMutation.Input):
        benefit_plan_id = UUID(required=True)
        status = graphene.String(required=True)
        current_status = graphene.String()
        custom_filters = graphene.List(graphene.String)

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        plan = services.get_plan(data["benefit_plan_id"])
        filters: dict[str, Any] = {}
        if data.get("current_status"):
            filters["status"] = data["current_status"]
        if data.get("custom_filters"):
            filters["custom_filters"] = data["custom_filters"]
        from modules.social_protection.filters import beneficiaries_for

        beneficiaries_for(user, plan, filters).exists()  # refuse bad filters now
        params = {"plan_id": str(plan.pk), "status": data["status"], "filters": filters}
        return {"job": start_job("social_protection.bulk_status", params, user)}


class CreateDuplicateReviewTasksMutation(CoreMutation):
    """Turn each group of likely duplicates into a review task for ``taskGroup``'s checkers;
    approving one suspends all of the group but the earliest enrolled."""

    permission = "social_protection.beneficiary_update"
    tasks = graphene.List(graphene.NonNull(TaskGQLType))

    class Input(CoreMutation.Input):
        benefit_plan_id = UUID(required=True)
        fields = graphene.List(graphene.NonNull(graphene.String), required=True)
        task_group = graphene.String(description="task group code; defaults to the configured route")

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        plan_id = data["benefit_plan_id"]
        tasks = []
        for group in _duplicates(user, plan_id, data["fields"]):
            keep, *suspend = group["ids"]
            payload = {"plan_id": str(plan_id), "keep": keep, "suspend": suspend, "values": group["values"]}
            tasks.append(request_approval(user, "social_protection.resolve_duplicates", "BeneficiaryDuplicates",
                                          keep, payload, task_group=data.get("task_group")))
        return {"tasks": tasks}


class Mutation(graphene.ObjectType):
    create_duplicate_review_tasks = CreateDuplicateReviewTasksMutation.Field()
    create_benefit_plan = CreateBenefitPlanMutation.Field()
    update_benefit_plan = UpdateBenefitPlanMutation.Field()
    delete_benefit_plan = DeleteBenefitPlanMutation.Field()
    close_benefit_plan = CloseBenefitPlanMutation.Field()
    confirm_individual_enrollment = ConfirmIndividualEnrollmentMutation.Field()
    confirm_group_enrollment = ConfirmGroupEnrollmentMutation.Field()
    update_beneficiary = UpdateBeneficiaryMutation.Field()
    bulk_update_beneficiary_status = BulkUpdateBeneficiaryStatusMutation.Field()

