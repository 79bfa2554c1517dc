"""The ``tickets`` list: the frontend's filters, its history views (``showHistory``,
``ticketVersion``), and an access-log entry for every sensitive ticket a page shows."""

from __future__ import annotations

from typing import Any

import graphene
from django.db.models import QuerySet
from django.db.models.fields.related import ForeignKey
from graphql import GraphQLError

from core.errors import CoreErrorCode
from core.graphql.fields import ProtectedConnectionField, selects
from core.graphql.scalars import UUID
from core.models import HistoryEntry
from modules.grievance import access
from modules.grievance.models import Ticket
from modules.grievance.schema.types import TicketStatusEnum
from modules.location.services import descendants_of

# which ticket field each filter searches: a restricted reader searching by a field they are
# not shown finds no restricted ticket by it
SEARCHED = (("code", "code"), ("title", "title"), ("priority", "priority"), ("category", "category"),
            ("flags", "flags"), ("channel", "channel"), ("reporter_id", "reporter"), ("household_id", "reporter"),
            ("payment_id", "payment"), ("attending_staff", "attendingStaff"), ("date_of_incident", "dateOfIncident"),
            ("due_date", "dueDate"), ("date_created", "dateCreated"), ("is_overdue", "dueDate"),
            ("location", "location"), ("status", "status"))


def _searched(args: dict[str, Any]) -> set[str]:
    fields = set()
    for name, value in args.items():
        if value is None:
            continue
        base = name.split("__")[0]
        fields.update(part for argument, part in SEARCHED if argument == base)
    return fields


def _apply_extra(queryset: QuerySet, info: Any, args: dict[str, Any]) -> QuerySet:
    for part in _searched(args):
        queryset = access.without_hidden_part(info.context.user, queryset, part, ticket_path="")
    # the enum's values contain no other, so "contains OPEN" is "is OPEN" (and an index can serve it)
    for name, lookup in (("status__icontains", "status"), ("status", "status")):
        value = args.get(name)
        if value is not None:
            queryset = queryset.filter(**{lookup: getattr(value, "value", value)})
    if args.get("location") is not None:
        queryset = queryset.filter(descendants_of([args["location"]], "location"))
    return queryset


def from_snapshot(data: dict[str, Any]) -> Ticket:
    """A ticket as one ``core_history`` version holds it (not saved, not to be saved)."""
    values = {}
    for model_field in Ticket._meta.concrete_fields:
        raw = data.get(model_field.column)
        if raw is None:
            values[model_field.attname] = None
        elif isinstance(model_field, ForeignKey):
            values[model_field.attname] = model_field.target_field.to_python(raw)
        else:
            values[model_field.attname] = model_field.to_python(raw)
    values["flags"] = values.get("flags") or []
    ticket = Ticket(**values)
    ticket._state.adding = False
    return ticket


class TicketVersions:
    """Every version of the tickets of ``tickets`` (newest first per ticket), sliced lazily,
    for ``showHistory: true``; with ``version``, only that version."""

    def __init__(self, tickets: QuerySet, version: int | None = None, start: int = 0, stop: int | None = None,
                 entries: QuerySet | None = None) -> None:
        if entries is None:
            entries = HistoryEntry.objects.filter(table_name=Ticket._meta.db_table, row_id__in=tickets.values("pk"),
                                                  operation__in=["I", "U"])
            if version is not None:
                entries = entries.filter(data__version=version)
            entries = entries.order_by("row_id", "-id")
        self.entries, self.start, self.stop = entries, start, stop
        self._count: int | None = None

    def __len__(self) -> int:
        if self._count is None:
            total = self.entries.count()
            end = total if self.stop is None else min(self.stop, total)
            self._count = max(0, end - self.start)
        return self._count

    def __getitem__(self, item: Any) -> Any:
        if not isinstance(item, slice):
            return list(self)[item]
        begin = self.start + (item.start or 0)
        end = None if item.stop is None else self.start + item.stop
        if self.stop is not None:
            end = self.stop if end is None else min(end, self.stop)
        return TicketVersions(Ticket.objects.none(), entries=self.entries, start=begin, stop=end)

    def __iter__(self) -> Any:
        rows = list(self.entries.values_list("data", flat=True)[self.start:self.stop])
        tickets = [from_snapshot(data) for data in rows]
        current = dict(Ticket.all_objects.filter(pk__in=[t.pk for t in tickets]).values_list("pk", "version"))
        from django.db.models import prefetch_related_objects

        prefetch_related_objects(tickets, "reporter_individual", "reporter_user", "attending_staff", "location")
        for ticket in tickets:
            ticket._is_history = ticket.version != current.get(ticket.pk)
        return iter(tickets)


def _prefetch_links(tickets: list[Ticket], info: Any, *under: str) -> None:
    """What a page's tickets point to, read once for the page (not once per ticket) when the
    request shows it: their resolution comments (``jsonExt``), the payments they are about
    (``payment``) and their tasks (``tasks``), on the nodes or ``under`` them (a comment's
    ``ticket``). A page that shows none reads none of them."""
    from modules.grievance import links
    from modules.grievance.models import Comment

    if selects(info, *under, "jsonExt"):
        resolution: dict[Any, list[str]] = {t.pk: [] for t in tickets}
        for ticket_id, comment_id in Comment.objects.filter(ticket_id__in=list(resolution), is_resolution=True
                                                            ).values_list("ticket_id", "pk"):
            resolution[ticket_id].append(str(comment_id))
        for ticket in tickets:
            ticket._resolution_comment_ids = resolution.get(ticket.pk, [])
    if selects(info, *under, "payment"):
        payments = links.payments({t.payment_id for t in tickets if t.payment_id})
        for ticket in tickets:
            ticket._payment_ref = payments.get(ticket.payment_id) if ticket.payment_id else None
    if selects(info, *under, "tasks"):
        from django.db.models import Prefetch, prefetch_related_objects

        from modules.grievance.models import TicketTask

        prefetch_related_objects([t for t in tickets if not getattr(t, "_is_history", False)],
                                 Prefetch("tasks", queryset=TicketTask.objects.select_related("assignee")))


class TicketConnectionField(ProtectedConnectionField):
    def __init__(self, _type: Any, **kwargs: Any) -> None:
        kwargs.update(
            status__icontains=TicketStatusEnum(description="the frontend's status filter (sent unquoted)"),
            status=TicketStatusEnum(),
            location=UUID(description="tickets at this location and everything under it"),
            show_history=graphene.Boolean(description="every version of each ticket, not only the current one"),
            ticket_version=graphene.Int(description="the ticket as it was at this version (with id)"),
        )
        super().__init__(_type, queryset_hook=_apply_extra, **kwargs)

    def get_queryset_resolver(self) -> Any:
        inner = super().get_queryset_resolver()

        def resolve(connection: Any, iterable: Any, info: Any, args: dict[str, Any]) -> Any:
            queryset = inner(connection, iterable, info, args)
            version = args.get("ticket_version")
            if version is not None and version < 1:
                raise GraphQLError("ticketVersion starts at 1.", extensions={"code": CoreErrorCode.INVALID_FILTER})
            if args.get("show_history") or version is not None:
                return TicketVersions(queryset, version)
            return queryset

        return resolve

    def wrap_resolve(self, parent_resolver: Any) -> Any:
        resolve = super().wrap_resolve(parent_resolver)

        def logged(root: Any, info: Any, **args: Any) -> Any:
            connection = resolve(root, info, **args)
            nodes = [edge.node for edge in connection.edges]
            detail = args.get("id") is not None
            _prefetch_links(nodes, info)
            for node in nodes:
                node._grievance_detail = detail
            access.log_reads(info.context.user, nodes, "detail" if detail else
                             ("history" if args.get("show_history") or args.get("ticket_version") else "list"))
            return connection

        return logged


class TicketPartsField(ProtectedConnectionField):
    """A list of what hangs off tickets (comments, attachments, tasks): reading a sensitive
    ticket's parts is a read of the ticket, logged like one."""

    def __init__(self, _type: Any, *, path: str, **kwargs: Any) -> None:
        self.log_path = path
        super().__init__(_type, **kwargs)

    def wrap_resolve(self, parent_resolver: Any) -> Any:
        resolve = super().wrap_resolve(parent_resolver)
        path = self.log_path

        def logged(root: Any, info: Any, **args: Any) -> Any:
            connection = resolve(root, info, **args)
            _prefetch_links([edge.node.ticket for edge in connection.edges], info, "ticket")  # once a page
            tickets = {edge.node.ticket_id: edge.node.ticket for edge in connection.edges}
            access.log_reads(info.context.user, tickets.values(), path)
            return connection

        return logged
