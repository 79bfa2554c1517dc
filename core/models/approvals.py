"""Maker-checker approvals: task groups of checkers and the tasks they approve or reject.

The rules (who may decide, when a task completes, running its action exactly once) live in
``core.approvals.services``; these models only hold the state.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone

from core.models.base import CoreModel
from core.models.operations import Job


class TaskGroup(CoreModel):
    """Checkers who decide on approval tasks, and how many of them must approve.

    ``ANY``: one approval completes a task. ``ALL``: every checker except the maker must
    approve. ``N_OF``: ``required_approvals`` distinct checkers must approve.
    """

    ANY = "ANY"
    ALL = "ALL"
    N_OF = "N_OF"
    POLICIES = [(ANY, "any checker"), (ALL, "all checkers"), (N_OF, "N of the checkers")]

    code = models.CharField(max_length=100)
    name = models.CharField(max_length=255, blank=True, default="")
    completion_policy = models.CharField(max_length=10, choices=POLICIES, default=ANY)
    required_approvals = models.PositiveIntegerField(null=True, blank=True)
    checkers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="TaskGroupChecker", related_name="task_groups", blank=True
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["code"], condition=models.Q(is_deleted=False), name="core_taskgroup_code_unique"
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(completion_policy="N_OF", required_approvals__gte=1)
                    | (~models.Q(completion_policy="N_OF") & models.Q(required_approvals__isnull=True))
                ),
                name="core_taskgroup_required_approvals_matches_policy",
            ),
        ]

    def __str__(self) -> str:
        return self.code


class TaskGroupChecker(models.Model):
    """Membership of a checker in a task group (its own table so history records who could
    approve, and when that changed)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    task_group = models.ForeignKey(TaskGroup, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["task_group", "user"], name="core_taskgroupchecker_unique")
        ]


class ApprovalTask(CoreModel):
    """A proposed action on an entity, waiting for (or done with) its checkers' decisions.

    ``ACCEPTED``: with its task group, waiting for its checkers' decisions (what openIMIS calls a
    task a group has taken; every task is routed to its group when it is made, so it starts
    here; partial approvals show in its decisions). ``RECEIVED``: openIMIS's state before a
    group takes the task; no task is made in it (kept for the tasks of earlier versions).
    ``COMPLETED``: approved; the action ran (``executed_at``) or runs in ``job``.
    ``FAILED``: a checker rejected it; nothing ran. ``ERROR``: the action itself failed after
    approval; its changes were rolled back and ``error`` says why.
    """

    RECEIVED = "RECEIVED"
    ACCEPTED = "ACCEPTED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    ERROR = "ERROR"
    STATUSES = [(s, s.lower()) for s in (RECEIVED, ACCEPTED, COMPLETED, FAILED, ERROR)]
    OPEN_STATUSES = (RECEIVED, ACCEPTED)

    module = models.CharField(max_length=50)
    action = models.CharField(max_length=100)
    entity_type = models.CharField(max_length=100)
    entity_id = models.CharField(max_length=255)
    data = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    maker = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    task_group = models.ForeignKey(TaskGroup, on_delete=models.PROTECT, related_name="tasks")
    status = models.CharField(max_length=20, choices=STATUSES, default=ACCEPTED)
    executed_at = models.DateTimeField(null=True, blank=True)
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    result = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    error = models.TextField(blank=True, default="")

    class Meta:
        indexes = [
            models.Index(fields=["task_group", "status"], name="core_approvaltask_group"),
            models.Index(fields=["maker", "-date_created"], name="core_approvaltask_maker"),
            models.Index(fields=["entity_type", "entity_id"], name="core_approvaltask_entity"),
        ]
        constraints = [
            # Two pending proposals for the same change could both be approved and both run.
            models.UniqueConstraint(
                fields=["action", "entity_type", "entity_id"],
                condition=models.Q(status__in=["RECEIVED", "ACCEPTED"], is_deleted=False),
                name="core_approvaltask_one_open_per_entity",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.entity_type} {self.entity_id} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


class ApprovalDecision(models.Model):
    """One checker's approval or rejection of a task; a checker decides once."""

    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    DECISIONS = [(APPROVED, "approved"), (REJECTED, "rejected")]

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    task = models.ForeignKey(ApprovalTask, on_delete=models.CASCADE, related_name="decisions")
    checker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=10, choices=DECISIONS)
    comment = models.TextField(blank=True, default="")
    decided_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["task", "checker"], name="core_approvaldecision_once")
        ]


class ApprovalRoute(CoreModel):
    """Which task group decides on an action, set at run time (``setApprovalRoute``).

    A live row overrides the action's route in ``modules_config.json``, which is where routes
    start from: ``task_group`` set means the action needs that group's approval; empty means it
    was deliberately unrouted and runs without one. Every change is in ``core_history``.
    """

    action = models.CharField(max_length=100)
    task_group = models.ForeignKey(TaskGroup, null=True, blank=True, on_delete=models.PROTECT, related_name="routes")
    reason = models.TextField(blank=True, default="", help_text="why the route was set, as its author said")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["action"], condition=models.Q(is_deleted=False),
                                    name="core_approvalroute_action_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.action} → {self.task_group or 'no approval'}"
