from core.models.approvals import (
    ApprovalDecision,
    ApprovalRoute,
    ApprovalTask,
    TaskGroup,
    TaskGroupChecker,
)
from core.models.auth import LoginSession, Role, User
from core.models.base import ActiveManager, CoreModel
from core.models.counts import RowCount
from core.models.history import HistoryEntry
from core.models.imports import ImportIssue, ImportReport
from core.models.operations import Job, JobEvent, MutationLog, ScheduleRun, Upload

__all__ = [
    "ActiveManager", "ApprovalDecision", "ApprovalRoute", "ApprovalTask", "CoreModel", "HistoryEntry",
    "ImportIssue", "ImportReport", "Job", "JobEvent", "LoginSession", "MutationLog", "Role", "RowCount", "ScheduleRun", "TaskGroup", "TaskGroupChecker",
    "Upload", "User",
]
