"""Task groups: the checkers who decide on the actions routed to them, and how many must
approve."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from core import services
from core.approvals.errors import ApprovalErrorCode
from core.errors import CoreErrorCode, FieldError, NotFound, ValidationFailed
from core.models import TaskGroup, TaskGroupChecker, User
from core.permissions import TASK_GROUP_MANAGE, require


def _check_group(code: str, policy: str, required: int | None, checker_ids: list[Any] | None,
                 current_checkers: int, exclude: Any = None) -> tuple[list[FieldError], list[User]]:
    errors: list[FieldError] = []
    code = (code or "").strip()
    if not code:
        errors.append(FieldError("code", CoreErrorCode.REQUIRED, "The task group needs a code."))
    elif len(code) > 100:
        errors.append(FieldError("code", CoreErrorCode.TOO_LONG, "The code is at most 100 characters."))
    elif TaskGroup.objects.filter(code=code).exclude(pk=exclude).exists():
        errors.append(FieldError("code", ApprovalErrorCode.TASK_GROUP_CODE_TAKEN,
                                 f"Another task group already has the code '{code}'."))
    if policy not in dict(TaskGroup.POLICIES):
        errors.append(FieldError("completionPolicy", ApprovalErrorCode.INVALID_COMPLETION_POLICY,
                                 f"'{policy}' is not a completion policy (ANY, ALL or N_OF)."))
    users: list[User] = []
    if checker_ids is not None:
        wanted = {str(i) for i in checker_ids}
        users = list(User.objects.filter(pk__in=wanted, is_active=True))
        missing = wanted - {str(u.pk) for u in users}
        if missing:
            errors.append(FieldError("userIds", ApprovalErrorCode.CHECKER_NOT_FOUND,
                                     f"Unknown or deactivated users: {', '.join(sorted(missing))}."))
    checkers = len(users) if checker_ids is not None else current_checkers
    if policy == TaskGroup.N_OF:
        if required is None or required < 1:
            errors.append(FieldError("requiredApprovals", CoreErrorCode.REQUIRED,
                                     "An N_OF group needs requiredApprovals of at least 1."))
        elif required > checkers:
            errors.append(FieldError(
                "requiredApprovals", ApprovalErrorCode.NOT_ENOUGH_CHECKERS,
                f"The group needs {required} approvals but has only {checkers} checker(s).",
            ))
    elif required is not None:
        errors.append(FieldError("requiredApprovals", ApprovalErrorCode.NOT_ALLOWED,
                                 "requiredApprovals only applies to the N_OF policy."))
    return errors, users


def _set_checkers(group: TaskGroup, users: list[User]) -> None:
    TaskGroupChecker.objects.filter(task_group=group).exclude(user__in=users).delete()
    TaskGroupChecker.objects.bulk_create(
        [TaskGroupChecker(task_group=group, user=u) for u in users], ignore_conflicts=True
    )


@dataclass(frozen=True)
class CreateTaskGroupRequest:
    actor: User
    code: str
    name: str
    completion_policy: str
    required_approvals: int | None
    checkers: list[User]


def check_create_task_group(actor: User, *, code: str, completion_policy: str, name: str = "",
                            required_approvals: int | None = None,
                            checker_ids: Iterable[Any] = ()) -> CreateTaskGroupRequest:
    require(actor, TASK_GROUP_MANAGE)
    errors, checkers = _check_group(code, completion_policy, required_approvals,
                                    list(checker_ids), current_checkers=0)
    if errors:
        raise ValidationFailed(errors)
    return CreateTaskGroupRequest(actor, code.strip(), (name or "").strip(), completion_policy,
                                  required_approvals, checkers)


def do_create_task_group(request: CreateTaskGroupRequest) -> TaskGroup:
    group = services.create(TaskGroup(
        code=request.code, name=request.name, completion_policy=request.completion_policy,
        required_approvals=request.required_approvals,
    ), request.actor)
    _set_checkers(group, request.checkers)
    return group


@dataclass(frozen=True)
class UpdateTaskGroupRequest:
    actor: User
    group: TaskGroup
    code: str
    name: str
    completion_policy: str
    required_approvals: int | None
    checkers: list[User] | None  # None: the checkers stay
    version: int | None


def check_update_task_group(actor: User, group_id: Any, *, version: int | None = None,
                            code: str | None = None, name: str | None = None,
                            completion_policy: str | None = None, required_approvals: Any = ...,
                            checker_ids: Iterable[Any] | None = None) -> UpdateTaskGroupRequest:
    """``checker_ids`` replaces the checkers. Leaving ``required_approvals`` out keeps it for
    an ``N_OF`` group and clears it when the policy becomes ANY or ALL."""
    require(actor, TASK_GROUP_MANAGE)
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
    return UpdateTaskGroupRequest(
        actor, group, group.code if code is None else code.strip(), group.name if name is None else name.strip(),
        policy, required_approvals, None if ids is None else checkers, version)


def do_update_task_group(request: UpdateTaskGroupRequest) -> TaskGroup:
    """Open tasks of the group are evaluated against the new checkers at their next decision."""
    group = request.group
    group.code, group.name = request.code, request.name
    group.completion_policy, group.required_approvals = request.completion_policy, request.required_approvals
    services.save_versioned(group, request.actor, ["code", "name", "completion_policy", "required_approvals"],
                            request.version)
    if request.checkers is not None:
        _set_checkers(group, request.checkers)
    return group


def create_task_group(user: User, *, code: str, completion_policy: str, name: str = "",
                      required_approvals: int | None = None, checker_ids: Iterable[Any] = ()) -> TaskGroup:
    """Both steps at once (scripts, demo data and tests)."""
    return do_create_task_group(check_create_task_group(
        user, code=code, completion_policy=completion_policy, name=name,
        required_approvals=required_approvals, checker_ids=checker_ids))
