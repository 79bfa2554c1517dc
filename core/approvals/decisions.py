"""Deciding on approval tasks, and running an approved action exactly once.

Locking: :func:`do_resolve_task` locks the task row (``SELECT … FOR UPDATE``) before it reads
the decisions, so concurrent checkers decide one after the other and the policy is always
evaluated on every decision made so far. The move to ``COMPLETED`` is a conditional
``UPDATE … WHERE status IN ('RECEIVED', 'ACCEPTED')`` and running the action first locks the
row ``WHERE executed_at IS NULL``, so a retried request, a concurrent approver or a job that a
worker restarts cannot run an action twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from core.approvals.actions import ApprovalAction, ApprovalContext, approval_actions, get_action
from core.approvals.errors import ApprovalErrorCode
from core.approvals.requests import _approvals_needed, _eligible_checkers
from core.errors import CoreErrorCode, NotFound, PermissionDenied, ServiceError
from core.history import acting_as
from core.jobs import JobContext, start_job
from core.models import ApprovalDecision, ApprovalTask, TaskGroup, TaskGroupChecker, User
from core.permissions import TASK_RESOLVE, TASK_VIEW_ALL, has_permission, require

log = logging.getLogger("coremis.approvals")

APPROVED = ApprovalDecision.APPROVED
REJECTED = ApprovalDecision.REJECTED
EXECUTE_JOB_KIND = "core.approval_execute"


def visible_tasks(queryset: QuerySet, user: Any) -> QuerySet:
    """Tasks ``user`` made or may decide on (every task with ``core.task.view_all``).

    A checker sees the tasks of their groups whose entity their location scope admits: each
    action that has an ``in_scope`` filter narrows its own tasks; tasks of the others are seen
    by every checker of the group."""
    if has_permission(user, TASK_VIEW_ALL):
        return queryset
    groups = TaskGroupChecker.objects.filter(user=user).values("task_group")
    scoped = {name: action.in_scope for name, (_, action) in approval_actions().items()
              if action.in_scope is not None}
    admitted = ~Q(action__in=list(scoped))
    for name, in_scope in scoped.items():
        admitted |= Q(action=name) & in_scope(user)
    return queryset.filter(Q(maker=user) | (Q(task_group__in=groups) & admitted))


def _policy_met(group: TaskGroup, approvers: set[Any], eligible: set[Any]) -> bool:
    if group.completion_policy == TaskGroup.ALL:
        return bool(eligible) and eligible <= approvers
    return len(approvers) >= _approvals_needed(group, eligible)


def _move(task: ApprovalTask, user: Any, new_status: str, from_statuses: Iterable[str]) -> bool:
    """Conditional status change: true only for the one caller that made it."""
    moved = ApprovalTask.objects.filter(pk=task.pk, status__in=list(from_statuses)).update(
        status=new_status, version=F("version") + 1, date_updated=timezone.now(),
        user_updated=getattr(user, "pk", None),
    )
    return moved == 1


@dataclass(frozen=True)
class ResolveRequest:
    actor: User
    task: ApprovalTask
    action: ApprovalAction
    decision: str
    comment: str


def _refuse_decision(task: ApprovalTask, actor: User) -> None:
    """What may have changed between the check and the write (another checker closed the
    task, the same checker decided in another tab)."""
    if not task.is_open:
        raise ServiceError(ApprovalErrorCode.TASK_CLOSED,
                           f"This task is already {task.status}; decisions are closed.", "id")
    if ApprovalDecision.objects.filter(task=task, checker=actor).exists():
        raise ServiceError(ApprovalErrorCode.ALREADY_DECIDED, "You have already decided on this task.", "id")


def check_resolve_task(actor: User, task_id: Any, decision: str, comment: str = "") -> ResolveRequest:
    """Whether ``actor`` may record ``decision`` (``APPROVED`` or ``REJECTED``) on the task: a
    checker of its group other than its maker, holding the action's own permission and
    passing its ``check_decider``."""
    require(actor, TASK_RESOLVE)
    if decision not in (APPROVED, REJECTED):
        raise ServiceError(ApprovalErrorCode.INVALID_DECISION,
                           f"'{decision}' is not a decision; send APPROVED or REJECTED.", "businessStatus")
    task = ApprovalTask.objects.filter(pk=task_id).first()
    if task is None:
        raise NotFound("Task", task_id)
    _, action = get_action(task.action)
    # A task whose entity lies outside the checker's scope is not theirs to see, let alone decide.
    if action.in_scope is not None and not ApprovalTask.objects.filter(Q(pk=task.pk) & action.in_scope(actor)).exists():
        raise NotFound("Task", task_id)
    if task.maker_id is not None and task.maker_id == actor.pk:
        raise ServiceError(ApprovalErrorCode.SELF_APPROVAL,
                           "You made this request; another checker must decide on it.", "businessStatus")
    if not TaskGroupChecker.objects.filter(task_group_id=task.task_group_id, user=actor).exists():
        raise ServiceError(ApprovalErrorCode.NOT_A_CHECKER,
                           "You are not a checker of the task group this task is assigned to.", "id")
    _refuse_decision(task, actor)
    if action.permission and not has_permission(actor, action.permission):
        raise PermissionDenied(f"Deciding on '{task.action}' requires the permission '{action.permission}'.")
    if action.check_decider is not None:
        action.check_decider(task, actor)
    return ResolveRequest(actor, task, action, decision, comment or "")


def do_resolve_task(request: ResolveRequest) -> ApprovalTask:
    """Record the decision and apply the group's policy.

    A rejection fails the task and nothing runs. When the policy is met the task completes and
    its action runs once: inside this transaction, or in a ``core.approval_execute`` job (on
    commit) when the action is large. An action that fails leaves the task ``ERROR``; the
    decision stands.
    """
    user, action = request.actor, request.action
    with transaction.atomic():
        task = ApprovalTask.objects.select_for_update().get(pk=request.task.pk)
        _refuse_decision(task, user)
        ApprovalDecision.objects.create(task=task, checker=user, decision=request.decision, comment=request.comment)

        decisions = list(task.decisions.values_list("checker_id", "decision"))
        group = TaskGroup.all_objects.get(pk=task.task_group_id)
        approvers = {checker for checker, d in decisions if d == APPROVED}
        if any(d == REJECTED for _, d in decisions):
            if _move(task, user, ApprovalTask.FAILED, ApprovalTask.OPEN_STATUSES) and action.rejected is not None:
                action.rejected(task, user, request.comment)
        elif _policy_met(group, approvers, _eligible_checkers(group, task.maker_id)):
            if _move(task, user, ApprovalTask.COMPLETED, ApprovalTask.OPEN_STATUSES):
                _run(task, user, action.is_large(task))
        # else the task stays ACCEPTED: its decisions say who has approved so far
    task.refresh_from_db()
    return task


def resolve_task(user: User, task_id: Any, decision: str, comment: str = "") -> ApprovalTask:
    """Both steps at once (scripts and tests)."""
    return do_resolve_task(check_resolve_task(user, task_id, decision, comment))


# --- running the approved action -------------------------------------------------------------


def _run(task: ApprovalTask, approver: Any, large: bool) -> None:
    if large:
        job = start_job(EXECUTE_JOB_KIND, {"task_id": str(task.pk)}, approver)
        ApprovalTask.objects.filter(pk=task.pk).update(job=job)
        return
    try:
        _execute(task.pk, approver, None)
    except ServiceError:
        pass  # the task is ERROR with the message; the decision that completed it stands
    except Exception:
        log.exception("approved action crashed", extra={"task": str(task.pk), "action": task.action})


def _execute(task_id: Any, approver: Any, job: JobContext | None) -> Any:
    """Run the action of a COMPLETED task that has not run yet, in one transaction.

    A failure rolls back everything the action wrote, marks the task ERROR and re-raises.
    Returns the action's result, or ``None`` when the action had already run.
    """
    context_ids = {"approval_task": str(task_id)}
    if job is not None:
        context_ids["job"] = str(job.job.pk)
    try:
        with acting_as(approver, **context_ids):
            # FOR UPDATE waits for a concurrent runner to commit, then re-reads executed_at.
            task = (ApprovalTask.objects.select_for_update()
                    .filter(pk=task_id, status=ApprovalTask.COMPLETED, executed_at__isnull=True)
                    .first())
            if task is None:
                return None
            _, action = get_action(task.action)
            maker = User.objects.filter(pk=task.maker_id).first() if task.maker_id else None
            context = ApprovalContext(task=task, user=maker, approver=approver, job=job)
            # The change is the maker's; the approver is in the history context.
            with acting_as(maker, approved_by=str(getattr(approver, "pk", "")), **context_ids):
                result = action.execute(task, context)
            ApprovalTask.objects.filter(pk=task.pk).update(
                executed_at=timezone.now(), result=result, version=F("version") + 1,
                date_updated=timezone.now(), user_updated=getattr(approver, "pk", None),
            )
            return result
    except Exception as exc:
        # An unexpected crash is logged with its trace (``_run``, the job); the task and the
        # checker get a sentence, never the exception's type or text.
        message = exc.message if isinstance(exc, ServiceError) else (
            f"The approved action '{_action_of(task_id)}' failed with an internal error; "
            f"nothing of it was kept. The error is logged with the task id {task_id}.")
        with acting_as(approver, **context_ids):
            ApprovalTask.objects.filter(
                pk=task_id, status=ApprovalTask.COMPLETED, executed_at__isnull=True
            ).update(status=ApprovalTask.ERROR, error=message, version=F("version") + 1,
                     date_updated=timezone.now(), user_updated=getattr(approver, "pk", None))
        raise


def _action_of(task_id: Any) -> str:
    return str(ApprovalTask.all_objects.filter(pk=task_id).values_list("action", flat=True).first() or "?")


def action_failures(task: ApprovalTask) -> list[dict[str, Any]]:
    """What the checker is told when their decision completed ``task`` but its action failed
    (the task is ERROR): a failure, not a success, while the decision itself stands."""
    if task.status != ApprovalTask.ERROR:
        return []
    return [{"field": None, "code": ApprovalErrorCode.ACTION_FAILED,
             "message": f"Your decision was recorded, but the approved action failed: {task.error}"}]


def run_approved_task(ctx: JobContext) -> dict[str, Any]:
    """Handler of ``core.approval_execute`` jobs: run a large approved action."""
    task_id = ctx.params["task_id"]
    if not ApprovalTask.all_objects.filter(pk=task_id).exists():
        raise ServiceError(CoreErrorCode.NOT_FOUND, f"Approval task {task_id} does not exist.")
    result = _execute(task_id, ctx.user, ctx)
    return {"task_id": task_id, "result": result}
