"""The grievance mutations, in the openIMIS frontend's input shapes (``createTicket`` sends
``status: "RECEIVED"`` quoted, ``updateTicket`` sends ``status: OPEN`` unquoted, ``flags`` as
comma-separated text). Each ``perform`` is a ``check_*`` and a ``do_*`` from services."""

from __future__ import annotations

from typing import Any

import graphene

from core.graphql.mutations import CoreMutation
from core.graphql.scalars import UUID
from modules.grievance import permissions as perm
from modules.grievance.errors import GrievanceErrorCode
from modules.grievance.schema.types import (
    AttachmentGQLType,
    CommentGQLType,
    TicketGQLType,
    TicketStatusEnum,
    TicketTaskGQLType,
)
from modules.grievance.services import changes, comments, exports, tickets, workflows


class GrievanceMutation(CoreMutation):
    class Meta:
        abstract = True

    error_codes = GrievanceErrorCode


class TicketFields(CoreMutation.Input):
    title = graphene.String()
    description = graphene.String()
    category = graphene.String()
    flags = graphene.String(description="comma-separated flag codes")
    channel = graphene.String()
    priority = graphene.String(description="Critical, High, Normal or Low; never below the category's and flags'")
    date_of_incident = graphene.Date()
    date_submitted = graphene.Date()
    resolution = graphene.String(description='the category\'s resolution time, "days,hours" (fixed by it)')
    due_date = graphene.String(description="refused: the due date follows from the category")
    attending_staff_id = UUID()
    reporter_id = graphene.String()
    reporter_type = graphene.String(description="individual, beneficiary or user")
    name_of_complainant = graphene.String()
    json_ext = graphene.JSONString()


class CreateTicketMutation(GrievanceMutation):
    """Record a ticket; its code, priority, due date and attending staff follow from the rules."""

    permission = perm.TICKET_CREATE
    ticket = graphene.Field(TicketGQLType)

    class Input(TicketFields):
        id = graphene.String(description="ignored: a new ticket gets its own id")
        code = graphene.String(description="refused: codes are generated")
        status = graphene.String(description="RECEIVED (default), OPEN or IN_PROGRESS")
        location_id = UUID()
        household_id = UUID()
        beneficiary_id = UUID()
        payment_id = UUID()
        contact_phone = graphene.String()
        contact_email = graphene.String()
        contact_address = graphene.String()

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        data.pop("id", None)
        created = tickets.do_create_tickets(tickets.check_create_ticket(user, **data))
        return {"ticket": created[0]}


class UpdateTicketMutation(GrievanceMutation):
    """Change a ticket; a new category recomputes its due date and routing."""

    permission = perm.TICKET_UPDATE
    ticket = graphene.Field(TicketGQLType)

    class Input(TicketFields):
        id = UUID(required=True)
        version = graphene.Int()
        status = TicketStatusEnum()

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        request = changes.check_update_ticket(user, data.pop("id"), version=data.pop("version", None), **data)
        return {"ticket": changes.do_update_ticket(request)}


class DeleteTicketMutation(GrievanceMutation):
    permission = perm.TICKET_DELETE
    tickets = graphene.List(graphene.NonNull(TicketGQLType))

    class Input(CoreMutation.Input):
        ids = graphene.List(graphene.NonNull(UUID), required=True)

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        return {"tickets": changes.do_delete_tickets(changes.check_delete_tickets(user, data["ids"]))}


class CreateCommentMutation(GrievanceMutation):
    permission = perm.COMMENT_CREATE
    comment = graphene.Field(CommentGQLType)

    class Input(CoreMutation.Input):
        uuid = graphene.String(description="ignored: a new comment gets its own id")
        ticket_id = UUID(required=True)
        commenter_id = UUID()
        commenter_type = graphene.String(description="user (default: you), individual or beneficiary")
        comment = graphene.String(required=True)

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        request = comments.check_create_comment(user, data["ticket_id"], data["comment"],
                                                commenter_type=data.get("commenter_type"),
                                                commenter_id=data.get("commenter_id"))
        return {"comment": comments.do_create_comment(request)}


class ResolveGrievanceByCommentMutation(GrievanceMutation):
    """Resolve the ticket with this comment as its resolution (one per ticket)."""

    permission = perm.TICKET_RESOLVE
    ticket = graphene.Field(TicketGQLType)

    class Input(CoreMutation.Input):
        id = UUID(required=True, description="the comment")

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        ticket = changes.do_resolve_by_comment(changes.check_resolve_by_comment(user, data["id"]))
        return {"ticket": ticket}


class ReopenTicketMutation(GrievanceMutation):
    permission = perm.TICKET_RESOLVE
    ticket = graphene.Field(TicketGQLType)

    class Input(CoreMutation.Input):
        id = UUID(required=True)

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        ticket = changes.do_reopen_ticket(changes.check_reopen_ticket(user, data["id"]))
        return {"ticket": ticket}


class CreateTicketAttachmentMutation(GrievanceMutation):
    """Attach a file uploaded with ``POST /api/upload?purpose=grievance.attachment``."""

    permission = perm.ATTACHMENT_CREATE
    attachment = graphene.Field(AttachmentGQLType)

    class Input(CoreMutation.Input):
        ticket_id = UUID(required=True)
        upload_id = UUID(required=True)
        title = graphene.String()

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        request = comments.check_create_attachment(user, data["ticket_id"], data["upload_id"], data.get("title") or "")
        return {"attachment": comments.do_create_attachment(request)}


class CompleteTicketTaskMutation(GrievanceMutation):
    """Finish a workflow task of your role (``newRecipientId`` for a recipient replacement)."""

    permission = perm.TASK_ACT
    task = graphene.Field(TicketTaskGQLType)

    class Input(CoreMutation.Input):
        id = UUID(required=True)
        note = graphene.String()
        new_recipient_id = UUID()

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        request = workflows.check_complete_task(user, data["id"], data.get("note") or "", data.get("new_recipient_id"))
        return {"task": workflows.do_task(request)}


class SkipTicketTaskMutation(GrievanceMutation):
    permission = perm.TASK_ACT
    task = graphene.Field(TicketTaskGQLType)

    class Input(CoreMutation.Input):
        id = UUID(required=True)
        reason = graphene.String(required=True)

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        return {"task": workflows.do_task(workflows.check_skip_task(user, data["id"], data["reason"]))}


class ReassignTicketTaskMutation(GrievanceMutation):
    permission = perm.TASK_ACT
    task = graphene.Field(TicketTaskGQLType)

    class Input(CoreMutation.Input):
        id = UUID(required=True)
        user_id = UUID(required=True)
        reason = graphene.String()

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        request = workflows.check_reassign_task(user, data["id"], data["user_id"], data.get("reason") or "")
        return {"task": workflows.do_task(request)}


class ExportTicketsMutation(GrievanceMutation):
    """Export the tickets you may read (a background job; download from its result)."""

    permission = perm.TICKET_EXPORT
    job = graphene.Field("core.graphql.jobs.JobType")

    class Input(CoreMutation.Input):
        status = TicketStatusEnum()
        category = graphene.String()
        location_id = UUID()

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        request = exports.check_export_tickets(user, status=getattr(data.get("status"), "value", data.get("status")),
                                               category=data.get("category"), location_id=data.get("location_id"))
        return {"job": exports.do_export_tickets(request)}


class Mutation(graphene.ObjectType):
    create_ticket = CreateTicketMutation.Field()
    update_ticket = UpdateTicketMutation.Field()
    delete_ticket = DeleteTicketMutation.Field()
    create_comment = CreateCommentMutation.Field()
    resolve_grievance_by_comment = ResolveGrievanceByCommentMutation.Field()
    reopen_ticket = ReopenTicketMutation.Field()
    create_ticket_attachment = CreateTicketAttachmentMutation.Field()
    complete_ticket_task = CompleteTicketTaskMutation.Field()
    skip_ticket_task = SkipTicketTaskMutation.Field()
    reassign_ticket_task = ReassignTicketTaskMutation.Field()
    export_tickets = ExportTicketsMutation.Field()
