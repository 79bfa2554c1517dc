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
from dataclasses import dataclass
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
from core.models import (
    ApprovalDecision,
    ApprovalRoute,
    ApprovalTask,
    TaskGroup,
    TaskGroupChecker,
    User,
)
from core.permissions import has_permission, require

log = logging.getLogger("coremis.approvals")

APPROVED = ApprovalDecision.APPROVED
REJECTED = ApprovalDecision.REJECTED
EXECUTE_JOB_KIND = "core.approval_execute"


# --- routes ----------------------------------------------------------------------------------
#
# Where an action's approvals go. ``modules_config.json`` seeds the routes (each module's
# ``approvals`` section); a route set at run time (``set_approval_route``, an ``ApprovalRoute``
# row, in history) overrides it until it is set again, so a deployment routes or unroutes an
# action without editing a file or restarting.

CONFIG = "CONFIG"
RUNTIME = "RUNTIME"


def _config_route(action: str) -> str | None:
    module = action.split(".", 1)[0]
    registry = get_registry()
    if not registry.is_enabled(module):
        return None
    routes: dict[str, str] = registry.config(module).get("approvals") or {}
    return routes.get(action)


def _runtime_route(action: str) -> ApprovalRoute | None:
    return ApprovalRoute.objects.select_related("task_group").filter(action=action).first()


def configured_task_group(action: str) -> str | None:
    """The code of the task group that decides on ``action``, if it needs approval: the route
    set at run time, else the one in ``modules_config.json``."""
    if not get_registry().is_enabled(action.split(".", 1)[0]):
        return None
    route = _runtime_route(action)
    if route is not None:
        return route.task_group.code if route.task_group is not None else None
    return _config_route(action)


def needs_approval(action: str) -> bool:
    """Whether this deployment puts ``action`` behind a checker's approval."""
    return configured_task_group(action) is not None


@dataclass(frozen=True)
class Route:
    """Where a declared action's approvals go now, and who said so."""

    action: str
    module: str
    task_group: TaskGroup | None
    task_group_code: str | None
    source: str | None  # RUNTIME, CONFIG, or None when neither routes it
    route: ApprovalRoute | None


def approval_routes() -> list[Route]:
    """Every declared action with its current route (one query for the run-time routes)."""
    rows = {r.action: r for r in ApprovalRoute.objects.select_related("task_group", "user_updated")}
    groups = {g.code: g for g in TaskGroup.objects.all()}
    found = []
    for action, (module, _) in sorted(approval_actions().items()):
        row = rows.get(action)
        if row is not None:
            group = row.task_group
            found.append(Route(action, module, group, group.code if group else None, RUNTIME, row))
        else:
            code = _config_route(action)
            found.append(Route(action, module, groups.get(code) if code else None, code,
                               CONFIG if code else None, None))
    return found


def set_approval_route(user: Any, action: str, task_group_code: str | None, reason: str) -> ApprovalRoute:
    """Route ``action`` to the task group ``task_group_code``, or with ``None`` let it run
    without approval, from now on; the change (with ``reason``) is in history.

    The group must exist and have an active checker, so a route never makes an action
    impossible to approve.
    """
    require(user, "core.approval_route.manage")
    get_action(action)
    errors: list[FieldError] = []
    if not (reason or "").strip():
        errors.append(FieldError("reason", "REQUIRED", "Say why the route changes; it is kept in history."))
    group = None
    if task_group_code is not None:
        group = TaskGroup.objects.filter(code=task_group_code.strip()).first()
        if group is None:
            errors.append(FieldError("taskGroupCode", "TASK_GROUP_MISSING",
                                     f"No task group has the code '{task_group_code.strip()[:100]}'."))
        elif not TaskGroupChecker.objects.filter(task_group=group, user__is_active=True).exists():
            errors.append(FieldError("taskGroupCode", "NO_ELIGIBLE_CHECKERS",
                                     f"The task group '{group.code}' has no active checker; add one first."))
    if errors:
        raise ValidationFailed(errors)
    try:
        with transaction.atomic():
            route = ApprovalRoute.objects.select_for_update().filter(action=action).first()
            if route is None:
                return services.create(ApprovalRoute(action=action, task_group=group, reason=reason.strip()), user)
            route.task_group, route.reason = group, reason.strip()
            return services.save_versioned(route, user, ["task_group", "reason"])
    except IntegrityError as exc:  # two first routes of the same action at once
        raise ServiceError("ROUTE_CHANGED", "Someone set this route at the same moment; reload it and try "
                                            "again.", "action") from exc


def approval_config_problems() -> list[str]:
    """Routes that cannot work: a section of ``modules_config.json`` routing an action no
    enabled module declares, or an action routed to a task group that does not exist (yet).
    Empty when all is well."""
    problems: list[str] = []
    declared = approval_actions()
    runtime = {r.action: r for r in ApprovalRoute.objects.select_related("task_group")}
    for module in get_registry().modules:
        for action, code in (module.config.get("approvals") or {}).items():
            where = f"modules_config.json {module.name}.approvals['{action}']"
            if not action.startswith(f"{module.name}."):
                problems.append(f"{where}: the action belongs to another module; "
                                f"move it to that module's section")
            elif action not in declared:
                problems.append(f"{where}: no enabled module declares this action")
            elif action not in runtime and not TaskGroup.objects.filter(code=code).exists():
                problems.append(f"{where}: task group '{code}' does not exist; create it "
                                f"with createTaskGroup or correct the code")
    for action, route in sorted(runtime.items()):
        if route.task_group is not None and route.task_group.is_deleted:
            problems.append(f"approval route of '{action}': task group '{route.task_group.code}' was deleted; "
                            "route it again with setApprovalRoute")
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


def check_can_request(user: Any, action: str, *, task_group: str | None = None) -> tuple[str, TaskGroup]:
    """The module and task group a request for ``action`` by ``user`` would go to, or the
    refusal :func:`request_approval` would give, so a caller can refuse before starting work
    (a payroll's generation job) that would end in asking for approval."""
    module, _ = get_action(action)
    code = task_group or configured_task_group(action)
    if code is None:
        raise ServiceError(
            "APPROVAL_NOT_CONFIGURED",
            f"The action '{action}' is not routed to a task group. Route it with setApprovalRoute or in the "
            f"'approvals' section of '{module}' in modules_config.json.", "action",
        )
    group = TaskGroup.objects.filter(code=code).first()
    if group is None:
        raise ServiceError(
            "TASK_GROUP_MISSING",
            f"The action '{action}' needs approval by the task group '{code}', which does not "
            f"exist. Create it (createTaskGroup), or route the action elsewhere (setApprovalRoute or "
            f"'{module}.approvals' in modules_config.json).", "taskGroup",
        )
    eligible = _eligible_checkers(group, getattr(user, "pk", None))
    needed = _approvals_needed(group, eligible)
    if not eligible or len(eligible) < needed:
        raise ServiceError(
            "NO_ELIGIBLE_CHECKERS",
            f"The task group '{group.code}' has {len(eligible)} active checker(s) besides you, "
            f"and {needed or 1} approval(s) are needed. Add checkers to the group first.",
            "taskGroup",
        )
    return module, group


def request_approval(user: Any, action: str, entity_type: str, entity_id: Any,
                     data: dict[str, Any], *, task_group: str | None = None) -> ApprovalTask:
    """Record that ``user`` (the maker) proposes ``action`` on an entity with ``data``.

    The task goes to ``task_group`` (a code) or else to the group ``modules_config.json``
    routes the action to. Refused when the action is unknown or not routed, the group does
    not exist, the group has too few checkers besides the maker to ever complete, or the
    same action on the same entity is already waiting for approval.
    """
    module, group = check_can_request(user, action, task_group=task_group)
    maker_id = getattr(user, "pk", None)
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
