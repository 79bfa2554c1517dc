from core.models.auth import Role, User
from core.models.base import ActiveManager, CoreModel
from core.models.history import HistoryEntry
from core.models.operations import Job, MutationLog, Upload

__all__ = ["ActiveManager", "CoreModel", "HistoryEntry", "Job", "MutationLog", "Role", "Upload", "User"]
