"""Permission codes: declared by modules through ``coremis_permissions``, grouped by roles.

A code is ``<module>.<noun>.<verb>`` (``payroll.payroll.approve``, ``core.task_group.manage``),
declared once as a constant of the module's ``permissions.py`` and used by that name in
declarations and checks alike::

    # modules/payroll/permissions.py
    from core.permissions import Permission

    PAYROLL_APPROVE = Permission("payroll.payroll.approve", "Approve or reject payrolls")

    # modules/payroll/plugin.py
    @hookimpl
    def coremis_permissions() -> list[Permission]:
        return declared(permissions)

    # anywhere
    require(actor, PAYROLL_APPROVE)

A :class:`Permission` is a ``str``, so a role stores it, GraphQL prints it and a check
compares it as the plain code. Job kinds, approval actions and upload purposes are other
vocabularies (``<module>.<name>``); they never share a string with a permission. An approval
action or upload purpose that needs a right names the permission constant
(``ApprovalAction.permission``, ``UploadPurpose.permission``).

Renaming a code keeps existing roles working through a data migration of the module:
``core.migration_operations.RenameCodes(permissions={"old": "new"})``.
"""

from __future__ import annotations

import re
from functools import cache
from types import ModuleType
from typing import Any, Self

from core.errors import ModuleConfigurationError

CODE_STYLE = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")


class Permission(str):
    """A permission code with the sentence that explains it (``permissions`` query).

    ``openimis`` lists the openIMIS right numbers this code grants to openIMIS's frontend
    screens (``159001`` individual search…; ``core/openimis.py`` reports them), declared here,
    beside the code, and nowhere else."""

    description: str
    openimis: tuple[int, ...]

    def __new__(cls, code: str, description: str, openimis: tuple[int, ...] = ()) -> Self:
        permission = super().__new__(cls, code)
        permission.description = description
        permission.openimis = tuple(openimis)
        return permission

    @property
    def code(self) -> str:
        return str(self)

    def __reduce__(self) -> Any:
        return (type(self), (str(self), self.description, self.openimis))


def declared(namespace: ModuleType) -> list[Permission]:
    """Every :class:`Permission` constant of a ``permissions.py``, in the order written."""
    return [value for value in vars(namespace).values() if isinstance(value, Permission)]


# --- the core's own codes --------------------------------------------------------------------

MUTATION_LOG_VIEW = Permission("core.mutation_log.view", "Read the log of one's own mutations")
MUTATION_LOG_VIEW_ALL = Permission("core.mutation_log.view_all", "Read every user's mutation log")
JOB_VIEW = Permission("core.job.view", "Read the progress of one's own background jobs")
JOB_VIEW_ALL = Permission("core.job.view_all", "Read every user's background jobs")
JOB_OPERATE = Permission("core.job.operate", "Use the job dashboard (/django-rq/): delete, requeue, empty queues")
JOB_MANAGE = Permission("core.job.manage",
                        "Retry and cancel one's own background jobs (anyone's, with core.job.view_all)")
HEALTH_VIEW = Permission("core.health.view", "Read the full /health report (workers, queues, jobs, schedules)")
ROLE_MANAGE = Permission("core.role.manage", "Create and change roles and assign them to users",
                         openimis=(122001, 122002, 122003, 122004))
USER_VIEW = Permission("core.user.view", "List users (within one's location scope)", openimis=(121701,))
USER_CREATE = Permission("core.user.create", "Create users, with roles and locations within one's own",
                         openimis=(121702,))
USER_UPDATE = Permission("core.user.update", "Change users and reset their passwords", openimis=(121703,))
USER_DELETE = Permission("core.user.delete", "Deactivate and reactivate users", openimis=(121704,))
# openIMIS (tasks_management): 190xxx are task groups, 191xxx tasks; its frontend opens both task
# screens only with 191005 (task search all), so a checker needs it: coremis scopes the list itself.
# resolveTask has no right number there (membership of the task group decides), hence none here.
TASK_VIEW = Permission("core.task.view", "See approval tasks one made or may decide on", openimis=(191001, 191005))
TASK_VIEW_ALL = Permission("core.task.view_all", "See every approval task", openimis=(191001, 191005))
TASK_RESOLVE = Permission("core.task.resolve", "Approve or reject tasks of one's task groups")
# Listing task groups is its own code (openIMIS's 190001): a checker's task screen shows the
# task's group in a picker that lists them, and a checker must not need the right to change them.
TASK_GROUP_SEARCH = Permission("core.task_group.search", "List task groups and their checkers", openimis=(190001,))
TASK_GROUP_MANAGE = Permission("core.task_group.manage", "Create and change task groups and their checkers",
                               openimis=(190002, 190003, 190004))
APPROVAL_ROUTE_MANAGE = Permission(
    "core.approval_route.manage",
    "See which task group approves each action, and route or unroute actions at run time")


# --- the registry and the checks -------------------------------------------------------------


@cache
def registry() -> dict[str, Permission]:
    """Every known code; a module declaring another module's code, or one twice, stops start-up."""
    from core.hooks import results_by_module

    codes: dict[str, Permission] = {}
    for module, specs in results_by_module("coremis_permissions"):
        for spec in specs:
            code = str(spec)
            if not code.startswith(f"{module}."):
                raise ModuleConfigurationError(
                    module,
                    f"declares permission '{code}' outside its own namespace",
                    f"name it '{module}.<noun>.<verb>'",
                )
            if code in codes:
                raise ModuleConfigurationError(
                    module, f"declares permission '{code}' twice", "declare each code once"
                )
            codes[code] = spec if isinstance(spec, Permission) else Permission(code, str(spec.description))
    return codes


def has_permission(user: Any, code: str) -> bool:
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if code not in registry():
        # A typo in a permission check must not silently grant or deny: it is a bug.
        raise KeyError(f"unknown permission code {code!r}; declare it in coremis_permissions")
    return bool(user.has_code(code))


def require(actor: Any, code: str) -> None:
    """Refuse ``actor`` unless it holds ``code``. The system acts as
    :func:`core.actors.system_actor`, which holds every code; ``None`` is refused."""
    from core.actors import checked_actor
    from core.errors import PermissionDenied

    checked_actor(actor)
    if not has_permission(actor, code):
        raise PermissionDenied(f"This requires the permission '{code}'.")
