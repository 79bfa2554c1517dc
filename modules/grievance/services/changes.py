"""Changing tickets: edits, deletion, resolution by a comment, reopening, closing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction

from core import services as core_services
from core.errors import CoreErrorCode as C
from core.errors import FieldError, ServiceError
from core.models import User
from modules.grievance import clock
from modules.grievance.configuration import config
from modules.grievance.errors import GrievanceErrorCode as E
from modules.grievance.models import (
    OPEN_STATUSES,
    Comment,
    Contact,
    TaskStatus,
    Ticket,
    TicketStatus,
    TicketTask,
)
from modules.grievance.permissions import TICKET_DELETE, TICKET_RESOLVE, TICKET_UPDATE
from modules.grievance.routing import Router
from modules.grievance.services import common
from modules.location.models import Location

# Where a status may go by an edit; RESOLVED and CLOSED come back only through reopenTicket.
TRANSITIONS = {
    TicketStatus.RECEIVED: {TicketStatus.OPEN, TicketStatus.IN_PROGRESS, TicketStatus.RESOLVED, TicketStatus.CLOSED},
    TicketStatus.OPEN: {TicketStatus.IN_PROGRESS, TicketStatus.RESOLVED, TicketStatus.CLOSED},
    TicketStatus.IN_PROGRESS: {TicketStatus.OPEN, TicketStatus.RESOLVED, TicketStatus.CLOSED},
    TicketStatus.RESOLVED: {TicketStatus.CLOSED},
    TicketStatus.CLOSED: set(),
}
EDITABLE = ("title", "description", "category", "flags", "channel", "priority", "status", "date_of_incident",
            "attending_staff_id", "json_ext")


@dataclass
class UpdateTicketRequest:
    actor: Any
    ticket: Ticket
    changes: dict[str, Any] = field(default_factory=dict)
    recategorised: bool = False


def check_update_ticket(actor: Any, ticket_id: Any, *, version: int | None = None, **data: Any) -> UpdateTicketRequest:
    """Check an edit; fields left out (or ``...``) stay as they are."""
    common.require(actor, TICKET_UPDATE)
    ticket = common.ticket_for_change(actor, ticket_id)
    common.check_version(ticket, version)
    if ticket.status == TicketStatus.CLOSED:
        raise ServiceError(E.TICKET_CLOSED, f"Ticket {ticket.code} is closed; reopen it first.", "id")
    given = {k: v for k, v in data.items() if v is not common.UNSET and v is not None}
    errors: list[FieldError] = []
    changes: dict[str, Any] = {}
    if "title" in given:
        changes["title"] = common.text(given["title"], "title", errors, required=True)
    if "description" in given:
        changes["description"] = common.text(given["description"], "description", errors, limit=20000)
    category = config().categories.get(ticket.category)
    if "category" in given and given["category"] != ticket.category:
        category = common.category_of(given["category"], errors)
        if category is not None:
            changes["category"] = category.path
    flags = list(ticket.flags)
    if "flags" in given:
        flags = common.flags_of(given["flags"], errors)
    if category is not None and "category" in changes:
        flags += [f for f in category.default_flags if f not in flags]
    if flags != list(ticket.flags):
        changes["flags"] = flags
    if "channel" in given:
        changes["channel"] = common.channel_of(given["channel"], errors)
    if {"priority", "category", "flags"} & set(given):
        changes["priority"] = common.priority_of(given.get("priority"), category, flags, errors)
    if "status" in given:
        status = common.status_of(given["status"], errors, tuple(TicketStatus.values))
        if status is not None and status != ticket.status:
            if status not in TRANSITIONS[TicketStatus(ticket.status)]:
                errors.append(FieldError("status", E.STATUS_TRANSITION, f"A {ticket.status} ticket cannot become "
                                         f"{status}" + (" (reopen it instead)." if ticket.status == "RESOLVED" else ".")))
            elif status == TicketStatus.CLOSED and _open_tasks(ticket):
                errors.append(FieldError("status", E.WORKFLOW_OPEN, f"Ticket {ticket.code} still has open workflow "
                                         "tasks; it closes when they finish."))
            else:
                changes["status"] = status
    if "date_of_incident" in given:
        changes["date_of_incident"] = common.incident_date(given["date_of_incident"], errors, clock.now().date())
    common.fixed_by_category(given.get("resolution"), given.get("due_date"),
                             category if "category" in changes else config().categories.get(ticket.category), errors)
    if "attending_staff_id" in given:
        staff = User.objects.filter(pk=given["attending_staff_id"], is_active=True).first()
        path = Location.objects.filter(pk=ticket.location_id).values_list("path", flat=True).first()
        problem = common.staff_problem(staff, path) if staff is not None else None
        if staff is None:
            errors.append(FieldError("attendingStaffId", E.STAFF_NOT_FOUND, "No such active user."))
        elif problem:
            errors.append(FieldError("attendingStaffId", C.OUT_OF_SCOPE, problem))
        else:
            changes["attending_staff_id"] = staff.pk
    if "json_ext" in given:
        changes["json_ext"] = common.json_ext_of(given["json_ext"], errors)
    if "date_submitted" in given:
        changes["date_submitted"] = common.incident_date(given["date_submitted"], errors, clock.now().date(),
                                                         "dateSubmitted")
    _same_reporter(ticket, given, errors)
    common.raise_if(errors)
    return UpdateTicketRequest(actor, ticket, changes, "category" in changes)


def _same_reporter(ticket: Ticket, given: dict[str, Any], errors: list[FieldError]) -> None:
    """The frontend sends the reporter back with every edit; who complained never changes."""
    named = str(given.get("reporter_id") or "").strip()
    kind = str(given.get("reporter_type") or "").strip().lower()
    contact = Contact.objects.filter(ticket=ticket).first()
    name = str(given.get("name_of_complainant") or "").strip()
    if (named and named != str(ticket.reporter_id or "")) or (kind and kind != ticket.reporter_kind) or (
            name and name != (contact.name if contact else "")):
        errors.append(FieldError("reporterId", E.REPORTER_FIXED, f"Ticket {ticket.code} keeps the reporter it was "
                                                                 "recorded with; record another ticket instead."))


def _open_tasks(ticket: Ticket) -> bool:
    return TicketTask.objects.filter(ticket=ticket).exclude(status__in=[TaskStatus.DONE, TaskStatus.SKIPPED]).exists()


def do_update_ticket(request: UpdateTicketRequest) -> Ticket:
    from modules.grievance.services import workflows
    from modules.grievance.services.tickets import announce_assignments

    ticket, changes, now = request.ticket, dict(request.changes), clock.now()
    category = config().categories.get(changes.get("category", ticket.category))
    for name, value in changes.items():
        setattr(ticket, name, value)
    fields = [name.removesuffix("_id") if name.endswith("_id") else name for name in changes]
    reassigned = "attending_staff_id" in changes
    if request.recategorised:
        # the SLA runs from when the complaint arrived, at the new category's pace
        ticket.resolution = category.resolution_time if category else config().default_resolution_time
        ticket.due_date = common.due_after(ticket.date_created, category)
        ticket.next_escalation_at, ticket.is_overdue = ticket.due_date, ticket.due_date <= now
        ticket.escalation_level = 0
        fields += ["resolution", "due_date", "next_escalation_at", "is_overdue", "escalation_level"]
        workflow = config().workflows.get(category.workflow) if category and category.workflow else None
        router = Router([*(category.handler_roles if category else ()), *(s.role for s in workflow.steps)]
                        if workflow else (category.handler_roles if category else ()), config().national_lead_role)
        if not reassigned and category is not None:
            route = router.route(category.handler_roles, ticket.location_id)
            ticket.attending_staff_id, ticket.assigned_location_id = route.user_id, route.location_id
            fields += ["attending_staff", "assigned_location"]
            reassigned = True
        workflows.start([ticket], router, now)
    if changes.get("status") == TicketStatus.RESOLVED:
        ticket.resolved_at = now
        fields.append("resolved_at")
    core_services.save_versioned(ticket, _user(request.actor), sorted(set(fields)))
    if reassigned:
        announce_assignments([ticket], "assigned")
    if changes.get("status") == TicketStatus.RESOLVED:
        _resolved_after_commit(ticket.pk, None)
    return ticket


def _user(actor: Any) -> Any:
    return actor


def _resolved_after_commit(ticket_id: Any, comment_id: Any) -> None:
    def fire() -> None:
        from core.hooks import hook

        hook().grievance_ticket_resolved(ticket_id=ticket_id, comment_id=comment_id)

    transaction.on_commit(fire, robust=True)


@dataclass
class DeleteTicketsRequest:
    actor: Any
    tickets: list[Ticket]


def check_delete_tickets(actor: Any, ticket_ids: list[Any]) -> DeleteTicketsRequest:
    common.require(actor, TICKET_DELETE)
    return DeleteTicketsRequest(actor, [common.ticket_for_change(actor, pk) for pk in ticket_ids])


def do_delete_tickets(request: DeleteTicketsRequest) -> list[Ticket]:
    return [core_services.set_deleted(t, _user(request.actor), True) for t in request.tickets]


@dataclass
class ResolveRequest:
    actor: Any
    ticket: Ticket
    comment: Comment


def check_resolve_by_comment(actor: Any, comment_id: Any) -> ResolveRequest:
    common.require(actor, TICKET_RESOLVE)
    comment = Comment.objects.filter(pk=comment_id).first()
    if comment is None:
        raise ServiceError(E.COMMENT_NOT_FOUND, f"Comment {comment_id} does not exist or is not visible to you.", "id")
    try:
        ticket = common.ticket_for_change(actor, comment.ticket_id)
    except ServiceError as exc:
        if exc.code == E.TICKET_NOT_FOUND:
            raise ServiceError(E.COMMENT_NOT_FOUND, f"Comment {comment_id} does not exist or is not visible to you.",
                               "id") from exc
        raise
    if ticket.status not in OPEN_STATUSES:
        raise ServiceError(E.ALREADY_RESOLVED, f"Ticket {ticket.code} is already {ticket.status}.", "id")
    if _open_tasks(ticket):
        raise ServiceError(E.WORKFLOW_OPEN, f"Ticket {ticket.code} still has open workflow tasks.", "id")
    return ResolveRequest(actor, ticket, comment)


def do_resolve_by_comment(request: ResolveRequest) -> Ticket:
    ticket, comment, now = request.ticket, request.comment, clock.now()
    comment.is_resolution = True
    try:
        with transaction.atomic():
            core_services.save_versioned(comment, _user(request.actor), ["is_resolution"])
    except IntegrityError as exc:  # the one-resolution index: another comment won meanwhile
        raise ServiceError(E.ALREADY_RESOLVED, f"Ticket {ticket.code} already has a resolution comment.", "id") from exc
    ticket.status, ticket.resolved_at = TicketStatus.RESOLVED, now
    core_services.save_versioned(ticket, _user(request.actor), ["status", "resolved_at"])
    _resolved_after_commit(ticket.pk, comment.pk)
    return ticket


def check_reopen_ticket(actor: Any, ticket_id: Any) -> UpdateTicketRequest:
    common.require(actor, TICKET_RESOLVE)
    ticket = common.ticket_for_change(actor, ticket_id)
    if ticket.status in OPEN_STATUSES:
        raise ServiceError(E.NOT_RESOLVED, f"Ticket {ticket.code} is {ticket.status}; only a resolved or closed "
                                           "ticket can be reopened.", "id")
    return UpdateTicketRequest(actor, ticket, {"status": TicketStatus.OPEN})


def do_reopen_ticket(request: UpdateTicketRequest) -> Ticket:
    """Open again with a fresh resolution time; the old resolution comment stops being one."""
    ticket, now = request.ticket, clock.now()
    for comment in Comment.objects.filter(ticket=ticket, is_resolution=True):
        comment.is_resolution = False
        core_services.save_versioned(comment, _user(request.actor), ["is_resolution"])
    ticket.status, ticket.resolved_at = TicketStatus.OPEN, None
    ticket.due_date = common.due_after(now, config().categories.get(ticket.category))
    ticket.next_escalation_at, ticket.is_overdue, ticket.escalation_level = ticket.due_date, False, 0
    core_services.save_versioned(ticket, _user(request.actor), ["status", "resolved_at", "due_date",
                                                                "next_escalation_at", "is_overdue", "escalation_level"])
    return ticket


def close_finished(ticket: Ticket, actor: Any, now: datetime) -> None:
    """Every workflow of the ticket finished: it is closed (and resolved, if it was not)."""
    was_open = ticket.status in OPEN_STATUSES
    ticket.status = TicketStatus.CLOSED
    ticket.resolved_at = ticket.resolved_at or now
    core_services.save_versioned(ticket, _user(actor), ["status", "resolved_at"])
    if was_open:
        _resolved_after_commit(ticket.pk, None)
