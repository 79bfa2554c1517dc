"""Asking for approval: what a module calls where a routed action would otherwise run.

A module's ``do_*`` use case calls :func:`request_approval` (after :func:`needs_approval`);
its ``check_*`` may call :func:`check_can_request` to refuse before starting long work that
would end in asking. Mutations never call these themselves (``core/README.md``).
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from core import services
from core.actors import checked_actor
from core.approvals.actions import get_action
from core.approvals.routes import configured_task_group
from core.errors import CoreErrorCode, ServiceError
from core.models import ApprovalTask, TaskGroup, TaskGroupChecker


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
            CoreErrorCode.APPROVAL_NOT_CONFIGURED,
            f"The action '{action}' is not routed to a task group. Route it with setApprovalRoute or in the "
            f"'approvals' section of '{module}' in modules_config.json.", "action",
        )
    group = TaskGroup.objects.filter(code=code).first()
    if group is None:
        raise ServiceError(
            CoreErrorCode.TASK_GROUP_MISSING,
            f"The action '{action}' needs approval by the task group '{code}', which does not "
            f"exist. Create it (createTaskGroup), or route the action elsewhere (setApprovalRoute or "
            f"'{module}.approvals' in modules_config.json).", "taskGroup",
        )
    eligible = _eligible_checkers(group, getattr(user, "pk", None))
    needed = _approvals_needed(group, eligible)
    if not eligible or len(eligible) < needed:
        raise ServiceError(
            CoreErrorCode.NO_ELIGIBLE_CHECKERS,
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
    module, group = check_can_request(checked_actor(user), action, task_group=task_group)
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
    return ServiceError(CoreErrorCode.APPROVAL_PENDING,
                        f"A '{action}' of this record is already waiting for approval.", "entityId")
