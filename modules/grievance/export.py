"""The ``grievance.export`` job: a CSV of the tickets its creator may read, as they may read
them (restricted fields as ``[Restricted]``, a category's anonymised fields always left out of
exports), each sensitive ticket's read in the access log; streamed in chunks."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from django.conf import settings

from core.jobs import JobContext
from core.spreadsheets import neutralise
from modules.grievance import access
from modules.grievance.configuration import config

EXPORT_FOLDER = "grievance_exports"
CHUNK = 5000
COLUMNS = [("code", "code"), ("title", "title"), ("description", "description"), ("status", "status"),
           ("priority", "priority"), ("category", "category"), ("flags", "flags"), ("channel", "channel"),
           ("dateOfIncident", "date_of_incident"), ("dateCreated", "date_created"), ("dueDate", "due_date"),
           ("reporter", "reporter"), ("attendingStaff", "attending_staff"), ("location", "location")]


def export_path(relative: str) -> Path:
    return Path(settings.MEDIA_ROOT) / relative


def _value(ticket: Any, name: str) -> str:
    if name == "flags":
        return ",".join(ticket.flags)
    if name == "reporter":
        person = ticket.reporter_individual
        return f"{person.first_name} {person.last_name}" if person else (ticket.reporter_kind or "anonymous")
    if name == "attending_staff":
        return ticket.attending_staff.username if ticket.attending_staff else ""
    if name == "location":
        return ticket.location.code if ticket.location else ""
    value = getattr(ticket, name)
    return "" if value is None else str(value)


def write_export(ctx: JobContext) -> dict[str, Any]:
    from modules.grievance.services.exports import export_queryset

    user = ctx.user
    reader = access.viewer(user)
    tickets = export_queryset(user, ctx.params).select_related("reporter_individual", "attending_staff", "location")
    total = tickets.count()
    relative = f"{EXPORT_FOLDER}/{ctx.job.pk}.csv"
    target = export_path(relative)
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with open(target, "w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow([name for name, _ in COLUMNS])
        batch: list[Any] = []
        for ticket in tickets.order_by("date_created", "id").iterator(chunk_size=CHUNK):
            level, visible = access.level_of(reader, ticket.category, ticket.flags)
            category = config().categories.get(ticket.category)
            anonymised = category.anonymised_fields if category else frozenset()
            row = []
            for name, attribute in COLUMNS:
                if name not in visible:
                    row.append(access.RESTRICTED_TEXT)
                elif name in anonymised:
                    row.append(access.ANONYMISED_TEXT)
                else:
                    row.append(neutralise(_value(ticket, attribute)))
            out.writerow(row)
            batch.append(ticket)
            written += 1
            if len(batch) >= CHUNK:
                access.log_reads(user, batch, "export")
                batch = []
                ctx.progress(written, total, "writing")
        access.log_reads(user, batch, "export")
    ctx.progress(written, total, "done", stoppable=False)
    return {"file": relative, "rows": written, "download": f"/api/grievance/export/{ctx.job.pk}/download"}
