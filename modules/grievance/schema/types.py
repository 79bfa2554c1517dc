"""GraphQL types of tickets and what hangs off them, in the openIMIS grievance frontend's shapes.

Every field of a ticket goes through :func:`shown`: a restricted reader gets ``[Restricted]``
(text) or ``null`` for what their rules do not let them see, and a category's anonymised
fields are shown only on a ticket's own page (``tickets(id:)``, ``node``) to full readers.
``reporter`` and ``commenter`` are JSON text holding JSON text, as the frontend parses them
(``JSON.parse(JSON.parse(…))``).
"""

from __future__ import annotations

import json
from typing import Any

import graphene
from django.db.models import QuerySet

from core.graphql.choices import choice_enum
from core.graphql.scalars import UUID
from core.graphql.types import (
    CoreNode,
    CountableConnection,
    UserType,  # noqa: F401 - resolves userCreated / attendingStaff
)
from modules.grievance import access
from modules.grievance.configuration import PRIORITIES, config
from modules.grievance.models import (
    Attachment,
    Comment,
    TaskStatus,
    Ticket,
    TicketStatus,
    TicketTask,
)
from modules.grievance.schema.filters import CommentFilter, RelatedFilter, TaskFilter, TicketFilter
from modules.location.schema import LocationGQLType  # noqa: F401 - resolves location

TicketStatusEnum = choice_enum("TicketStatusEnum", TicketStatus, "Where a ticket stands.")
TicketPriorityEnum = graphene.Enum("TicketPriorityEnum", [(p, p) for p in PRIORITIES])
ReporterTypeEnum = graphene.Enum("ReporterTypeEnum", [("individual", "individual"), ("beneficiary", "beneficiary"),
                                                      ("user", "user")])
TaskStatusEnum = choice_enum("TicketTaskStatusEnum", TaskStatus, "Where a step of a ticket's workflow stands.")
AccessLevelEnum = graphene.Enum("TicketAccessLevelEnum", [(v, v) for v in (access.FULL, access.RESTRICTED)])


def seen(ticket: Ticket, info: Any) -> tuple[str, frozenset[str], frozenset[str]]:
    """(level, visible fields, anonymised fields) of ``ticket`` for this request's reader."""
    cached = getattr(ticket, "_grievance_seen", None)
    if cached is None:
        level, visible = access.level_of(access.viewer(info.context.user), ticket.category, ticket.flags)
        category = config().categories.get(ticket.category)
        anonymised = category.anonymised_fields if category else frozenset()
        if level == access.FULL and getattr(ticket, "_grievance_detail", False):
            anonymised = frozenset()
        cached = (level, visible if level != access.HIDDEN else frozenset({"code"}), anonymised)
        ticket._grievance_seen = cached
    return cached


def shown(name: str, text: bool = False) -> Any:
    """A resolver for ``name`` that hides it from readers who may not see it."""

    def decorate(resolve: Any) -> Any:
        def resolver(ticket: Ticket, info: Any, **kwargs: Any) -> Any:
            _, visible, anonymised = seen(ticket, info)
            if name not in visible:
                return access.RESTRICTED_TEXT if text else None
            if name in anonymised:
                return access.ANONYMISED_TEXT if text else None
            return resolve(ticket, info, **kwargs)

        return resolver

    return decorate


def _person(individual: Any) -> dict[str, Any]:
    return {"id": str(individual.pk), "uuid": str(individual.pk), "firstName": individual.first_name,
            "lastName": individual.last_name, "dob": str(individual.dob), "jsonExt": json.dumps(individual.json_ext or {})}


def reporter_json(kind: str, named: Any, individual: Any, user: Any) -> str | None:
    if kind == "individual" and individual is not None:
        return json.dumps(_person(individual))
    if kind == "beneficiary" and individual is not None:
        return json.dumps({"id": str(named), "individual": _person(individual), "jsonExt": _person(individual)["jsonExt"]})
    if kind == "user" and user is not None:
        return json.dumps({"id": str(user.pk), "username": user.username, "lastName": user.last_name,
                           "otherNames": user.first_name})
    return None


class PaymentStatusType(graphene.ObjectType):
    """The linked payment as it is now, read through the payroll module when it is enabled."""

    id = UUID(required=True)
    code = graphene.String(required=True)
    status = graphene.String(required=True)
    amount = graphene.Int(required=True, description="minor units")
    currency = graphene.String(required=True)
    date_paid = graphene.DateTime()
    provider_transaction_id = graphene.String()
    status_message = graphene.String()
    payroll = graphene.String()


class ContactType(graphene.ObjectType):
    name = graphene.String()
    phone = graphene.String()
    email = graphene.String()
    address = graphene.String()


class TicketGQLType(CoreNode):
    class Meta:
        model = Ticket
        name = "TicketGQLType"
        filterset_class = TicketFilter
        interfaces = (graphene.relay.Node,)
        connection_class = CountableConnection
        fields = ("id", "version", "date_updated", "is_deleted", "escalation_level", "is_overdue")

    date_created = graphene.DateTime()
    code = graphene.String()
    title = graphene.String()
    description = graphene.String()
    category = graphene.String()
    flags = graphene.String(description="comma-separated flag codes, as the frontend sends them")
    channel = graphene.String()
    priority = TicketPriorityEnum()
    status = TicketStatusEnum()
    date_of_incident = graphene.Date()
    date_submitted = graphene.Date()
    due_date = graphene.DateTime()
    resolution = graphene.String(description='the resolution time, "days,hours"')
    reporter = graphene.JSONString()
    reporter_id = graphene.String()
    reporter_type = ReporterTypeEnum()
    reporter_type_name = ReporterTypeEnum()
    reporter_first_name = graphene.String()
    reporter_last_name = graphene.String()
    reporter_dob = graphene.String()
    attending_staff = graphene.Field("core.graphql.types.UserType")
    location = graphene.Field("modules.location.schema.LocationGQLType")
    household_id = UUID()
    beneficiary_id = UUID()
    payment = graphene.Field(PaymentStatusType)
    contact = graphene.Field(ContactType, description="how to reach an anonymous reporter")
    json_ext = graphene.JSONString()
    is_history = graphene.Boolean(required=True)
    is_sensitive = graphene.Boolean(required=True)
    access_level = AccessLevelEnum(description="FULL or RESTRICTED: what of this ticket you may see")
    tasks = graphene.List(graphene.NonNull(lambda: TicketTaskGQLType))

    # what these resolvers read, joined only when asked for (core.graphql.fields.select_selection)
    selection_reads = {
        "reporter": ("reporter_individual", "reporter_user"),
        "reporterFirstName": ("reporter_individual__first_name",),
        "reporterLastName": ("reporter_individual__last_name",),
        "reporterDob": ("reporter_individual__dob",),
        "contact": ("contact",),
    }

    @classmethod
    def list_queryset(cls, queryset: QuerySet, info: Any) -> QuerySet:
        return access.visible_tickets(info.context.user, queryset)

    @classmethod
    def get_node(cls, info: Any, id: Any) -> Any:
        ticket = super().get_node(info, id)
        if ticket is not None:
            ticket._grievance_detail = True
            access.log_reads(info.context.user, [ticket], "node")
        return ticket

    resolve_date_created = shown("dateCreated")(lambda t, i: t.date_created)
    resolve_code = shown("code", True)(lambda t, i: t.code)
    resolve_title = shown("title", True)(lambda t, i: t.title)
    resolve_description = shown("description", True)(lambda t, i: t.description)
    resolve_category = shown("category", True)(lambda t, i: t.category)
    resolve_flags = shown("flags", True)(lambda t, i: ",".join(t.flags))
    resolve_channel = shown("channel", True)(lambda t, i: t.channel)
    resolve_priority = shown("priority")(lambda t, i: t.priority)
    resolve_status = shown("status")(lambda t, i: str(t.status))
    resolve_date_of_incident = shown("dateOfIncident")(lambda t, i: t.date_of_incident)
    resolve_date_submitted = shown("dateOfIncident")(lambda t, i: t.date_submitted)
    resolve_due_date = shown("dueDate")(lambda t, i: t.due_date)
    resolve_resolution = shown("resolution", True)(lambda t, i: t.resolution)
    resolve_reporter = shown("reporter")(lambda t, i: reporter_json(t.reporter_kind, t.reporter_id,
                                                                     t.reporter_individual, t.reporter_user))
    resolve_reporter_id = shown("reporter")(lambda t, i: str(t.reporter_id) if t.reporter_id else None)
    resolve_reporter_type = shown("reporter")(lambda t, i: t.reporter_kind or None)
    resolve_reporter_type_name = shown("reporter")(lambda t, i: t.reporter_kind or None)
    resolve_reporter_first_name = shown("reporter", True)(
        lambda t, i: t.reporter_individual.first_name if t.reporter_individual else None)
    resolve_reporter_last_name = shown("reporter", True)(
        lambda t, i: t.reporter_individual.last_name if t.reporter_individual else None)
    resolve_reporter_dob = shown("reporter")(
        lambda t, i: str(t.reporter_individual.dob) if t.reporter_individual else None)
    resolve_attending_staff = shown("attendingStaff")(lambda t, i: t.attending_staff)
    resolve_location = shown("location")(lambda t, i: t.location)
    resolve_household_id = shown("reporter")(lambda t, i: t.household_id)
    resolve_beneficiary_id = shown("reporter")(lambda t, i: t.beneficiary_id)
    resolve_json_ext = shown("jsonExt")(lambda t, i: _json_ext(t))
    resolve_contact = shown("contact")(lambda t, i: _contact(t))

    @staticmethod
    @shown("payment")
    def resolve_payment(ticket: Ticket, info: Any) -> Any:
        if ticket.payment_id is None:
            return None
        from modules.grievance import links

        ref = getattr(ticket, "_payment_ref", None) or links.payments([ticket.payment_id]).get(ticket.payment_id)
        if ref is None:
            return None
        return PaymentStatusType(id=ref.payment_id, code=ref.code, status=ref.status, amount=ref.amount,
                                 currency=ref.currency, date_paid=ref.date_paid, payroll=ref.payroll,
                                 provider_transaction_id=ref.provider_transaction_id, status_message=ref.status_message)

    @staticmethod
    def resolve_is_history(ticket: Ticket, info: Any) -> bool:
        return bool(getattr(ticket, "_is_history", False))

    @staticmethod
    def resolve_is_sensitive(ticket: Ticket, info: Any) -> bool:
        return access.is_sensitive(ticket.category, ticket.flags)

    @staticmethod
    def resolve_access_level(ticket: Ticket, info: Any) -> str | None:
        level = seen(ticket, info)[0]
        return level if level != access.HIDDEN else None

    @staticmethod
    def resolve_tasks(ticket: Ticket, info: Any) -> Any:
        if seen(ticket, info)[0] != access.FULL or getattr(ticket, "_is_history", False):
            return []
        return sorted(ticket.tasks.all(), key=lambda task: (task.workflow, task.position))


def _contact(ticket: Ticket) -> Any:
    from django.core.exceptions import ObjectDoesNotExist

    try:
        return ticket.contact
    except ObjectDoesNotExist:
        return None


def _json_ext(ticket: Ticket) -> dict[str, Any]:
    """The ticket's fields plus ``comment_ids`` (the resolution comment), which the frontend
    reads to show a closed ticket's resolution."""
    data = dict(ticket.json_ext or {})
    resolution = getattr(ticket, "_resolution_comment_ids", None)
    if resolution is None:
        resolution = [str(pk) for pk in Comment.objects.filter(ticket_id=ticket.pk, is_resolution=True)
                      .values_list("pk", flat=True)]
    data["comment_ids"] = resolution
    return data


class CommentGQLType(CoreNode):
    class Meta:
        model = Comment
        name = "CommentGQLType"
        filterset_class = CommentFilter
        interfaces = (graphene.relay.Node,)
        connection_class = CountableConnection
        fields = ("id", "comment", "is_resolution", "date_created", "version", "is_deleted")

    ticket = graphene.Field(TicketGQLType)
    commenter = graphene.JSONString()
    commenter_id = graphene.String()
    commenter_type = ReporterTypeEnum()
    commenter_type_name = ReporterTypeEnum()
    commenter_first_name = graphene.String()
    commenter_last_name = graphene.String()
    commenter_dob = graphene.String()

    @classmethod
    def list_queryset(cls, queryset: QuerySet, info: Any) -> QuerySet:
        return visible_comments(info.context.user, queryset.select_related(
            "ticket", "commenter_individual", "commenter_user"))

    def resolve_commenter(self, info: Any) -> Any:
        return reporter_json(self.commenter_kind, self.commenter_id, self.commenter_individual, self.commenter_user)

    def resolve_commenter_id(self, info: Any) -> Any:
        return str(self.commenter_id) if self.commenter_id else None

    def resolve_commenter_type(self, info: Any) -> Any:
        return self.commenter_kind or None

    def resolve_commenter_type_name(self, info: Any) -> Any:
        return self.commenter_kind or None

    def resolve_commenter_first_name(self, info: Any) -> Any:
        return self.commenter_individual.first_name if self.commenter_individual else None

    def resolve_commenter_last_name(self, info: Any) -> Any:
        return self.commenter_individual.last_name if self.commenter_individual else None

    def resolve_commenter_dob(self, info: Any) -> Any:
        return str(self.commenter_individual.dob) if self.commenter_individual else None


def visible_comments(user: Any, queryset: QuerySet) -> QuerySet:
    """Comments of tickets the reader sees in full, or with ``comments`` among their fields."""
    return access.without_hidden_part(user, access.visible_related(user, queryset), "comments")


class AttachmentGQLType(CoreNode):
    class Meta:
        model = Attachment
        name = "TicketAttachmentGQLType"
        filterset_class = RelatedFilter
        interfaces = (graphene.relay.Node,)
        connection_class = CountableConnection
        fields = ("id", "title", "filename", "mime_type", "size", "date_created", "version", "is_deleted")

    ticket = graphene.Field(TicketGQLType)
    url = graphene.String(required=True, description="where its ticket's readers download it")

    @classmethod
    def list_queryset(cls, queryset: QuerySet, info: Any) -> QuerySet:
        user = info.context.user
        return access.without_hidden_part(user, access.visible_related(user, queryset.select_related("ticket")),
                                          "attachments")

    def resolve_url(self, info: Any) -> str:
        return f"/api/grievance/attachment/{self.pk}/download"


class TicketTaskGQLType(CoreNode):
    class Meta:
        model = TicketTask
        name = "TicketTaskGQLType"
        filterset_class = TaskFilter
        interfaces = (graphene.relay.Node,)
        connection_class = CountableConnection
        fields = ("id", "workflow", "step", "position", "name", "role", "action", "assignee", "days", "opened_at",
                  "due_at", "finished_at", "finished_by", "reason", "result", "approval_task", "version")

    status = TaskStatusEnum(required=True)
    ticket = graphene.Field(TicketGQLType)

    def resolve_status(self, info: Any) -> str:
        return str(self.status)

    @classmethod
    def list_queryset(cls, queryset: QuerySet, info: Any) -> QuerySet:
        user = info.context.user
        return access.without_hidden_part(user, access.visible_related(user, queryset.select_related(
            "ticket", "assignee")), None)
