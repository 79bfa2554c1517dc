"""Approval services: ask for approval, decide, and run the approved action exactly once.

Locking: :func:`resolve_task` locks the task row (``SELECT … FOR UPDATE``) before it reads
the decisions, so concurrent checkers decide one after the other and the policy is always
evaluated on every decision made so far. The move to ``COMPLETED`` is a conditional
``UPDATE … WHERE status IN ('RECEIVED', 'ACCEPTED')`` and running the action first locks the
row ``WHERE executed_at IS NULL``, so a retried request, a concurrent approver or a job that a
worker restarts cannot run an action twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from core import services
from core.approvals.actions import ApprovalContext, approval_actions, get_action
from core.errors import FieldError, NotFound, PermissionDenied, ServiceError, ValidationFailed
from core.history import acting_as
from core.jobs import JobContext, start_job
from core.loader import get_registry
from core.models import ApprovalDecision, ApprovalTask, TaskGroup, TaskGroupChecker, User
from core.permissions import has_permission, require

log = logging.getLogger("coremis.approvals")

APPROVED = ApprovalDecision.APPROVED
REJECTED = ApprovalDecision.REJECTED
EXECUTE_JOB_KIND = "core.approval_execute"


# --- configuration ---------------------------------------------------------------------------


def configured_task_group(action: str) -> str | None:
    """The code of the task group ``modules_config.json`` routes ``action`` to, if any."""
    module = action.split(".", 1)[0]
    registry = get_registry()
    if not registry.is_enabled(module):
        return None
    routes: dict[str, str] = registry.config(module).get("approvals") or {}
    return routes.get(action)


def needs_approval(action: str) -> bool:
    """Whether this deployment puts ``action`` behind a checker's approval."""
    return configured_task_group(action) is not None


def approval_config_problems() -> list[str]:
    """Routes in ``modules_config.json`` that cannot work: an action no enabled module
    declares, or a task group that does not exist (yet). Empty when all is well."""
    problems: list[str] = []
    declared = approval_actions()
    for module in get_registry().modules:
        for action, code in (module.config.get("approvals") or {}).items():
            where = f"modules_config.json {module.name}.approvals['{action}']"
            if not action.startswith(f"{module.name}."):
                problems.append(f"{where}: the action belongs to another module; "
                                f"move it to that module's section")
            elif action not in declared:
                problems.append(f"{where}: no enabled module declares this action")
            elif not TaskGroup.objects.filter(code=code).exists():
                problems.append(f"{where}: task group '{code}' does not exist; create it "
                                f"with createTaskGroup or correct the code")
    return problems


# --- task groups -----------------------------------------------------------------------------


def _check_group(code: str, policy: str, required: int | None, checker_ids: list[Any] | None,
                 current_checkers: int, exclude: Any = None) -> tuple[list[FieldError], list[User]]:
    errors: list[FieldError] = []
    code = (code or "").strip()
    if not code:
        errors.append(FieldError("code", "REQUIRED", "The task group needs a code."))
    elif len(code) > 100:
        errors.append(FieldError("code", "TOO_LONG", "The code is at most 100 characters."))
    elif TaskGroup.objects.filter(code=code).exclude(pk=exclude).exists():
        errors.append(FieldError("code", "TASK_GROUP_CODE_TAKEN",
                                 f"Another task group already has the code '{code}'."))
    if policy not in dict(TaskGroup.POLICIES):
        errors.append(FieldError("completionPolicy", "INVALID_COMPLETION_POLICY",
                                 f"'{policy}' is not a completion policy (ANY, ALL or N_OF)."))
    users: list[User] = []
    if checker_ids is not None:
        wanted = {str(i) for i in checker_ids}
        users = list(User.objects.filter(pk__in=wanted, is_active=True))
        missing = wanted - {str(u.pk) for u in users}
        if missing:
            errors.append(FieldError("userIds", "CHECKER_NOT_FOUND",
                                     f"Unknown or deactivated users: {', '.join(sorted(missing))}."))
    checkers = len(users) if checker_ids is not None else current_checkers
    if policy == TaskGroup.N_OF:
        if required is None or required < 1:
            errors.append(FieldError("requiredApprovals", "REQUIRED",
                                     "An N_OF group needs requiredApprovals of at least 1."))
        elif required > checkers:
            errors.append(FieldError(
                "requiredApprovals", "NOT_ENOUGH_CHECKERS",
                f"The group needs {required} approvals but has only {checkers} checker(s).",
            ))
    elif required is not None:
        errors.append(FieldError("requiredApprovals", "NOT_ALLOWED",
                                 "requiredApprovals only applies to the N_OF policy."))
    return errors, users


def _set_checkers(group: TaskGroup, users: list[User]) -> None:
    TaskGroupChecker.objects.filter(task_group=group).exclude(user__in=users).delete()
    TaskGroupChecker.objects.bulk_create(
        [TaskGroupChecker(task_group=group, user=u) for u in users], ignore_conflicts=True
    )


def create_task_group(user: Any, *, code: str, completion_policy: str, name: str = "",
                      required_approvals: int | None = None,
                      checker_ids: Iterable[Any] = ()) -> TaskGroup:
    require(user, "core.task_group.manage")
    errors, checkers = _check_group(code, completion_policy, required_approvals,
                                    list(checker_ids), current_checkers=0)
    if errors:
        raise ValidationFailed(errors)
    group = services.create(TaskGroup(
        code=code.strip(), name=(name or "").strip(), completion_policy=completion_policy,
        required_approvals=required_approvals,
    ), user)
    _set_checkers(group, checkers)
    return group


def update_task_group(user: Any, group_id: Any, *, version: int | None = None,
                      code: str | None = None, name: str | None = None,
                      completion_policy: str | None = None, required_approvals: Any = ...,
                      checker_ids: Iterable[Any] | None = None) -> TaskGroup:
    """Change a group; ``checker_ids`` replaces the checkers. Leaving ``required_approvals``
    out keeps it for an ``N_OF`` group and clears it when the policy becomes ANY or ALL.

    Open tasks of the group are evaluated against the new checkers at their next decision.
    """
    require(user, "core.task_group.manage")
    group = TaskGroup.objects.filter(pk=group_id).first()
    if group is None:
        raise NotFound("Task group", group_id)
    policy = completion_policy or group.completion_policy
    if required_approvals is ...:
        required_approvals = group.required_approvals if policy == TaskGroup.N_OF else None
    ids = None if checker_ids is None else list(checker_ids)
    errors, checkers = _check_group(
        group.code if code is None else code, policy, required_approvals, ids,
        current_checkers=group.memberships.count(), exclude=group.pk,
    )
    if errors:
        raise ValidationFailed(errors)
    if code is not None:
        group.code = code.strip()
    if name is not None:
        group.name = name.strip()
    group.completion_policy, group.required_approvals = policy, required_approvals
    services.save_versioned(group, user, ["code", "name", "completion_policy", "required_approvals"],
                            version)
    if ids is not None:
        _set_checkers(group, checkers)
    return group


# --- asking for approval ---------------------------------------------------------------------


def _eligible_checkers(group: TaskGroup, maker_id: Any) -> set[Any]:
    """Checkers who can decide on a task of ``maker_id``: active members other than the maker."""
    return set(
        TaskGroupChecker.objects.filter(task_group=group, user__is_active=True)
        .exclude(user_id=maker_id).values_list("user_id", flat=True)
    )


def _approvals_needed(group: TaskGroup, eligible: set[Any]) -> int:
    if group.completion_policy == TaskGroup.ALL:
        return len(eligible)
    if group.completion_policy == TaskGroup.N_OF:
        return group.required_approvals or 1
    return 1


def request_approval(user: Any, action: str, entity_type: str, entity_id: Any,
                     data: dict[str, Any], *, task_group: str | None = None) -> ApprovalTask:
    """Record that ``user`` (the maker) proposes ``action`` on an entity with ``data``.

    The task goes to ``task_group`` (a code) or else to the group ``modules_config.json``
    routes the action to. Refused when the action is unknown or not routed, the group does
    not exist, the group has too few checkers besides the maker to ever complete, or the
    same action on the same entity is already waiting for approval.
    """
    module, _ = get_action(action)
    code = task_group or configured_task_group(action)
    if code is None:
        raise ServiceError(
            "APPROVAL_NOT_CONFIGURED",
            f"The action '{action}' is not routed to a task group. Add it to the 'approvals' "
            f"section of '{module}' in modules_config.json.", "action",
        )
    group = TaskGroup.objects.filter(code=code).first()
    if group is None:
        raise ServiceError(
            "TASK_GROUP_MISSING",
            f"The action '{action}' needs approval by the task group '{code}', which does not "
            f"exist. Create it (createTaskGroup) or correct '{module}.approvals' in "
            "modules_config.json.", "taskGroup",
        )
    maker_id = getattr(user, "pk", None)
    eligible = _eligible_checkers(group, maker_id)
    needed = _approvals_needed(group, eligible)
    if not eligible or len(eligible) < needed:
        raise ServiceError(
            "NO_ELIGIBLE_CHECKERS",
            f"The task group '{group.code}' has {len(eligible)} active checker(s) besides you, "
            f"and {needed or 1} approval(s) are needed. Add checkers to the group first.",
            "taskGroup",
        )
    key = {"action": action, "entity_type": entity_type, "entity_id": str(entity_id)}
    pending = ApprovalTask.objects.filter(status__in=ApprovalTask.OPEN_STATUSES, **key)
    if pending.exists():
        raise _already_pending(action)
    task = ApprovalTask(module=module, data=data, maker_id=maker_id, task_group=group, **key)
    try:
        with transaction.atomic():
            services.create(task, user)
    except IntegrityError:
        # A concurrent request for the same change won the race (the partial unique index).
        if pending.exists():
            raise _already_pending(action) from None
        raise
    return task


def _already_pending(action: str) -> ServiceError:
    return ServiceError("APPROVAL_PENDING",
                        f"A '{action}' of this record is already waiting for approval.", "entityId")


# --- deciding --------------------------------------------------------------------------------


def visible_tasks(queryset: QuerySet, user: Any) -> QuerySet:
    """Tasks ``user`` made or may decide on (every task with ``core.task.view_all``)."""
    if has_permission(user, "core.task.view_all"):
        return queryset
    groups = TaskGroupChecker.objects.filter(user=user).values("task_group")
    return queryset.filter(Q(maker=user) | Q(task_group__in=groups))


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


def resolve_task(user: Any, task_id: Any, decision: str, comment: str = "") -> ApprovalTask:
    """Record ``user``'s decision (``APPROVED`` or ``REJECTED``) and apply the group's policy.

    A rejection fails the task and nothing runs. When the policy is met the task completes and
    its action runs once: inside this transaction, or in a ``core.approval_execute`` job when
    the action is large. An action that fails leaves the task ``ERROR``; the decision stands.
    """
    if user is None:
        raise PermissionDenied("Only a checker of the task's group can decide on it.")
    require(user, "core.task.resolve")
    if decision not in (APPROVED, REJECTED):
        raise ServiceError("INVALID_DECISION",
                           f"'{decision}' is not a decision; send APPROVED or REJECTED.",
                           "businessStatus")
    with transaction.atomic():
        task = ApprovalTask.objects.select_for_update().filter(pk=task_id).first()
        if task is None:
            raise NotFound("Task", task_id)
        if task.maker_id is not None and task.maker_id == user.pk:
            raise ServiceError("SELF_APPROVAL", "You made this request; another checker must "
                                                "decide on it.", "businessStatus")
        if not TaskGroupChecker.objects.filter(task_group_id=task.task_group_id, user=user).exists():
            raise ServiceError("NOT_A_CHECKER",
                               "You are not a checker of the task group this task is assigned to.",
                               "id")
        if not task.is_open:
            raise ServiceError("TASK_CLOSED",
                               f"This task is already {task.status}; decisions are closed.", "id")
        _, action = get_action(task.action)
        if action.permission and not has_permission(user, action.permission):
            raise PermissionDenied(f"Deciding on '{task.action}' requires the permission "
                                   f"'{action.permission}'.")
        if action.check_decider is not None:
            action.check_decider(task, user)
        if ApprovalDecision.objects.filter(task=task, checker=user).exists():
            raise ServiceError("ALREADY_DECIDED", "You have already decided on this task.", "id")
        ApprovalDecision.objects.create(task=task, checker=user, decision=decision,
                                        comment=comment or "")

        decisions = list(task.decisions.values_list("checker_id", "decision"))
        group = TaskGroup.all_objects.get(pk=task.task_group_id)
        approvers = {checker for checker, d in decisions if d == APPROVED}
        if any(d == REJECTED for _, d in decisions):
            _move(task, user, ApprovalTask.FAILED, ApprovalTask.OPEN_STATUSES)
        elif _policy_met(group, approvers, _eligible_checkers(group, task.maker_id)):
            if _move(task, user, ApprovalTask.COMPLETED, ApprovalTask.OPEN_STATUSES):
                _run(task, user, action.is_large(task))
        else:
            _move(task, user, ApprovalTask.ACCEPTED, [ApprovalTask.RECEIVED])
    task.refresh_from_db()
    return task


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
        message = exc.message if isinstance(exc, ServiceError) else f"Internal error: {exc!r}"
        with acting_as(approver, **context_ids):
            ApprovalTask.objects.filter(
                pk=task_id, status=ApprovalTask.COMPLETED, executed_at__isnull=True
            ).update(status=ApprovalTask.ERROR, error=message, version=F("version") + 1,
                     date_updated=timezone.now(), user_updated=getattr(approver, "pk", None))
        raise


def run_approved_task(ctx: JobContext) -> dict[str, Any]:
    """Handler of ``core.approval_execute`` jobs: run a large approved action."""
    task_id = ctx.params["task_id"]
    if not ApprovalTask.all_objects.filter(pk=task_id).exists():
        raise ServiceError("NOT_FOUND", f"Approval task {task_id} does not exist.")
    result = _execute(task_id, ctx.user, ctx)
    return {"task_id": task_id, "result": result}
