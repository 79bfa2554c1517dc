"""Permission codes: declared by modules through ``coremis_permissions``, grouped by roles."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from core.loader import ModuleConfigurationError


@dataclass(frozen=True)
class PermissionSpec:
    code: str
    description: str


CORE_PERMISSIONS = [
    PermissionSpec("core.mutation_log.view", "Read the log of one's own mutations"),
    PermissionSpec("core.mutation_log.view_all", "Read every user's mutation log"),
    PermissionSpec("core.job.view", "Read the progress of one's own background jobs"),
    PermissionSpec("core.job.view_all", "Read every user's background jobs"),
    PermissionSpec("core.job.operate", "Use the job dashboard (/django-rq/): delete, requeue, empty queues"),
    PermissionSpec("core.job.manage", "Retry and cancel one's own background jobs (anyone's, with core.job.view_all)"),
    PermissionSpec("core.health.view", "Read the full /health report (workers, queues, jobs, schedules)"),
    PermissionSpec("core.role.manage", "Create and change roles and assign them to users"),
    PermissionSpec("core.user.view", "List users (within one's location scope)"),
    PermissionSpec("core.user.create", "Create users, with roles and locations within one's own"),
    PermissionSpec("core.user.update", "Change users and reset their passwords"),
    PermissionSpec("core.user.delete", "Deactivate and reactivate users"),
    PermissionSpec("core.task.view", "See approval tasks one made or may decide on"),
    PermissionSpec("core.task.view_all", "See every approval task"),
    PermissionSpec("core.task.resolve", "Approve or reject tasks of one's task groups"),
    PermissionSpec("core.task_group.manage", "List, create and change task groups and their checkers"),
    PermissionSpec("core.approval_route.manage",
                   "See which task group approves each action, and route or unroute actions at run time"),
]


@cache
def registry() -> dict[str, PermissionSpec]:
    """Every known code; a module declaring another module's code, or one twice, stops start-up."""
    from core.hooks import results_by_module

    codes = {p.code: p for p in CORE_PERMISSIONS}
    for module, specs in results_by_module("coremis_permissions"):
        for spec in specs:
            if not spec.code.startswith(f"{module}."):
                raise ModuleConfigurationError(
                    module,
                    f"declares permission '{spec.code}' outside its own namespace",
                    f"name it '{module}.<something>'",
                )
            if spec.code in codes:
                raise ModuleConfigurationError(
                    module, f"declares permission '{spec.code}' twice", "declare each code once"
                )
            codes[spec.code] = spec
    return codes


def has_permission(user: Any, code: str) -> bool:
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if code not in registry():
        # A typo in a permission check must not silently grant or deny: it is a bug.
        raise KeyError(f"unknown permission code {code!r}; declare it in coremis_permissions")
    return bool(user.has_code(code))


def require(user: Any, code: str) -> None:
    """Service-level check: ``None`` is the system itself (imports, demo data, schedules)."""
    from core.errors import PermissionDenied

    if user is not None and not has_permission(user, code):
        raise PermissionDenied(f"This requires the permission '{code}'.")
