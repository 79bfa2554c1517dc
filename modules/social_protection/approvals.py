"""Actions of this module that deployers can put behind maker-checker approval.

Each use case's ``do_*`` (``use_cases.py``, where the action names are declared once) checks
``needs_approval`` first: if the action is routed to a task group it records an approval task
with the proposed data and changes nothing; the action below runs once the group's checkers
approve, as the maker.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from core.approvals import ApprovalAction, ApprovalContext
from core.approvals.actions import tasks_about
from core.errors import NotFound
from modules.social_protection.use_cases import (
    CHANGE_STATUS,
    CLOSE_PLAN,
    ENROLL,
    RESOLVE_DUPLICATES,
)


def _enroll(task: Any, ctx: ApprovalContext) -> Any:
    from modules.social_protection.jobs import enroll_all

    return enroll_all(task.data, ctx.user, ctx.progress)


def _change_status(task: Any, ctx: ApprovalContext) -> Any:
    from modules.social_protection import services
    from modules.social_protection.filters import scoped_beneficiaries
    from modules.social_protection.models import Beneficiary, GroupBeneficiary, PlanType

    # Within the maker's scope, as when they proposed it (a scope may have shrunk since).
    for model, plan_type in ((Beneficiary, PlanType.INDIVIDUAL), (GroupBeneficiary, PlanType.GROUP)):
        row = scoped_beneficiaries(ctx.user, model.objects.filter(pk=task.data["id"]), plan_type).first()
        if row is not None:
            services.change_status(ctx.user, row, task.data["status"], task.data.get("version"))
            return {"id": str(row.pk), "status": row.status}
    raise NotFound("Beneficiary", task.data["id"])


def _close_plan(task: Any, ctx: ApprovalContext) -> Any:
    from modules.social_protection import services

    result = services.close_plan(ctx.user, task.data["id"], task.data.get("version"))
    return {"graduated": result["graduated"]}


def _resolve_duplicates(task: Any, ctx: ApprovalContext) -> Any:
    """Approving a duplicate review suspends every member of the group but the one kept."""
    from modules.social_protection import services
    from modules.social_protection.filters import scoped_beneficiaries

    plan = services.get_plan(task.data["plan_id"])
    rows = services.beneficiary_model(plan).objects.filter(benefit_plan=plan, pk__in=task.data["suspend"])
    # Only those still in the maker's scope, as when the review was proposed.
    return services.bulk_change_status(ctx.user, plan, scoped_beneficiaries(ctx.user, rows, plan.type), "SUSPENDED")


def _national_checker(task: Any, checker: Any) -> None:
    from modules.location.services import require_national

    require_national(checker, "Approving the closure of a benefit plan")


def _describe_enroll(task: Any) -> str:
    data = task.data
    return f"Enroll eligible people as {data.get('status', 'POTENTIAL')} in plan {data.get('plan_id')}"


def _status_changes_in_scope(user: Any) -> Q:
    """A checker sees a proposed status change of a beneficiary who lives in their locations."""
    from modules.location.services import scope_paths
    from modules.social_protection.filters import scoped_beneficiaries
    from modules.social_protection.models import Beneficiary, GroupBeneficiary, PlanType

    if scope_paths(user) is None:
        return Q()
    admitted = Q(pk__in=[])
    for model, plan_type in ((Beneficiary, PlanType.INDIVIDUAL), (GroupBeneficiary, PlanType.GROUP)):
        admitted |= tasks_about(scoped_beneficiaries(user, model.objects.all(), plan_type))
    return admitted


ACTIONS: dict[str, ApprovalAction] = {
    ENROLL: ApprovalAction(execute=_enroll, large=True, describe=_describe_enroll),
    CHANGE_STATUS: ApprovalAction(execute=_change_status, in_scope=_status_changes_in_scope),
    CLOSE_PLAN: ApprovalAction(execute=_close_plan, large=True, check_decider=_national_checker),
    RESOLVE_DUPLICATES: ApprovalAction(execute=_resolve_duplicates),
}
