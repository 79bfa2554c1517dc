"""The social protection actions that run as a job or wait for approval: closing a plan,
enrolling, changing one beneficiary's status or many, proposing duplicate reviews. Each is a
``check_*`` (permission, scope, validation, once; returns a frozen request) and a ``do_*``
(an approval task when the deployment routes the action to a task group, otherwise the job
or the write). Mutations call the two in a line or two.

The approval actions and job kinds are named here once; they are not permissions
(``permissions.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from core.approvals.services import needs_approval, request_approval
from core.errors import NotFound, ServiceError
from core.jobs import start_job
from core.models import ApprovalTask, Job, User
from modules.social_protection import services
from modules.social_protection.errors import SocialProtectionErrorCode
from modules.social_protection.filters import beneficiaries_for, scoped_beneficiaries
from modules.social_protection.models import Beneficiary, BenefitPlan, GroupBeneficiary, PlanType
from modules.social_protection.permissions import BENEFICIARY_UPDATE

# approval actions
CLOSE_PLAN = "social_protection.close_plan"
CHANGE_STATUS = "social_protection.change_status"
RESOLVE_DUPLICATES = "social_protection.resolve_duplicates"
# a job kind and an approval action (the approved task runs the same enrollment)
ENROLL = "social_protection.enroll"
# a job kind
BULK_STATUS = "social_protection.bulk_status"


def criteria_from(custom_filters: list[str] | None, criteria: Any) -> Any:
    """openIMIS frontends send customFilters; the plan's own criteria apply when neither is given."""
    if criteria is not None:
        return json.loads(criteria) if isinstance(criteria, str) else criteria
    if custom_filters:
        return {"combine": "AND", "conditions": [{"filter": f} for f in custom_filters]}
    return None


def plan_of_type(plan_id: Any, kind: str) -> BenefitPlan:
    plan = services.get_plan(plan_id)
    if plan.type != kind:
        raise ServiceError(SocialProtectionErrorCode.WRONG_PLAN_TYPE, f"This is a {plan.type} plan.", "benefitPlanId")
    return plan


# --- closing a plan ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClosePlanRequest:
    actor: User
    plan: BenefitPlan
    version: int | None


@dataclass(frozen=True)
class PlanClosure:
    plan: BenefitPlan
    graduated: int | None = None  # closed now: how many graduated
    task: ApprovalTask | None = None  # or waiting for approval


def check_close_benefit_plan(actor: User, plan_id: Any, version: int | None = None) -> ClosePlanRequest:
    return ClosePlanRequest(actor, services.check_close_plan(actor, plan_id), version)


def do_close_benefit_plan(request: ClosePlanRequest) -> PlanClosure:
    """Ask for approval when closing is routed, else close now (the service locks the plan
    and checks it again)."""
    if needs_approval(CLOSE_PLAN):
        payload = {"id": str(request.plan.pk), "version": request.version}
        task = request_approval(request.actor, CLOSE_PLAN, "BenefitPlan", request.plan.pk, payload)
        return PlanClosure(request.plan, task=task)
    result = services.close_plan(request.actor, request.plan.pk, request.version)
    return PlanClosure(result["plan"], graduated=result["graduated"])


# --- enrollment ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnrollmentRequest:
    actor: User
    plan: BenefitPlan
    params: dict[str, Any]


def check_enrollment(actor: User, plan_id: Any, kind: str, *, status: str | None = None,
                     custom_filters: list[str] | None = None, criteria: Any = None,
                     selection: list[Any] | None = None) -> EnrollmentRequest:
    """The plan is of ``kind``, the status one enrollment may give, the criteria a valid
    document (refused now, not in the job)."""
    from modules.social_protection import targeting

    plan = plan_of_type(plan_id, kind)
    status = status or "POTENTIAL"
    services.validate_enrollment(actor, plan, status)
    document = criteria_from(custom_filters, criteria)
    if document is not None:
        targeting.build(plan.type, document)
    params = {"plan_id": str(plan.pk), "status": status, "criteria": document,
              "selection": [str(s) for s in selection] if selection else None}
    return EnrollmentRequest(actor, plan, params)


def do_enrollment(request: EnrollmentRequest) -> Job | ApprovalTask:
    if needs_approval(ENROLL):
        return request_approval(request.actor, ENROLL, "BenefitPlan", request.plan.pk, request.params)
    return start_job(ENROLL, request.params, request.actor)


# --- one beneficiary's status --------------------------------------------------------------------


@dataclass(frozen=True)
class StatusChangeRequest:
    actor: User
    beneficiary: Beneficiary | GroupBeneficiary
    status: str
    version: int | None


def check_status_change(actor: User, beneficiary_id: Any, status: str,
                        version: int | None = None) -> StatusChangeRequest:
    """The beneficiary (of either kind) within the actor's scope, and a transition its
    status allows."""
    from core.permissions import require

    require(actor, BENEFICIARY_UPDATE)
    for model, plan_type in ((Beneficiary, PlanType.INDIVIDUAL), (GroupBeneficiary, PlanType.GROUP)):
        row = scoped_beneficiaries(actor, model.objects.filter(pk=beneficiary_id), plan_type).first()
        if row is not None:
            services.check_transition(row, status)
            return StatusChangeRequest(actor, row, status, version)
    raise NotFound("Beneficiary", beneficiary_id)


@dataclass(frozen=True)
class StatusChange:
    beneficiary: Beneficiary | GroupBeneficiary
    task: ApprovalTask | None = None  # set when the change waits for approval

    @property
    def key(self) -> str:
        """The payload field the row goes in (``beneficiary`` or ``groupBeneficiary``)."""
        return "beneficiary" if isinstance(self.beneficiary, Beneficiary) else "group_beneficiary"


def do_status_change(request: StatusChangeRequest) -> StatusChange:
    row = request.beneficiary
    if needs_approval(CHANGE_STATUS):
        payload = {"id": str(row.pk), "status": request.status, "version": request.version}
        return StatusChange(row, request_approval(request.actor, CHANGE_STATUS, type(row).__name__, row.pk, payload))
    return StatusChange(services.change_status(request.actor, row, request.status, request.version))


# --- many beneficiaries' status ------------------------------------------------------------------


@dataclass(frozen=True)
class BulkStatusRequest:
    actor: User
    params: dict[str, Any]


def check_bulk_status_change(actor: User, plan_id: Any, status: str, *, current_status: str | None = None,
                             custom_filters: list[str] | None = None) -> BulkStatusRequest:
    from core.permissions import require

    require(actor, BENEFICIARY_UPDATE)
    plan = services.get_plan(plan_id)
    filters: dict[str, Any] = {}
    if current_status:
        filters["status"] = current_status
    if custom_filters:
        filters["custom_filters"] = custom_filters
    beneficiaries_for(actor, plan, filters).exists()  # refuse bad filters now
    return BulkStatusRequest(actor, {"plan_id": str(plan.pk), "status": status, "filters": filters})


def do_bulk_status_change(request: BulkStatusRequest) -> Job:
    return start_job(BULK_STATUS, request.params, request.actor)


# --- duplicate reviews ---------------------------------------------------------------------------


def duplicate_groups(actor: User, plan_id: Any, fields: list[str]) -> list[dict[str, Any]]:
    """Beneficiaries of a plan (within the actor's scope) sharing every field of ``fields``."""
    from modules.social_protection import duplicates

    plan = services.get_plan(plan_id)
    return duplicates.summary(beneficiaries_for(actor, plan, {}), plan.type, fields)


@dataclass(frozen=True)
class DuplicateReviewRequest:
    actor: User
    plan_id: Any
    groups: list[dict[str, Any]]
    task_group: str | None


def check_duplicate_review(actor: User, plan_id: Any, fields: list[str],
                           task_group: str | None = None) -> DuplicateReviewRequest:
    from core.permissions import require

    require(actor, BENEFICIARY_UPDATE)
    return DuplicateReviewRequest(actor, plan_id, duplicate_groups(actor, plan_id, fields), task_group)


def do_duplicate_review(request: DuplicateReviewRequest) -> list[ApprovalTask]:
    """One review task per group; approving one suspends all of the group but the earliest."""
    tasks = []
    for group in request.groups:
        keep, *suspend = group["ids"]
        payload = {"plan_id": str(request.plan_id), "keep": keep, "suspend": suspend, "values": group["values"]}
        tasks.append(request_approval(request.actor, RESOLVE_DUPLICATES, "BeneficiaryDuplicates", keep, payload,
                                      task_group=request.task_group))
    return tasks
