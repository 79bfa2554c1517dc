"""Exporting tickets: a background job writing a CSV of what the exporter may read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.errors import CoreErrorCode as C
from core.errors import ServiceError
from core.jobs import start_job
from core.models import Job
from modules.grievance import access
from modules.grievance.configuration import config
from modules.grievance.errors import GrievanceErrorCode as E
from modules.grievance.models import Ticket
from modules.grievance.permissions import TICKET_EXPORT
from modules.grievance.services import common
from modules.location.models import Location
from modules.location.services import in_scope


@dataclass
class ExportRequest:
    actor: Any
    params: dict[str, Any]


def export_queryset(user: Any, params: dict[str, Any]) -> Any:
    from modules.location.services import descendants_of

    tickets = access.visible_tickets(user, Ticket.objects.all())
    if params.get("status"):
        tickets = tickets.filter(status=params["status"])
    if params.get("category"):
        tickets = tickets.filter(category__startswith=params["category"])
    if params.get("location_id"):
        tickets = tickets.filter(descendants_of([params["location_id"]], "location"))
    return tickets


def check_export_tickets(actor: Any, *, status: str | None = None, category: str | None = None,
                         location_id: Any = None) -> ExportRequest:
    common.require(actor, TICKET_EXPORT)
    if category and category not in config().categories:
        raise ServiceError(E.UNKNOWN_CATEGORY, f"'{category[:100]}' is not a category.", "category")
    if location_id is not None:
        location = Location.objects.filter(pk=location_id).first()
        if location is None:
            raise ServiceError(E.LOCATION_NOT_FOUND, "No such location.", "locationId")
        if not in_scope(actor, location):
            raise ServiceError(C.OUT_OF_SCOPE, "The location is outside your locations.", "locationId")
    params = {"status": status, "category": category, "location_id": str(location_id) if location_id else None}
    count = export_queryset(actor, params).count()
    if count > config().export_max_rows:
        raise ServiceError(E.EXPORT_TOO_LARGE, f"{count} tickets match; exports hold at most "
                                               f"{config().export_max_rows}. Narrow the export.")
    return ExportRequest(actor, params)


def do_export_tickets(request: ExportRequest) -> Job:
    return start_job("grievance.export", request.params, request.actor)
