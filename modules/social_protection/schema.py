"""GraphQL surface of benefit plans, targeting and beneficiaries (openIMIS shapes)."""

from __future__ import annotations

import json
from typing import Any

import graphene
from django.db.models import QuerySet
from graphql import GraphQLError

from core.approvals.schema import TaskGQLType
from core.errors import CoreErrorCode, ServiceError
from core.graphql.choices import choice_enum
from core.graphql.fields import ProtectedConnectionField, ProtectedField
from core.graphql.history import history_connection
from core.graphql.jobs import JobType
from core.graphql.mutations import CoreMutation
from core.graphql.scalars import UUID
from core.graphql.types import (
    CoreNode,
    CountableConnection,
    UserType,  # noqa: F401 - user fields resolve to it
)
from core.models import ApprovalTask
from modules.individual.schema import GroupGQLType, IndividualGQLType
from modules.social_protection import services, use_cases
from modules.social_protection.errors import SocialProtectionErrorCode
from modules.social_protection.filters import (
    BeneficiaryFilter,
    BenefitPlanFilter,
    GroupBeneficiaryFilter,
    eligible_only,
    scoped_beneficiaries,
)
from modules.social_protection.models import (
    Beneficiary,
    BeneficiaryStatus,
    BenefitPlan,
    GroupBeneficiary,
    PlanStatus,
    PlanType,
)
from modules.social_protection.permissions import (
    BENEFICIARY_ENROLL,
    BENEFICIARY_SEARCH,
    BENEFICIARY_UPDATE,
    PLAN_CLOSE,
    PLAN_CREATE,
    PLAN_DELETE,
    PLAN_SEARCH,
    PLAN_UPDATE,
)

PLAN_FIELDS = ("id", "code", "name", "type", "description", "institution", "max_beneficiaries",
               "ceiling_per_beneficiary", "date_valid_from", "date_valid_to", "beneficiary_data_schema",
               "criteria", "status", "json_ext", "is_deleted", "version", "date_created", "date_updated",
               "user_created", "user_updated")


BenefitPlanType = choice_enum("BenefitPlanType", PlanType, "Whom a benefit plan enrols: individuals or groups.")
BenefitPlanStatus = choice_enum("BenefitPlanStatus", PlanStatus, "Whether a benefit plan is open.")
BeneficiaryStatusEnum = choice_enum("BeneficiaryStatus", BeneficiaryStatus,
                                    "Where a beneficiary (individual or group) stands in a plan.")


class BenefitPlanGQLType(CoreNode):
    class Meta:
        model = BenefitPlan
        interfaces = (graphene.relay.Node,)
        connection_class = CountableConnection
        filterset_class = BenefitPlanFilter
        fields = PLAN_FIELDS

    type = graphene.Field(BenefitPlanType, required=True)
    status = graphene.Field(BenefitPlanStatus, required=True)

    # --- openIMIS frontend (modules/social_protection/openimis.py)
    replacement_uuid = UUID(description="openIMIS's plan replacing this one; coremis keeps one row per plan "
                                                 "(history instead), so always null")
    has_payment_plans = graphene.Boolean(required=True, description="whether a payment plan pays this plan "
                                                                    "(asked of the payroll module when enabled)")

    def resolve_replacement_uuid(self, info: Any) -> None:
        return None

    def resolve_has_payment_plans(self, info: Any) -> bool:
        from modules.social_protection.openimis import plans_with_payment_plans

        return self.pk in plans_with_payment_plans(info)


BENEFICIARY_FIELDS = ("id", "benefit_plan", "status", "json_ext", "is_deleted", "version", "date_created",
                      "date_updated", "user_created", "user_updated")


class BeneficiaryGQLType(CoreNode):
    class Meta:
        model = Beneficiary
        interfaces = (graphene.relay.Node,)
        connection_class = CountableConnection
        filterset_class = BeneficiaryFilter
        fields = (*BENEFICIARY_FIELDS, "individual")

    status = graphene.Field(BeneficiaryStatusEnum, required=True)

    # --- openIMIS frontend (modules/social_protection/openimis.py)
    project = graphene.Field("modules.social_protection.openimis.ProjectType",
                             description="openIMIS's project; always null (coremis has no projects)")
    is_eligible = graphene.Boolean(required=True, description="whether the individual meets the plan's criteria now")
    selection_reads = {"isEligible": ("benefit_plan",)}  # its criteria (core.graphql.fields.select_selection)

    def resolve_project(self, info: Any) -> None:
        return None

    def resolve_is_eligible(self, info: Any) -> bool:
        from modules.social_protection.openimis import is_eligible

        return is_eligible(info, self, "individual")

    @classmethod
    def list_queryset(cls, queryset: QuerySet, info: Any) -> QuerySet:
        return scoped_beneficiaries(info.context.user, queryset, PlanType.INDIVIDUAL)


class GroupBeneficiaryGQLType(CoreNode):
    class Meta:
        model = GroupBeneficiary
        interfaces = (graphene.relay.Node,)
        connection_class = CountableConnection
        filterset_class = GroupBeneficiaryFilter
        fields = (*BENEFICIARY_FIELDS, "group")

    status = graphene.Field(BeneficiaryStatusEnum, required=True)

    # --- openIMIS frontend (modules/social_protection/openimis.py)
    project = graphene.Field("modules.social_protection.openimis.ProjectType",
                             description="openIMIS's project; always null (coremis has no projects)")
    is_eligible = graphene.Boolean(required=True, description="whether the group meets the plan's criteria now")
    selection_reads = {"isEligible": ("benefit_plan",)}  # its criteria (core.graphql.fields.select_selection)

    def resolve_project(self, info: Any) -> None:
        return None

    def resolve_is_eligible(self, info: Any) -> bool:
        from modules.social_protection.openimis import is_eligible

        return is_eligible(info, self, "group")

    @classmethod
    def list_queryset(cls, queryset: QuerySet, info: Any) -> QuerySet:
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


def _summary(info: Any, plan_id: Any, custom_filters: Any, criteria: Any, kind: str) -> EnrollmentSummaryGQLType:
    user = info.context.user
    try:
        plan = services.get_plan(plan_id)
        if plan.type != kind:
            raise ServiceError(SocialProtectionErrorCode.WRONG_PLAN_TYPE, f"This is a {plan.type} plan.", "benefitPlanId")
        result = services.preview(user, plan.pk, use_cases.criteria_from(custom_filters, criteria))
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
                raise GraphQLError("isEligible needs benefitPlan_Id.", extensions={"code": CoreErrorCode.INVALID_FILTER})
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


class Query(graphene.ObjectType):
    beneficiary_duplicates_summary = ProtectedField(
        graphene.List(graphene.NonNull(DuplicateGroupGQLType)), permission=BENEFICIARY_SEARCH,
        benefit_plan_id=UUID(required=True), fields=graphene.List(graphene.NonNull(graphene.String), required=True),
        description="Beneficiaries of a plan sharing every chosen field (first_name, last_name, dob, "
                    "sex, location, code, json_ext.<key>), largest groups first.",
    )

    def resolve_beneficiary_duplicates_summary(self, info: Any, benefit_plan_id: Any, fields: list[str]) -> Any:
        try:
            groups = use_cases.duplicate_groups(info.context.user, benefit_plan_id, fields)
        except ServiceError as exc:
            raise _raise(exc) from exc
        return [DuplicateGroupGQLType(values=g["values"], count=g["count"], beneficiary_ids=g["ids"]) for g in groups]

    benefit_plan = ProtectedConnectionField(
        BenefitPlanGQLType, permission=PLAN_SEARCH,
        order_fields=["code", "name", "type", "status", "date_valid_from", "date_valid_to", "date_created"],
    )
    benefit_plan_history = history_connection(BenefitPlan, PLAN_SEARCH, lambda qs, user: qs)
    bf_code_validity = ProtectedField(ValidationMessageGQLType, permission=PLAN_SEARCH,
                                      bf_code=graphene.String(required=True), exclude_id=UUID())
    bf_name_validity = ProtectedField(ValidationMessageGQLType, permission=PLAN_SEARCH,
                                      bf_name=graphene.String(required=True), exclude_id=UUID())
    bf_schema_validity = ProtectedField(ValidationMessageGQLType, permission=PLAN_SEARCH,
                                        bf_schema=graphene.String(required=True))
    beneficiary = ProtectedConnectionField(
        BeneficiaryGQLType, permission=BENEFICIARY_SEARCH, custom_filters=True,
        is_eligible=graphene.Boolean(), queryset_hook=_beneficiary_hook(PlanType.INDIVIDUAL),
        order_fields=["status", "date_created", "individual__last_name", "individual__first_name",
                      "individual__dob"],
    )
    group_beneficiary = ProtectedConnectionField(
        GroupBeneficiaryGQLType, permission=BENEFICIARY_SEARCH, custom_filters=True,
        is_eligible=graphene.Boolean(), queryset_hook=_beneficiary_hook(PlanType.GROUP),
        order_fields=["status", "date_created", "group__code"],
    )
    individual_enrollment_summary = ProtectedField(
        EnrollmentSummaryGQLType, permission=BENEFICIARY_ENROLL,
        benefit_plan_id=UUID(required=True), custom_filters=graphene.List(graphene.String),
        criteria=graphene.JSONString(description="criteria document; defaults to the plan's"),
    )
    group_enrollment_summary = ProtectedField(
        EnrollmentSummaryGQLType, permission=BENEFICIARY_ENROLL,
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
    permission = PLAN_CREATE
    error_codes = SocialProtectionErrorCode
    benefit_plan = graphene.Field(BenefitPlanGQLType)

    class Input(PlanInput):
        pass

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        return {"benefit_plan": services.create_plan(user, **data)}


class UpdateBenefitPlanMutation(CoreMutation):
    permission = PLAN_UPDATE
    error_codes = SocialProtectionErrorCode
    benefit_plan = graphene.Field(BenefitPlanGQLType)

    class Input(PlanInput):
        id = UUID(required=True)
        version = graphene.Int()

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        pk, version = data.pop("id"), data.pop("version", None)
        return {"benefit_plan": services.update_plan(user, pk, version=version, **data)}


class DeleteBenefitPlanMutation(CoreMutation):
    permission = PLAN_DELETE
    error_codes = SocialProtectionErrorCode
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

    permission = PLAN_CLOSE
    error_codes = SocialProtectionErrorCode
    benefit_plan = graphene.Field(BenefitPlanGQLType)
    graduated = graphene.Int()
    task = graphene.Field(TaskGQLType, description="set instead when closing needs approval")

    class Input(CoreMutation.Input):
        id = UUID(required=True)
        version = graphene.Int()

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        done = use_cases.do_close_benefit_plan(use_cases.check_close_benefit_plan(user, data["id"], data.get("version")))
        return {"benefit_plan": done.plan, "graduated": done.graduated, "task": done.task}


class ConfirmEnrollmentInput(CoreMutation.Input):
    benefit_plan_id = UUID(required=True)
    status = graphene.String(default_value="POTENTIAL")
    custom_filters = graphene.List(graphene.String)
    criteria = graphene.JSONString()
    selection = graphene.List(graphene.NonNull(UUID), description="enroll only these, if eligible")


def _enrollment_mutation(name: str, kind: str, who: str) -> type[CoreMutation]:
    def perform(cls: Any, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        done = use_cases.do_enrollment(use_cases.check_enrollment(
            user, data["benefit_plan_id"], kind, status=data.get("status"), custom_filters=data.get("custom_filters"),
            criteria=data.get("criteria"), selection=data.get("selection")))
        return {"task": done} if isinstance(done, ApprovalTask) else {"job": done}

    return type(name, (CoreMutation,), {
        "__doc__": f"Enroll every eligible {who} (or a selection) in a background job, or propose "
                   "it for approval (``task``) when enrollment needs approval.",
        "permission": BENEFICIARY_ENROLL, "error_codes": SocialProtectionErrorCode,
        "job": graphene.Field(JobType), "task": graphene.Field(TaskGQLType),
        "Input": type("Input", (ConfirmEnrollmentInput,), {}), "perform": classmethod(perform),
    })


ConfirmIndividualEnrollmentMutation = _enrollment_mutation(
    "ConfirmIndividualEnrollmentMutation", PlanType.INDIVIDUAL, "individual")
ConfirmGroupEnrollmentMutation = _enrollment_mutation(
    "ConfirmGroupEnrollmentMutation", PlanType.GROUP, "household")


class UpdateBeneficiaryMutation(CoreMutation):
    """Change one beneficiary's status (an invalid transition is a clear error)."""

    permission = BENEFICIARY_UPDATE
    error_codes = SocialProtectionErrorCode
    beneficiary = graphene.Field(BeneficiaryGQLType)
    group_beneficiary = graphene.Field(GroupBeneficiaryGQLType)
    task = graphene.Field(TaskGQLType, description="set instead when status changes need approval")

    class Input(CoreMutation.Input):
        id = UUID(required=True)
        status = graphene.String(required=True)
        version = graphene.Int()

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        request = use_cases.check_status_change(user, data["id"], data["status"], data.get("version"))
        done = use_cases.do_status_change(request)
        return {done.key: done.beneficiary, "task": done.task}


class BulkUpdateBeneficiaryStatusMutation(CoreMutation):
    """Move every beneficiary of a plan matching the filters to ``status`` (only those for
    which the transition is allowed) in a background job."""

    permission = BENEFICIARY_UPDATE
    error_codes = SocialProtectionErrorCode
    job = graphene.Field(JobType)

    class Input(CoreMutation.Input):
        benefit_plan_id = UUID(required=True)
        status = graphene.String(required=True)
        current_status = graphene.String()
        custom_filters = graphene.List(graphene.String)

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        request = use_cases.check_bulk_status_change(user, data["benefit_plan_id"], data["status"],
                                                     current_status=data.get("current_status"),
                                                     custom_filters=data.get("custom_filters"))
        return {"job": use_cases.do_bulk_status_change(request)}


class CreateDuplicateReviewTasksMutation(CoreMutation):
    """Turn each group of likely duplicates into a review task for ``taskGroup``'s checkers;
    approving one suspends all of the group but the earliest enrolled."""

    permission = BENEFICIARY_UPDATE
    error_codes = SocialProtectionErrorCode
    tasks = graphene.List(graphene.NonNull(TaskGQLType))

    class Input(CoreMutation.Input):
        benefit_plan_id = UUID(required=True)
        fields = graphene.List(graphene.NonNull(graphene.String), required=True)
        task_group = graphene.String(description="task group code; defaults to the configured route")

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        request = use_cases.check_duplicate_review(user, data["benefit_plan_id"], data["fields"], data.get("task_group"))
        return {"tasks": use_cases.do_duplicate_review(request)}


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

