"""Workflow templates at work: a ticket whose category names a workflow gets its steps as
tasks; the first whose condition holds opens (assigned to a holder of its role, due after its
days), the others wait. Completing or skipping (with a reason) a task opens the next; when the
last one finishes the ticket is closed. A step's ``action`` adds what it needs:
``payment_status`` records the linked payment's status as it is then, ``name_new_recipient``
names the household's new primary recipient through maker-checker (``core.approvals``), and
``notify`` tells the attending staff and finishes by itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction

from core.approvals import ApprovalAction, ApprovalContext
from core.approvals.services import needs_approval, request_approval
from core.errors import CoreErrorCode as C
from core.errors import ServiceError
from core.models import ApprovalTask, User
from core.permissions import has_permission
from modules.grievance import access, clock, notifications
from modules.grievance.configuration import Step, config
from modules.grievance.errors import GrievanceErrorCode as E
from modules.grievance.models import TaskStatus, Ticket, TicketTask
from modules.grievance.permissions import REGISTRY_UPDATE, TASK_ACT
from modules.grievance.routing import Router
from modules.grievance.services import common

REPLACE_RECIPIENT = "grievance.replace_recipient"
FINISHED = (TaskStatus.DONE, TaskStatus.SKIPPED)


def holds(ticket: Ticket, condition: dict[str, Any] | None) -> bool:
    if not condition:
        return True
    value: Any = getattr(ticket, condition["field"])
    if "equals" in condition:
        return value == condition["equals"]
    if "in" in condition:
        return value in condition["in"]
    if "contains" in condition:
        return condition["contains"] in (value or [])
    return True


def start(tickets: list[Ticket], router: Router, now: datetime) -> int:
    """Create the tasks of each ticket's workflow (once: a ticket keeps the tasks it has)."""
    cfg = config()
    existing = set(TicketTask.objects.filter(ticket__in=[t.pk for t in tickets]).values_list("ticket_id", "workflow"))
    rows = []
    for ticket in tickets:
        category = cfg.categories.get(ticket.category)
        if category is None or category.workflow is None or (ticket.pk, category.workflow) in existing:
            continue
        opened = False
        for position, step in enumerate(cfg.workflows[category.workflow].steps):
            task = TicketTask(ticket=ticket, workflow=category.workflow, step=step.code, position=position,
                              name=step.name, role=step.role, action=step.action or "", days=step.days,
                              date_created=now, date_updated=now)
            if not holds(ticket, step.condition):
                task.status, task.finished_at, task.reason = TaskStatus.SKIPPED, now, "condition not met"
            elif not opened:
                _open(task, ticket, router, now)
                opened = True
            rows.append(task)
    TicketTask.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


def _open(task: TicketTask, ticket: Ticket, router: Router, now: datetime) -> None:
    task.status, task.opened_at, task.due_at = TaskStatus.OPEN, now, now + timedelta(days=task.days)
    task.assignee_id = router.route([task.role], ticket.location_id).user_id


@dataclass
class TaskRequest:
    actor: Any
    task: TicketTask
    ticket: Ticket
    outcome: str  # DONE, SKIPPED, REASSIGN
    note: str = ""
    new_recipient: Any = None
    payment: Any = None
    assignee: Any = None


def _task_for(actor: Any, task_id: Any) -> tuple[TicketTask, Ticket]:
    common.require(actor, TASK_ACT)
    task = TicketTask.objects.select_for_update().filter(pk=task_id).first()
    if task is None:
        raise ServiceError(E.TASK_NOT_FOUND, f"Task {task_id} does not exist or is not visible to you.", "id")
    try:
        ticket = common.ticket_for_change(actor, task.ticket_id)
    except ServiceError as exc:
        raise ServiceError(E.TASK_NOT_FOUND, f"Task {task_id} does not exist or is not visible to you.", "id") from exc
    reopen_rejected(task)
    if task.status != TaskStatus.OPEN:
        raise ServiceError(E.TASK_NOT_OPEN, f"The task '{task.name}' is {task.status}, not open.", "id")
    return task, ticket


def _holds_role(actor: Any, task: TicketTask) -> None:
    if not access.viewer(actor).unrestricted and task.role not in access.viewer(actor).roles:
        raise ServiceError(E.NOT_THE_ROLE, f"The task '{task.name}' is for the role '{task.role}'.", "id")


def check_complete_task(actor: Any, task_id: Any, note: str = "", new_recipient_id: Any = None) -> TaskRequest:
    task, ticket = _task_for(actor, task_id)
    _holds_role(actor, task)
    request = TaskRequest(actor, task, ticket, TaskStatus.DONE, (note or "").strip()[:2000])
    if task.action == "payment_status":
        request.payment = _payment(ticket)
    if task.action == "name_new_recipient":
        request.new_recipient = _new_recipient(actor, ticket, new_recipient_id)
    return request


def check_skip_task(actor: Any, task_id: Any, reason: str) -> TaskRequest:
    task, ticket = _task_for(actor, task_id)
    _holds_role(actor, task)
    if not (reason or "").strip():
        raise ServiceError(E.REASON_REQUIRED, "Say why the task is skipped.", "reason")
    return TaskRequest(actor, task, ticket, TaskStatus.SKIPPED, reason.strip()[:2000])


def check_reassign_task(actor: Any, task_id: Any, user_id: Any, reason: str = "") -> TaskRequest:
    task, ticket = _task_for(actor, task_id)
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        raise ServiceError(E.STAFF_NOT_FOUND, "No such active user.", "userId")
    if not user.is_superuser and task.role not in access.viewer(user).roles:
        raise ServiceError(E.NOT_THE_ROLE, f"{user.username} does not hold the role '{task.role}'.", "userId")
    if not access.visible_tickets(user, Ticket.objects.filter(pk=ticket.pk)).exists():
        raise ServiceError(C.OUT_OF_SCOPE, f"{user.username} may not see this ticket (location or sensitivity).",
                           "userId")
    return TaskRequest(actor, task, ticket, "REASSIGN", (reason or "").strip()[:2000], assignee=user)


def _payment(ticket: Ticket) -> Any:
    from modules.grievance import links

    found = links.payments([ticket.payment_id]) if ticket.payment_id else {}
    if ticket.payment_id not in found:
        raise ServiceError(E.PAYMENT_NOT_FOUND, "This step checks the ticket's payment; link the payment first.", "id")
    return found[ticket.payment_id]


def _new_recipient(actor: Any, ticket: Ticket, individual_id: Any) -> Any:
    from modules.individual.models import GroupIndividual

    if not individual_id:
        raise ServiceError(E.RECIPIENT_REQUIRED, "Name the household's new primary recipient (newRecipientId).",
                           "newRecipientId")
    if not has_permission(actor, REGISTRY_UPDATE):
        raise ServiceError(C.PERMISSION_DENIED, "Naming a recipient changes the registry; it needs "
                                                f"'{REGISTRY_UPDATE}'.", "newRecipientId")
    member = GroupIndividual.objects.filter(group_id=ticket.household_id, individual_id=individual_id).first()
    if ticket.household_id is None or member is None:
        raise ServiceError(E.RECIPIENT_NOT_IN_HOUSEHOLD, "The new primary recipient must be a member of the "
                                                         "ticket's household.", "newRecipientId")
    return member.individual_id


def do_task(request: TaskRequest) -> TicketTask:
    task, now = request.task, clock.now()
    if request.outcome == "REASSIGN":
        task.assignee = request.assignee
        task.reason = request.note
        common_save(task, request.actor, ["assignee", "reason"])
        notifications.queue("assigned", [request.assignee], f"Task '{task.name}' of {request.ticket.code} assigned "
                            "to you", f"{request.ticket.code}: {request.ticket.title}", [request.ticket.pk])
        return task
    if request.new_recipient is not None and needs_approval(REPLACE_RECIPIENT):
        if task.approval_task_id and ApprovalTask.objects.filter(pk=task.approval_task_id,
                                                                 status__in=["RECEIVED", "ACCEPTED"]).exists():
            raise ServiceError(C.APPROVAL_PENDING, "A checker is already deciding on this step.", "id")
        approval = request_approval(request.actor, REPLACE_RECIPIENT, "TicketTask", task.pk, {
            "task_id": str(task.pk), "household_id": str(request.ticket.household_id),
            "individual_id": str(request.new_recipient), "note": request.note})
        task.status, task.approval_task, task.result = TaskStatus.AWAITING_APPROVAL, approval, {
            "new_recipient_id": str(request.new_recipient)}
        common_save(task, request.actor, ["status", "approval_task", "result"])
        return task
    if request.new_recipient is not None:
        _replace_recipient(request.actor, request.ticket.household_id, request.new_recipient)
        task.result = {"new_recipient_id": str(request.new_recipient)}
    if request.payment is not None:
        p = request.payment
        task.result = {"payment": p.code, "status": p.status, "date_paid": str(p.date_paid or ""),
                       "provider_transaction_id": p.provider_transaction_id, "message": p.status_message}
    finish(task, request.ticket, request.actor, request.outcome, request.note, now)
    return task


def common_save(task: TicketTask, actor: Any, fields: list[str]) -> None:
    from core import services

    services.save_versioned(task, actor, fields)


def finish(task: TicketTask, ticket: Ticket, actor: Any, outcome: str, note: str, now: datetime) -> None:
    """Close ``task`` and open the next step; the last one closes the ticket."""
    task.status, task.finished_at, task.reason = outcome, now, note
    task.finished_by_id = getattr(actor, "pk", None)
    common_save(task, actor, ["status", "finished_at", "finished_by", "reason", "result"])
    router = None
    for following in TicketTask.objects.filter(ticket=ticket, workflow=task.workflow, status=TaskStatus.WAITING
                                               ).order_by("position"):
        if holds(ticket, _step(following).condition if _step(following) else None):
            router = router or Router([following.role], config().national_lead_role)
            _open(following, ticket, router, now)
            common_save(following, actor, ["status", "opened_at", "due_at", "assignee"])
            if following.action == "notify":
                _notify(following, ticket)
                finish(following, ticket, actor, TaskStatus.DONE, "notified", now)
            return
        following.status, following.finished_at, following.reason = TaskStatus.SKIPPED, now, "condition not met"
        common_save(following, actor, ["status", "finished_at", "reason"])
    if not TicketTask.objects.filter(ticket=ticket).exclude(status__in=FINISHED).exists():
        from modules.grievance.services.changes import close_finished

        close_finished(ticket, actor, now)


def _step(task: TicketTask) -> Step | None:
    workflow = config().workflows.get(task.workflow)
    return next((s for s in workflow.steps if s.code == task.step), None) if workflow else None


def _notify(task: TicketTask, ticket: Ticket) -> None:
    staff = User.objects.filter(pk=ticket.attending_staff_id).first()
    notifications.queue("workflow", [staff], f"{ticket.code}: {task.name}", f"{ticket.code}: {ticket.title}",
                        [ticket.pk])


def _replace_recipient(actor: Any, household_id: Any, individual_id: Any) -> None:
    """The household's primary recipient becomes ``individual_id`` (through the registry's own
    rules and history)."""
    from modules.individual import services as registry
    from modules.individual.models import GroupIndividual

    current = GroupIndividual.objects.filter(group_id=household_id, recipient_type="PRIMARY").first()
    if current is not None and current.individual_id == individual_id:
        return
    if current is not None:
        registry.edit_member(actor, current.pk, recipient_type=None)
    member = GroupIndividual.objects.get(group_id=household_id, individual_id=individual_id)
    registry.edit_member(actor, member.pk, recipient_type="PRIMARY")


def _execute_replacement(task: ApprovalTask, context: ApprovalContext) -> dict[str, Any]:
    step = TicketTask.objects.select_for_update().filter(pk=task.data["task_id"]).first()
    if step is None or step.status != TaskStatus.AWAITING_APPROVAL:
        raise ServiceError(E.TASK_NOT_OPEN, "The workflow step no longer waits for this approval.")
    _replace_recipient(context.user, task.data["household_id"], task.data["individual_id"])
    ticket = Ticket.objects.select_for_update().get(pk=step.ticket_id)
    finish(step, ticket, context.user, TaskStatus.DONE, task.data.get("note", ""), clock.now())
    return {"ticket": ticket.code, "new_recipient_id": task.data["individual_id"]}


def _describe(task: ApprovalTask) -> str:
    step = TicketTask.objects.filter(pk=task.data.get("task_id")).select_related("ticket").first()
    code = step.ticket.code if step else "?"
    return f"Name individual {task.data.get('individual_id')} the primary recipient of household " \
           f"{task.data.get('household_id')} (grievance {code}, replacement after death)"


ACTIONS = {REPLACE_RECIPIENT: ApprovalAction(execute=_execute_replacement, permission=REGISTRY_UPDATE,
                                             describe=_describe)}


def reopen_rejected(task: TicketTask) -> None:
    """A step whose approval was rejected may be done again (the checker said no to that name)."""
    if task.status == TaskStatus.AWAITING_APPROVAL and task.approval_task_id and ApprovalTask.objects.filter(
            pk=task.approval_task_id, status__in=["FAILED", "ERROR"]).exists():
        with transaction.atomic():
            TicketTask.objects.filter(pk=task.pk).update(status=TaskStatus.OPEN)
        task.status = TaskStatus.OPEN


__all__ = ["ACTIONS", "check_complete_task", "check_reassign_task", "check_skip_task", "do_task", "start"]
