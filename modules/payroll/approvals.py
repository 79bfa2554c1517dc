"""``payroll.approve`` behind maker-checker approval: the payroll waits in PENDING_APPROVAL
until the task group's checkers approve; a rejected task rejects the payroll."""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from core.approvals import ApprovalAction, ApprovalContext
from core.approvals.actions import tasks_about
from modules.payroll.permissions import PAYROLL_APPROVE, PAYROLL_CLOSE

# The approval actions (the keys of the ``approvals`` configuration); the permissions their
# checkers need are other strings (see permissions.py).
APPROVE = "payroll.approve"
RECONCILE = "payroll.reconcile"


def _approve(task: Any, ctx: ApprovalContext) -> Any:
    from modules.payroll.services import lifecycle

    # The checker's approval is the payroll's approval (they were checked when deciding); the
    # change is attributed to the maker as the core does for every approved action, with the
    # approver in the history context.
    payroll = lifecycle.mark_approved(ctx.user, task.data["id"])
    return {"id": str(payroll.pk), "status": payroll.status}


def _check_checker(task: Any, checker: Any) -> None:
    """A checker approves every payment of the payroll at once, so they need all of them in
    their scope, as anyone approving, sending or rejecting it does."""
    from modules.payroll.services import lifecycle

    lifecycle.check_may_approve(checker, task.data["id"])


def _describe(task: Any) -> str:
    data = task.data
    return f"Approve payroll {data.get('name')}: {data.get('count')} payments totalling {data.get('sum')} {data.get('currency')}"


def _reconcile(task: Any, ctx: ApprovalContext) -> Any:
    from modules.payroll.services import lifecycle

    # As the maker, within their rights and scope as when they asked; the rules are checked again.
    payroll = lifecycle.close_payroll(ctx.user, task.data["id"])
    return {"id": str(payroll.pk), "status": payroll.status}


def _check_closer(task: Any, checker: Any) -> None:
    """A checker closes every payment of the payroll at once: all of them in their scope."""
    from modules.payroll.services import lifecycle
    from modules.payroll.services.selectors import get_payroll

    lifecycle.require_whole_payroll(checker, get_payroll(checker, task.data["id"]), "Closing this payroll")


def _describe_close(task: Any) -> str:
    data = task.data
    return f"Close (reconcile) payroll {data.get('name')}: {data.get('count')} payments totalling {data.get('sum')}"


def _tasks_in_scope(user: Any) -> Q:
    """A checker sees a payroll's task when they may see the payroll: some of its payments lie
    in their locations (deciding needs all of them, ``check_decider``)."""
    from modules.location.services import scope_paths
    from modules.payroll.models import Payroll
    from modules.payroll.services.selectors import visible_payrolls

    if scope_paths(user) is None:
        return Q()
    return tasks_about(visible_payrolls(user, Payroll.all_objects.all()))


ACTIONS: dict[str, ApprovalAction] = {
    RECONCILE: ApprovalAction(execute=_reconcile, describe=_describe_close, permission=PAYROLL_CLOSE,
                              check_decider=_check_closer, in_scope=_tasks_in_scope,
                              source="payroll_reconciliation"),
    APPROVE: ApprovalAction(execute=_approve, describe=_describe, permission=PAYROLL_APPROVE,
                            check_decider=_check_checker, in_scope=_tasks_in_scope),
}
