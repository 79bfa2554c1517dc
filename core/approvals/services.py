"""The approvals' service API in one place (``core/approvals/README.md``): what modules call
to ask for approval, and the use cases of the approvals' own mutations."""

from core.approvals.decisions import (
    APPROVED,
    EXECUTE_JOB_KIND,
    REJECTED,
    ResolveRequest,
    action_failures,
    check_resolve_task,
    do_resolve_task,
    resolve_task,
    run_approved_task,
    visible_tasks,
)
from core.approvals.groups import (
    CreateTaskGroupRequest,
    UpdateTaskGroupRequest,
    check_create_task_group,
    check_update_task_group,
    create_task_group,
    do_create_task_group,
    do_update_task_group,
)
from core.approvals.requests import check_can_request, request_approval
from core.approvals.routes import (
    CONFIG,
    RUNTIME,
    Route,
    SetRouteRequest,
    approval_config_problems,
    approval_routes,
    check_set_approval_route,
    configured_task_group,
    do_set_approval_route,
    needs_approval,
    set_approval_route,
)

__all__ = [
    "APPROVED", "CONFIG", "EXECUTE_JOB_KIND", "REJECTED", "RUNTIME", "CreateTaskGroupRequest", "ResolveRequest",
    "Route", "SetRouteRequest", "UpdateTaskGroupRequest", "action_failures", "approval_config_problems", "approval_routes",
    "check_can_request", "check_create_task_group", "check_resolve_task", "check_set_approval_route",
    "check_update_task_group", "configured_task_group", "create_task_group", "do_create_task_group",
    "do_resolve_task", "do_set_approval_route", "do_update_task_group", "needs_approval", "request_approval",
    "resolve_task", "run_approved_task", "set_approval_route", "visible_tasks",
]
