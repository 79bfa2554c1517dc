"""What the use cases share: reading a ticket for a change, field checks, due dates."""

from __future__ import annotations

import datetime
from datetime import timedelta
from functools import cache
from typing import Any

from core.errors import CoreErrorCode as C
from core.errors import FieldError, ServiceError, ValidationFailed
from core.json_ext import JsonExtSchema
from core.permissions import has_permission
from modules.grievance import access
from modules.grievance.configuration import (
    PRIORITIES,
    Category,
    config,
    duration_hours,
    highest_priority,
)
from modules.grievance.errors import GrievanceErrorCode as E
from modules.grievance.models import Ticket, TicketStatus

UNSET: Any = ...


def require(actor: Any, code: str) -> None:
    """The permission check every ``check_*`` starts with (the system actor holds all)."""
    if not has_permission(actor, code):
        raise ServiceError(C.PERMISSION_DENIED, f"This requires the permission '{code}'.")


@cache
def json_ext_schema() -> JsonExtSchema:
    return JsonExtSchema(config().json_ext_schema)


def ticket_for_change(actor: Any, ticket_id: Any, *, lock: bool = True) -> Ticket:
    """The ticket ``actor`` may change: visible to them, and read in full (a restricted reader
    sees too little of it to change it). Locked until the transaction ends."""
    queryset = access.visible_tickets(actor, Ticket.objects.filter(pk=ticket_id))
    ticket = (queryset.select_for_update(of=("self",)) if lock else queryset).first()
    if ticket is None:
        raise ServiceError(E.TICKET_NOT_FOUND, f"Ticket {ticket_id} does not exist or is not visible to you.", "id")
    level, _ = access.level_of(access.viewer(actor), ticket.category, ticket.flags)
    if level != access.FULL:
        raise ServiceError(C.PERMISSION_DENIED, f"You may read only part of ticket {ticket.code}; "
                                                "only a full reader of its category and flags may change it.", "id")
    return ticket


def check_version(ticket: Ticket, version: int | None) -> None:
    if version is not None and version != ticket.version:
        raise ServiceError(C.STALE_VERSION, f"Ticket {ticket.code} was changed by someone else (you edited version "
                                            f"{version}, it is now version {ticket.version}); reload it.", "version")


def category_of(path: Any, errors: list[FieldError], field: str = "category") -> Category | None:
    if not isinstance(path, str) or not path.strip():
        errors.append(FieldError(field, C.REQUIRED, "The category is required."))
        return None
    category = config().categories.get(path.strip())
    if category is None:
        known = ", ".join(sorted(config().categories)[:30]) or "none are configured"
        errors.append(FieldError(field, E.UNKNOWN_CATEGORY, f"'{path[:100]}' is not a category; categories: {known}."))
    return category


def flags_of(raw: Any, errors: list[FieldError], field: str = "flags") -> list[str]:
    """Flags from a list or the frontend's comma-separated text."""
    if raw in (None, "", []):
        return []
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    flags = []
    for item in items:
        code = str(item).strip()
        if not code:
            continue
        if code not in config().flags:
            known = ", ".join(sorted(config().flags)) or "none are configured"
            errors.append(FieldError(field, E.UNKNOWN_FLAG, f"'{code[:50]}' is not a flag; flags: {known}."))
        elif code not in flags:
            flags.append(code)
    return flags


def channel_of(raw: Any, errors: list[FieldError]) -> str:
    channel = (raw or "").strip() if isinstance(raw, str) else ""
    if channel and config().channels and channel not in config().channels:
        errors.append(FieldError("channel", E.UNKNOWN_CHANNEL,
                                 f"'{channel[:50]}' is not a channel; channels: {', '.join(config().channels)}."))
    return channel


def priority_of(raw: Any, category: Category | None, flags: list[str], errors: list[FieldError]) -> str:
    """The highest of the category's, the flags' and the one asked for: a client may raise a
    ticket's priority, never lower it below its rule."""
    asked = None
    if raw not in (None, ""):
        asked = str(raw).strip()
        matches = [p for p in PRIORITIES if p.lower() == asked.lower()]
        if not matches:
            errors.append(FieldError("priority", E.INVALID_PRIORITY,
                                     f"'{asked[:30]}' is not a priority; priorities: {', '.join(PRIORITIES)}."))
            asked = None
        else:
            asked = matches[0]
    flag_priorities = [config().flags[f].priority for f in flags if f in config().flags]
    return highest_priority(asked, category.priority if category else config().default_priority, *flag_priorities)


def text(raw: Any, field: str, errors: list[FieldError], *, required: bool = False, limit: int = 255) -> str:
    value = raw.strip() if isinstance(raw, str) else ""
    if required and not value:
        errors.append(FieldError(field, C.REQUIRED, f"{field} is required."))
    elif len(value) > limit:
        errors.append(FieldError(field, C.TOO_LONG, f"{field} is at most {limit} characters."))
    return value


def incident_date(raw: Any, errors: list[FieldError], today: datetime.date,
                  field: str = "dateOfIncident") -> datetime.date | None:
    if raw in (None, ""):
        return None
    if isinstance(raw, datetime.datetime):
        raw = raw.date()
    if isinstance(raw, str):
        try:
            raw = datetime.date.fromisoformat(raw[:10])
        except ValueError:
            errors.append(FieldError(field, E.INVALID_DATE, f"{field} is not a date (YYYY-MM-DD)."))
            return None
    if not isinstance(raw, datetime.date):
        errors.append(FieldError(field, E.INVALID_DATE, f"{field} is not a date (YYYY-MM-DD)."))
        return None
    if raw > today:
        errors.append(FieldError(field, E.INVALID_DATE, f"{field} cannot be after today."))
    return raw


def fixed_by_category(resolution: Any, due_date: Any, category: Category | None, errors: list[FieldError]) -> None:
    """The SLA comes from configuration: a client echoing it is fine, changing it is refused."""
    if resolution not in (None, "") and category is not None and str(resolution).strip() != category.resolution_time:
        errors.append(FieldError("resolution", E.RESOLUTION_FIXED_BY_CATEGORY,
                                 f"Tickets of '{category.path}' are resolved within {category.resolution_time} "
                                 "(days,hours), as configured; leave resolution out."))
    if due_date not in (None, ""):
        errors.append(FieldError("dueDate", E.DUE_DATE_FROM_CATEGORY,
                                 "The due date follows from the category's resolution time; leave dueDate out."))


def json_ext_of(raw: Any, errors: list[FieldError]) -> Any:
    if raw in (None, ""):
        return None
    errors.extend(FieldError(e.field, C.INVALID_JSON_EXT, e.message) for e in json_ext_schema().errors(raw))
    return raw


def due_after(start: datetime.datetime, category: Category | None) -> datetime.datetime:
    return start + timedelta(hours=duration_hours(category.resolution_time if category else
                                                   config().default_resolution_time))


def raise_if(errors: list[FieldError]) -> None:
    if errors:
        raise ValidationFailed(errors)


def status_of(raw: Any, errors: list[FieldError], allowed: tuple[str, ...]) -> str | None:
    if raw in (None, ""):
        return None
    value = str(getattr(raw, "value", raw)).strip().upper()
    if value not in TicketStatus.values or value not in allowed:
        errors.append(FieldError("status", E.INVALID_STATUS,
                                 f"'{str(raw)[:30]}' is not a status this allows; use one of {', '.join(allowed)}."))
        return None
    return value


def staff_problem(staff: Any, location_path: str | None) -> str | None:
    """Why ``staff`` cannot attend a ticket at ``location_path`` (``None``: they can): they must
    see it, so their location scope must cover the place (a ticket with no place: national)."""
    from modules.location.services import scope_paths

    paths = scope_paths(staff)
    if paths is None:
        return None
    if location_path is None or not any(location_path.startswith(p) for p in paths):
        return f"{staff.username} is not scoped to the ticket's location and could not see it."
    return None
