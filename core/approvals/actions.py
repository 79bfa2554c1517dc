"""Approval actions: what runs once a task's checkers have approved it.

Modules declare them through the ``coremis_approval_actions`` hook. Nothing here imports
Django models at import time, so a module's ``plugin.py`` can import :class:`ApprovalAction`
before Django is set up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from core.errors import CoreErrorCode, ModuleConfigurationError, ServiceError

if TYPE_CHECKING:
    from django.db.models import Q, QuerySet

    from core.jobs import JobContext
    from core.models import ApprovalTask, User


def tasks_about(entities: QuerySet) -> Q:
    """The ``in_scope`` filter of an action whose task's ``entity_id`` is a row of ``entities``
    (the rows a user may see): one subquery, with the ids compared as text as they are stored."""
    from django.db.models import CharField, Q
    from django.db.models.functions import Cast

    return Q(entity_id__in=entities.annotate(entity_text_id=Cast("pk", CharField())).values("entity_text_id"))


@dataclass
class ApprovalContext:
    """What an action runs with.

    ``user`` is the maker (the change is theirs; history attributes it to them, with the
    task and the approver in the history context); ``approver`` is the checker whose
    decision completed the task. ``job`` is set when the action runs in a background job.
    """

    task: ApprovalTask
    user: User | None
    approver: User | None
    job: JobContext | None = None

    def progress(self, processed: int, total: int | None = None, stage: str | None = None) -> None:
        """Report progress of a large action; a no-op when it runs inside the request."""
        if self.job is not None:
            self.job.progress(processed, total, stage)


@dataclass(frozen=True)
class ApprovalAction:
    """One action a module lets deployers put behind maker-checker approval.

    ``execute(task, context)`` applies ``task.data`` and returns a JSON-serialisable result
    (stored on the task); raising :class:`core.errors.ServiceError` refuses it, rolls back its
    writes and leaves the task ``ERROR`` with the message. It runs once per task, in one
    transaction.

    ``large`` (a bool, or a function of the task) sends the action to a background job
    instead of running it inside the approving request. ``permission`` is a code a checker
    must hold besides being in the task group. ``describe(task)`` is a sentence for checkers;
    ``current_data(task)`` returns the entity as it is now, so a checker can compare it with
    the proposed ``data``. ``check_decider(task, checker)`` raises a ``ServiceError`` when this
    checker may not decide on this task although they are in its group (a payroll with
    payments outside their location scope); it runs before the decision is recorded, so the
    refusal changes nothing. ``rejected(task, checker, comment)`` runs in the transaction of
    the decision that failed the task, for an action whose entity was left waiting for it (an
    import's staged rows): it undoes the wait; nothing of the action runs.

    ``in_scope(user)`` returns a filter (``Q``) on :class:`ApprovalTask` rows of this action
    that a checker of the task group may see: the tasks whose entity lies in the user's location
    scope. A checker sees a group's task (its ``businessData``, its entity) only where it
    admits it; without ``in_scope`` every task routed to the group is visible to its checkers,
    which is right only for actions whose entity has no place (a role, a plan). The maker always
    sees their own tasks; ``core.task.view_all`` sees every task.

    ``source`` is the task source openIMIS's screens file this action's tasks under, when it is
    not the module's name (a payroll's closing is ``payroll_reconciliation`` there, its approval
    ``payroll``); a task's ``source`` field and filter use it.
    """

    execute: Callable[[ApprovalTask, ApprovalContext], Any]
    large: bool | Callable[[ApprovalTask], bool] = False
    permission: str | None = None
    describe: Callable[[ApprovalTask], str] | None = None
    current_data: Callable[[ApprovalTask], Any] | None = None
    check_decider: Callable[[ApprovalTask, User], None] | None = None
    in_scope: Callable[[User], Q] | None = None
    rejected: Callable[[ApprovalTask, User, str], None] | None = None
    source: str | None = None

    def is_large(self, task: ApprovalTask) -> bool:
        return bool(self.large(task)) if callable(self.large) else self.large


@cache
def approval_actions() -> dict[str, tuple[str, ApprovalAction]]:
    """Every declared action, with the module that declared it.

    A name outside the module's namespace, a name declared twice or an unknown permission
    code stops the process, like any other broken plug-in contract.
    """
    from core.hooks import results_by_module
    from core.permissions import registry

    actions: dict[str, tuple[str, ApprovalAction]] = {}
    for module, declared in results_by_module("coremis_approval_actions"):
        for name, action in declared.items():
            if not name.startswith(f"{module}."):
                raise ModuleConfigurationError(
                    module, f"declares approval action '{name}' outside its namespace",
                    f"name it '{module}.<action>'",
                )
            if name in actions:
                raise ModuleConfigurationError(
                    module, f"declares approval action '{name}' twice", "declare each action once"
                )
            if not isinstance(action, ApprovalAction):
                raise ModuleConfigurationError(
                    module, f"approval action '{name}' is not an ApprovalAction",
                    "return core.approvals.ApprovalAction objects from coremis_approval_actions",
                )
            if action.permission is not None and action.permission not in registry():
                raise ModuleConfigurationError(
                    module, f"approval action '{name}' needs the undeclared permission "
                    f"'{action.permission}'", "declare the code in coremis_permissions",
                )
            actions[name] = (module, action)
    return actions


def get_action(name: str) -> tuple[str, ApprovalAction]:
    """The declaring module and the action, or a refusal naming the unknown action."""
    found = approval_actions().get(name)
    if found is None:
        raise ServiceError(
            CoreErrorCode.UNKNOWN_APPROVAL_ACTION,
            f"No enabled module declares the approval action '{name}'.", "action",
        )
    return found


def task_source(module: str, action: str) -> str:
    """A task's openIMIS source: its action's ``source``, else the module that asked."""
    found = approval_actions().get(action)
    return (found[1].source if found is not None else None) or module


def tasks_of_source(value: str, lookup: str = "exact") -> Q:
    """The tasks whose :func:`task_source` matches ``value`` (``exact`` or ``icontains``): an
    action declaring its own source is found by that name only, the others by their module's."""
    from django.db.models import Q

    def matches(name: str) -> bool:
        return name == value if lookup == "exact" else value.lower() in name.lower()

    sourced = {name: action.source for name, (_, action) in approval_actions().items() if action.source}
    named = Q(action__in=sorted(name for name, source in sourced.items() if matches(source)))
    by_module = Q(**{f"module__{lookup}": value}) & ~Q(action__in=sorted(sourced))
    return named | by_module
