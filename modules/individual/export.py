"""Exporting individuals or households to CSV or XLSX as a background job.

The rows are exactly what the user who started the job sees in the list with the same
filters (their location scope included). They are read through a server-side cursor and
written as they arrive, so memory does not grow with the registry. Text that a spreadsheet
would run as a formula is neutralised, because exports are opened by people with Excel.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, FilteredRelation, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from openpyxl import Workbook
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from core.errors import ServiceError
from core.jobs import JobContext, start_job
from core.loader import module_config
from core.models import Job
from core.permissions import require
from core.spreadsheets import neutralise, xlsx_text
from modules.individual.errors import IndividualErrorCode
from modules.individual.filters import filtered
from modules.individual.models import Group, GroupIndividual, Individual
from modules.individual.permissions import REGISTRY_EXPORT
from modules.individual.services import visible_groups, visible_individuals
from modules.individual.validation import group_schema, individual_schema

EXPORT_JOB = "individual.export"  # the job kind
ENTITIES = ("individual", "group")
FORMATS = ("csv", "xlsx")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
EXPORT_FOLDER = "exports"
CHUNK_SIZE = 2000
# A worksheet holds 1,048,576 rows, one of which is the header.
XLSX_MAX_ROWS = 1_048_575

INDIVIDUAL_COLUMNS = (
    "id", "first_name", "last_name", "dob", "sex", "location_code", "location_name",
    "household_code", "role", "recipient_type",
)
INDIVIDUAL_TRAILING = ("date_created", "date_updated")
GROUP_COLUMNS = ("id", "code", "location_code", "head_first_name", "head_last_name", "member_count")


def export_path(relative: str) -> Path:
    return Path(settings.MEDIA_ROOT) / relative


# --- what is exported ------------------------------------------------------------------------


def _headers(fixed: Sequence[str], extra: Sequence[str], trailing: Sequence[str]) -> list[str]:
    # A deployer may name a json_ext field like a fixed column; keep both distinguishable.
    taken = set(fixed) | set(trailing)
    return [*fixed, *(f"json_ext.{p}" if p in taken else p for p in extra), *trailing]


def _individual_rows(queryset: QuerySet, properties: list[str]) -> Iterator[list[Any]]:
    # One live membership per person is guaranteed by a unique index, so this join never
    # multiplies rows; it replaces a per-row lookup of the household.
    rows = (
        queryset.annotate(
            live_membership=FilteredRelation("memberships", condition=Q(memberships__is_deleted=False))
        )
        .order_by("last_name", "first_name", "id")
        .values_list(
            "id", "first_name", "last_name", "dob", "sex", "location__code", "location__name",
            "live_membership__group__code", "live_membership__role",
            "live_membership__recipient_type", "json_ext", "date_created", "date_updated",
        )
    )
    for *fixed, ext, created, updated in rows.iterator(chunk_size=CHUNK_SIZE):
        ext = ext if isinstance(ext, dict) else {}
        yield [*fixed, *(ext.get(p) for p in properties), created, updated]


def _group_rows(queryset: QuerySet, properties: list[str]) -> Iterator[list[Any]]:
    members = (
        GroupIndividual.objects.filter(group=OuterRef("pk"))
        .order_by()
        .values("group")
        .annotate(n=Count("pk"))
        .values("n")
    )
    rows = (
        queryset.annotate(member_count=Coalesce(Subquery(members, output_field=IntegerField()), 0))
        .order_by("code", "id")
        .values_list(
            "id", "code", "location__code", "head__first_name", "head__last_name", "member_count",
            "json_ext",
        )
    )
    for *fixed, ext in rows.iterator(chunk_size=CHUNK_SIZE):
        ext = ext if isinstance(ext, dict) else {}
        yield [*fixed, *(ext.get(p) for p in properties)]


def export_queryset(entity: str, user: Any, filters: dict[str, Any]) -> QuerySet:
    """The rows ``user`` would see in the list with ``filters``; raises ``ServiceError`` on an
    invalid filter (the mutation calls it too, so a bad filter never starts a job)."""
    if entity not in ENTITIES:
        raise ServiceError(IndividualErrorCode.INVALID_ENTITY, f"Export 'individual' or 'group', not '{entity}'.", "entity")
    # From every row, as the list does, so that is_deleted=True finds deleted ones; live rows
    # are the default in filtered().
    if entity == "individual":
        visible = visible_individuals(user, Individual.all_objects.all())
    else:
        visible = visible_groups(user, Group.all_objects.all())
    return filtered(entity, visible, filters)


# --- writers ---------------------------------------------------------------------------------


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime.date):  # datetimes keep their UTC offset
        return value.isoformat()
    if isinstance(value, int | float | Decimal):
        return value
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False)
    return neutralise(str(value))


def _write_csv(out: IO[bytes], header: list[str], rows: Iterator[list[Any]],
               tick: Callable[[], None]) -> None:
    # The byte-order mark makes Excel read the file as UTF-8 (names with accents).
    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="")
    writer = csv.writer(text)
    writer.writerow([neutralise(h) for h in header])
    for row in rows:
        writer.writerow([_csv_value(v) for v in row])
        tick()
    text.flush()
    text.detach()


def _xlsx_value(sheet: WriteOnlyWorksheet, value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | Decimal):
        return value
    if isinstance(value, datetime.datetime):
        # Excel has no time zones: show the deployment's local time.
        return timezone.localtime(value).replace(tzinfo=None) if timezone.is_aware(value) else value
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, dict | list):
        return xlsx_text(sheet, json.dumps(value, ensure_ascii=False))
    return xlsx_text(sheet, str(value))


def _write_xlsx(out: IO[bytes], header: list[str], rows: Iterator[list[Any]],
                tick: Callable[[], None], title: str) -> None:
    # write_only streams rows to a temporary file instead of holding cells in memory.
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title)
    sheet.append([xlsx_text(sheet, h) for h in header])
    for row in rows:
        sheet.append([_xlsx_value(sheet, v) for v in row])
        tick()
    book.save(out)


# --- the job ---------------------------------------------------------------------------------


def _json_params(filters: dict[str, Any]) -> dict[str, Any]:
    """Filters as stored on the job (UUIDs and dates as text, the way FilterSets read them)."""
    def plain(value: Any) -> Any:
        if isinstance(value, uuid.UUID):
            return str(value)
        if isinstance(value, datetime.date):
            return value.isoformat()
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    return {k: plain(v) for k, v in filters.items() if v is not None}


def export_params(entity: str, file_format: str, filters: dict[str, Any]) -> dict[str, Any]:
    return {"entity": entity, "format": file_format, "filters": _json_params(filters)}


@dataclass(frozen=True)
class ExportRequest:
    actor: Any
    params: dict[str, Any]


def check_export(actor: Any, entity: str, file_format: str, filters: dict[str, Any]) -> ExportRequest:
    """``exportIndividuals`` / ``exportGroups``: the right, the format, and every filter
    (custom ones included) checked now, so a bad one is a typed error rather than a failed job."""
    require(actor, REGISTRY_EXPORT)
    params = export_params(entity, file_format, filters)
    export_queryset(entity, actor, params["filters"])
    return ExportRequest(actor, params)


def do_export(request: ExportRequest) -> Job:
    """Queue the export job (once the transaction commits)."""
    return start_job(EXPORT_JOB, request.params, request.actor)


def run_export(ctx: JobContext) -> dict[str, Any]:
    """Job ``individual.export``: params ``{"entity", "format", "filters"}``; writes
    ``MEDIA_ROOT/exports/<job id>.<format>`` and returns ``{"rows", "file", "format"}``."""
    # Checked again here: the permission may have been withdrawn while the job was queued.
    require(ctx.user, REGISTRY_EXPORT)
    entity = ctx.params.get("entity", "individual")
    file_format = ctx.params.get("format", "csv")
    if file_format not in FORMATS:
        raise ServiceError(IndividualErrorCode.INVALID_FORMAT, f"Export as 'csv' or 'xlsx', not '{file_format}'.", "format")
    queryset = export_queryset(entity, ctx.user, dict(ctx.params.get("filters") or {}))

    total = queryset.count()
    cap = int(module_config("individual")["export_max_rows"])
    if file_format == "xlsx" and XLSX_MAX_ROWS < cap:
        cap = XLSX_MAX_ROWS
    if total > cap:
        hint = " (the most an XLSX sheet holds; export as CSV instead)" if cap == XLSX_MAX_ROWS else ""
        raise ServiceError(
            IndividualErrorCode.EXPORT_TOO_LARGE,
            f"The export would have {total:,} rows, more than the limit of {cap:,}{hint}. "
            f"Narrow the filters (for example to one location) and export in parts.",
            "filters",
        )
    ctx.progress(0, total, stage="exporting")

    # Generators: nothing is read until the writer pulls rows inside the transaction below.
    if entity == "individual":
        properties = list(individual_schema().properties)
        header = _headers(INDIVIDUAL_COLUMNS, properties, INDIVIDUAL_TRAILING)
        rows = _individual_rows(queryset, properties)
    else:
        properties = list(group_schema().properties)
        header = _headers(GROUP_COLUMNS, properties, ())
        rows = _group_rows(queryset, properties)

    written = 0

    def tick() -> None:
        nonlocal written
        written += 1
        if written > cap:
            # Rows added since the count; the limit still holds.
            raise ServiceError(IndividualErrorCode.EXPORT_TOO_LARGE, f"The export grew past the limit of {cap:,} rows.", "filters")
        if written % CHUNK_SIZE == 0:
            ctx.progress(written)  # a cancel stops here; the half-written file is removed below

    relative = f"{EXPORT_FOLDER}/{ctx.job.pk}.{file_format}"
    target = export_path(relative)
    target.parent.mkdir(parents=True, exist_ok=True)
    # A unique temporary name in the same folder, renamed at the end: a reader never sees a
    # half-written file, and a requeued run of the same job cannot write into this one.
    partial = target.parent / f".{ctx.job.pk}.{uuid.uuid4().hex}.part"
    try:
        with open(partial, "xb") as out, transaction.atomic():
            # Inside a transaction the cursor streams; outside one PostgreSQL would first
            # materialise the whole result for a cursor that outlives its statement.
            if file_format == "csv":
                _write_csv(out, header, rows, tick)
            else:
                _write_xlsx(out, header, rows, tick, "Households" if entity == "group" else "Individuals")
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    ctx.progress(written, max(total, written), stage="exporting", stoppable=False)  # the file is in place
    noun = "household" if entity == "group" else "individual"
    return {"rows": written, "file": relative, "format": file_format,
            "message": f"Exported {written:,} {noun}{'' if written == 1 else 's'} to {file_format.upper()}."}
