"""The grievance queries: ``tickets``, ``comments``, ``ticketAttachments``, ``ticketTasks``,
``grievanceConfig``, ``grievanceSummary``, ``ticketAccessLog``, ``grievanceNotifications``."""

from __future__ import annotations

from typing import Any

import graphene
from django.db.models import Count, Q
from graphene_django import DjangoObjectType

from core.graphql.fields import ProtectedConnectionField, ProtectedField
from core.graphql.permissions import mark
from core.graphql.scalars import UUID
from core.graphql.types import CountableConnection
from modules.grievance import access
from modules.grievance.configuration import config
from modules.grievance.models import AccessLog, Notification, Ticket
from modules.grievance.permissions import ACCESS_LOG_VIEW, NOTIFICATION_VIEW, TICKET_SEARCH
from modules.grievance.schema.fields import TicketConnectionField, TicketPartsField
from modules.grievance.schema.types import (
    AttachmentGQLType,
    CommentGQLType,
    TicketGQLType,
    TicketStatusEnum,
    TicketTaskGQLType,
)
from modules.location.services import descendants_of


class ResolutionTimeType(graphene.ObjectType):
    category = graphene.String(required=True)
    resolution_time = graphene.String(required=True)


class GrievanceCategoryType(graphene.ObjectType):
    slug = graphene.String(required=True)
    path = graphene.String(required=True)
    name = graphene.String(required=True)
    priority = graphene.String(required=True)
    resolution_time = graphene.String(required=True)
    default_flags = graphene.List(graphene.NonNull(graphene.String), required=True)
    handler_roles = graphene.List(graphene.NonNull(graphene.String), required=True)
    workflow = graphene.String()
    is_sensitive = graphene.Boolean(required=True)
    children = graphene.List(graphene.NonNull(lambda: GrievanceCategoryType), required=True)


class GrievanceFlagType(graphene.ObjectType):
    code = graphene.String(required=True)
    name = graphene.String(required=True)
    priority = graphene.String()
    is_sensitive = graphene.Boolean(required=True)


class GrievanceConfigType(graphene.ObjectType):
    """What the frontend's pickers offer (``grievanceTypes``: every category path)."""

    grievance_types = graphene.List(graphene.NonNull(graphene.String), required=True)
    grievance_flags = graphene.List(graphene.NonNull(graphene.String), required=True)
    grievance_channels = graphene.List(graphene.NonNull(graphene.String), required=True)
    grievance_default_resolutions_by_category = graphene.List(graphene.NonNull(ResolutionTimeType), required=True)
    grievance_categories = graphene.List(graphene.NonNull(GrievanceCategoryType), required=True,
                                         description="the category tree")
    grievance_flags_detailed = graphene.List(graphene.NonNull(GrievanceFlagType), required=True)

    def resolve_grievance_types(self, info: Any) -> list[str]:
        return list(config().categories)

    def resolve_grievance_flags(self, info: Any) -> list[str]:
        return list(config().flags)

    def resolve_grievance_channels(self, info: Any) -> list[str]:
        return list(config().channels)

    def resolve_grievance_default_resolutions_by_category(self, info: Any) -> list[ResolutionTimeType]:
        return [ResolutionTimeType(category=p, resolution_time=c.resolution_time) for p, c in config().categories.items()]

    def resolve_grievance_categories(self, info: Any) -> list[GrievanceCategoryType]:
        categories = config().categories

        def build(path: str) -> GrievanceCategoryType:
            c = categories[path]
            return GrievanceCategoryType(
                slug=path.rsplit("|", 1)[-1], path=path, name=c.name, priority=c.priority,
                resolution_time=c.resolution_time, default_flags=list(c.default_flags), handler_roles=list(c.handler_roles),
                workflow=c.workflow, is_sensitive=bool(c.access),
                children=[build(p) for p, child in categories.items() if child.parent == path])

        return [build(p) for p, c in categories.items() if c.parent is None]

    def resolve_grievance_flags_detailed(self, info: Any) -> list[GrievanceFlagType]:
        return [GrievanceFlagType(code=f.code, name=f.name, priority=f.priority, is_sensitive=f.access is not None)
                for f in config().flags.values()]


class CountType(graphene.ObjectType):
    key = graphene.String(required=True)
    count = graphene.Int(required=True)


class GrievanceSummaryType(graphene.ObjectType):
    """Counts over the tickets the caller may see (scope and sensitivity applied)."""

    total = graphene.Int(required=True)
    overdue = graphene.Int(required=True)
    by_status = graphene.List(graphene.NonNull(CountType), required=True)
    by_category = graphene.List(graphene.NonNull(CountType), required=True)


class AccessLogType(DjangoObjectType):
    class Meta:
        model = AccessLog
        interfaces = (graphene.relay.Node,)
        connection_class = CountableConnection
        filter_fields = {"ticket_id": ["exact"], "at": ["gte", "lte"]}
        fields = ("id", "ticket", "user", "path", "level", "at")


class NotificationType(DjangoObjectType):
    class Meta:
        model = Notification
        name = "GrievanceNotificationType"
        interfaces = (graphene.relay.Node,)
        connection_class = CountableConnection
        filter_fields = {"status": ["exact"], "channel": ["exact"], "event": ["exact"]}
        fields = ("id", "event", "channel", "recipient", "address", "subject", "status", "attempts", "next_attempt_at",
                  "last_error", "created_at", "sent_at")


def _access_log(queryset: Any, info: Any, args: dict[str, Any]) -> Any:
    # only reads of tickets the reader may see themselves
    visible = access.visible_tickets(info.context.user, Ticket.all_objects.all()).values("pk")
    return queryset.filter(ticket_id__in=visible).select_related("user", "ticket")


def _notifications(queryset: Any, info: Any, args: dict[str, Any]) -> Any:
    return queryset.select_related("recipient")


class Query(graphene.ObjectType):
    tickets = TicketConnectionField(
        TicketGQLType, permission=TICKET_SEARCH,
        order_fields=["code", "title", "reporter_id", "priority", "status", "category", "version", "date_created",
                      "due_date", "date_of_incident", "escalation_level"])
    comments = TicketPartsField(CommentGQLType, permission=TICKET_SEARCH, order_fields=["date_created"], path="comments")
    ticket_attachments = TicketPartsField(AttachmentGQLType, permission=TICKET_SEARCH, path="attachments",
                                          order_fields=["date_created", "filename"])
    ticket_tasks = TicketPartsField(TicketTaskGQLType, permission=TICKET_SEARCH, path="tasks",
                                    order_fields=["position", "due_at", "opened_at"])
    # The deployment's vocabulary (types, flags, channels, resolution times), no ticket: openIMIS's
    # frontend reads it while loading, before anyone logs in, so it is public like moduleConfigurations.
    grievance_config = mark(graphene.Field(GrievanceConfigType, required=True), "public")
    grievance_summary = ProtectedField(GrievanceSummaryType, permission=TICKET_SEARCH, required=True,
                                       location=UUID(), status=TicketStatusEnum())
    ticket_access_log = ProtectedConnectionField(AccessLogType, permission=ACCESS_LOG_VIEW, order_fields=["at"],
                                                 queryset_hook=_access_log)
    grievance_notifications = ProtectedConnectionField(NotificationType, permission=NOTIFICATION_VIEW,
                                                       order_fields=["created_at", "next_attempt_at"],
                                                       queryset_hook=_notifications)

    def resolve_grievance_config(self, info: Any) -> GrievanceConfigType:
        return GrievanceConfigType()

    def resolve_grievance_summary(self, info: Any, location: Any = None, status: Any = None) -> GrievanceSummaryType:
        tickets = access.visible_tickets(info.context.user, Ticket.objects.all())
        if location is not None:
            tickets = tickets.filter(descendants_of([location], "location"))
        if status is not None:
            tickets = tickets.filter(status=getattr(status, "value", status))
        totals = tickets.aggregate(total=Count("id"), overdue=Count("id", filter=Q(is_overdue=True)))
        by_status = tickets.values("status").annotate(n=Count("id")).order_by("status")
        by_category = tickets.values("category").annotate(n=Count("id")).order_by("category")
        return GrievanceSummaryType(
            total=totals["total"], overdue=totals["overdue"],
            by_status=[CountType(key=r["status"], count=r["n"]) for r in by_status],
            by_category=[CountType(key=r["category"], count=r["n"]) for r in by_category])
