"""The codes only the approvals' own mutations return (deciding, task groups, routes).

The refusals a module meets when it asks for approval (``APPROVAL_PENDING``,
``NO_ELIGIBLE_CHECKERS``…) are generic: :class:`core.errors.CoreErrorCode`.
"""

from core.errors import ErrorCode


class ApprovalErrorCode(ErrorCode):
    """Why deciding on a task, or changing a task group or a route, was refused."""

    SELF_APPROVAL = "SELF_APPROVAL", "The maker cannot decide on their own task."
    NOT_A_CHECKER = "NOT_A_CHECKER", "The caller is not a checker of the task's group."
    TASK_CLOSED = "TASK_CLOSED", "The task is already decided; decisions are closed."
    ALREADY_DECIDED = "ALREADY_DECIDED", "The caller has already decided on this task."
    INVALID_DECISION = "INVALID_DECISION", "businessStatus holds no decision (APPROVED, REJECTED or FAILED)."
    INVALID_BUSINESS_STATUS = "INVALID_BUSINESS_STATUS", "businessStatus is not one JSON entry."
    NOT_YOUR_DECISION = "NOT_YOUR_DECISION", "businessStatus holds another user's decision."
    TASK_GROUP_CODE_TAKEN = "TASK_GROUP_CODE_TAKEN", "Another task group has this code."
    INVALID_COMPLETION_POLICY = "INVALID_COMPLETION_POLICY", "The completion policy is not ANY, ALL or N_OF."
    CHECKER_NOT_FOUND = "CHECKER_NOT_FOUND", "A checker is unknown or deactivated."
    NOT_ENOUGH_CHECKERS = "NOT_ENOUGH_CHECKERS", "An N_OF group needs more approvals than it has checkers."
    NOT_ALLOWED = "NOT_ALLOWED", "requiredApprovals was sent for a policy other than N_OF."
    ROUTE_CHANGED = "ROUTE_CHANGED", "Someone set the same route at the same moment; reload it."
    ACTION_FAILED = ("ACTION_FAILED", "The decision was recorded and completed the task, but the approved action "
                     "failed: the task is ERROR and nothing of the action was kept.")
