"""Approval routes: which task group decides on each action, and the checks of the
configuration that seeds them."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction

from core import services
from core.approvals.actions import approval_actions, get_action
from core.approvals.errors import ApprovalErrorCode
from core.errors import CoreErrorCode, FieldError, ServiceError, ValidationFailed
from core.loader import get_registry
from core.models import ApprovalRoute, TaskGroup, TaskGroupChecker, User
from core.permissions import APPROVAL_ROUTE_MANAGE, require

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


@dataclass(frozen=True)
class SetRouteRequest:
    actor: User
    action: str
    task_group: TaskGroup | None
    reason: str


def check_set_approval_route(actor: User, action: str, task_group_code: str | None,
                             reason: str) -> SetRouteRequest:
    """Route ``action`` to the task group ``task_group_code``, or with ``None`` let it run
    without approval. The group must exist and have an active checker, so a route never makes
    an action impossible to approve; ``reason`` is required (it is kept in history)."""
    require(actor, APPROVAL_ROUTE_MANAGE)
    get_action(action)
    errors: list[FieldError] = []
    if not (reason or "").strip():
        errors.append(FieldError("reason", CoreErrorCode.REQUIRED, "Say why the route changes; it is kept in history."))
    group = None
    if task_group_code is not None:
        group = TaskGroup.objects.filter(code=task_group_code.strip()).first()
        if group is None:
            errors.append(FieldError("taskGroupCode", CoreErrorCode.TASK_GROUP_MISSING,
                                     f"No task group has the code '{task_group_code.strip()[:100]}'."))
        elif not TaskGroupChecker.objects.filter(task_group=group, user__is_active=True).exists():
            errors.append(FieldError("taskGroupCode", CoreErrorCode.NO_ELIGIBLE_CHECKERS,
                                     f"The task group '{group.code}' has no active checker; add one first."))
    if errors:
        raise ValidationFailed(errors)
    return SetRouteRequest(actor, action, group, reason.strip())


def do_set_approval_route(request: SetRouteRequest) -> Route:
    """Write the route (from the next request on, until it is set again); returns the route as
    :func:`approval_routes` reports it."""
    try:
        with transaction.atomic():
            route = ApprovalRoute.objects.select_for_update().filter(action=request.action).first()
            if route is None:
                services.create(ApprovalRoute(action=request.action, task_group=request.task_group,
                                              reason=request.reason), request.actor)
            else:
                route.task_group, route.reason = request.task_group, request.reason
                services.save_versioned(route, request.actor, ["task_group", "reason"])
    except IntegrityError as exc:  # two first routes of the same action at once
        raise ServiceError(ApprovalErrorCode.ROUTE_CHANGED,
                           "Someone set this route at the same moment; reload it and try again.", "action") from exc
    [current] = [r for r in approval_routes() if r.action == request.action]
    return current


def set_approval_route(user: User, action: str, task_group_code: str | None, reason: str) -> ApprovalRoute:
    """Both steps at once (scripts and tests); returns the stored route row."""
    do_set_approval_route(check_set_approval_route(user, action, task_group_code, reason))
    return ApprovalRoute.objects.get(action=action)


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
