from core.models.approvals import ApprovalDecision, ApprovalTask, TaskGroup, TaskGroupChecker
from core.models.auth import Role, User
from core.models.base import ActiveManager, CoreModel
from core.models.history import HistoryEntry
from core.models.operations import Job, JobEvent, MutationLog, ScheduleRun, Upload

__all__ = [
    "ActiveManager", "ApprovalDecision", "ApprovalTask", "CoreModel", "HistoryEntry", "Job", "JobEvent",
    "MutationLog", "Role", "ScheduleRun", "TaskGroup", "TaskGroupChecker", "Upload", "User",
]
