"""Importing a location hierarchy from CSV (columns ``code, name, type, parent_code``).

A hierarchy is small (thousands of rows, not millions), so the rows are validated together,
which lets a parent appear after its children in the file. Writing is one transaction, level
by level, in chunked multi-row INSERTs; history is written by the table's triggers.

Two modes: ``all_or_nothing`` writes nothing if any row is invalid; ``valid_rows`` writes the
valid rows (a row under an invalid parent is itself invalid) and reports the others.
Re-importing the same file is harmless: rows identical to what is stored are counted as
unchanged, not duplicated.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from core.errors import CoreErrorCode, ErrorCode, ServiceError
from core.history import acting_as
from core.imports import ImportMode, ImportReportWriter, Issue
from core.jobs import JobContext
from core.loader import module_config
from core.models import Upload
from core.permissions import require
from core.uploads import discard_file
from modules.location import services
from modules.location.errors import LocationErrorCode
from modules.location.models import Location
from modules.location.permissions import LOCATION_IMPORT

REQUIRED_COLUMNS = ("code", "name", "type")
MAX_ROWS = 500_000

Progress = Callable[[int, int | None, str | None], None]


@dataclass
class RowError:
    row: int
    code: ErrorCode
    message: str
    field: str | None = None
    value: str = ""  # the cell as the file has it

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "code": self.code, "message": self.message}

    def as_issue(self) -> Issue:
        return Issue(row=self.row, code=self.code, message=self.message, field=self.field or "",
                     raw_value=self.value, stage="validating")


@dataclass
class ImportResult:
    total: int = 0
    created: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    written: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"total": self.total, "created": self.created, "unchanged": self.unchanged,
                "invalid": len({e.row for e in self.errors}), "written": self.written}


def read_csv(stream: io.TextIOBase | Iterable[str]) -> Iterator[dict[str, str]]:
    """Stream rows as dicts with lower-cased, trimmed headers; a missing column is an error."""
    reader = csv.DictReader(stream)  # type: ignore[arg-type]
    headers = [h.strip().lower() for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED_COLUMNS if c not in headers]
    if missing:
        raise ServiceError(
            LocationErrorCode.MISSING_COLUMNS,
            f"The file lacks the column(s) {', '.join(missing)}; expected code, name, type, parent_code.",
            "file",
        )
    reader.fieldnames = headers
    for raw in reader:
        yield {k: (v or "").strip() for k, v in raw.items() if k}


@dataclass
class _Row:
    number: int
    code: str
    name: str
    type: str
    level: int
    parent_code: str
    raw: dict[str, str] = field(default_factory=dict)
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    path: str = ""
    existing: bool = False


def import_rows(rows: Iterable[dict[str, str]], user: Any, mode: ImportMode | str = ImportMode.ALL_OR_NOTHING,
                progress: Progress | None = None, context: dict[str, Any] | None = None) -> ImportResult:
    """Validate and write ``rows`` as ``user`` (the system actor for demo data and scripts)."""
    mode = services.import_mode(mode)
    require(user, LOCATION_IMPORT)
    report = progress or (lambda processed, total, stage: None)
    levels = services.levels()
    result = ImportResult()
    errors: dict[int, RowError] = {}
    by_code: dict[str, _Row] = {}
    parsed: list[_Row] = []
    raw_of: dict[int, dict[str, str]] = {}

    def fail(row: int, code: ErrorCode, message: str, field_name: str | None = None) -> None:
        value = raw_of.get(row, {}).get(field_name or "", "")
        errors.setdefault(row, RowError(row, code, message, field_name, value))

    report(0, None, "validating")
    for number, raw in enumerate(rows, start=2):  # row 1 is the header
        result.total += 1
        if result.total > MAX_ROWS:
            raise ServiceError(LocationErrorCode.TOO_MANY_ROWS, f"A hierarchy import takes at most {MAX_ROWS} rows.", "file")
        raw_of[number] = raw
        code, name, type_ = raw.get("code", ""), raw.get("name", ""), raw.get("type", "")
        if not code:
            fail(number, CoreErrorCode.REQUIRED, "The code is empty.", "code")
        elif len(code) > 50:
            fail(number, CoreErrorCode.TOO_LONG, "The code is longer than 50 characters.", "code")
        elif code in by_code:
            fail(number, LocationErrorCode.DUPLICATE_IN_FILE, f"The code '{code}' also appears on row {by_code[code].number}.", "code")
        if not name:
            fail(number, CoreErrorCode.REQUIRED, "The name is empty.", "name")
        if type_ not in levels:
            fail(number, LocationErrorCode.INVALID_TYPE, f"'{type_}' is not a level; levels are {', '.join(levels)}.", "type")
        row = _Row(number, code, name, type_, levels.index(type_) if type_ in levels else -1,
                   raw.get("parent_code", ""))
        if code and code not in by_code:
            by_code[code] = row
        parsed.append(row)
        if result.total % 1000 == 0:
            report(result.total, None, "validating")

    existing = {
        loc.code: loc
        for loc in Location.objects.filter(code__in=list(by_code)).only("id", "code", "name", "type", "level", "parent", "path")
    }
    parent_codes = {r.parent_code for r in parsed if r.parent_code and r.parent_code not in by_code}
    stored_parents = {
        loc.code: loc
        for loc in Location.objects.filter(code__in=list(parent_codes)).only("id", "code", "level", "path")
    }

    # Resolve top-down so a row's parent (from the file) is settled before the row itself.
    for row in sorted(parsed, key=lambda r: r.level):
        if row.number in errors or row.level < 0:
            continue
        parent_path, parent_level = "", None
        if row.parent_code:
            file_parent = by_code.get(row.parent_code)
            stored = stored_parents.get(row.parent_code)
            if file_parent is not None:
                if file_parent.number in errors:
                    fail(row.number, LocationErrorCode.INVALID_PARENT, f"Its parent '{row.parent_code}' (row {file_parent.number}) is invalid.", "parent_code")
                    continue
                parent_path, parent_level = file_parent.path, file_parent.level
            elif stored is not None:
                if not services.in_scope(user, stored):
                    fail(row.number, CoreErrorCode.OUT_OF_SCOPE, f"The parent '{row.parent_code}' is outside your locations.", "parent_code")
                    continue
                parent_path, parent_level = stored.path, stored.level
            else:
                fail(row.number, LocationErrorCode.UNKNOWN_PARENT, f"No location has the code '{row.parent_code}'.", "parent_code")
                continue
        if row.level == 0 and row.parent_code:
            fail(row.number, LocationErrorCode.INVALID_PARENT, f"A {row.type} is a top level and has no parent.", "parent_code")
            continue
        if row.level > 0 and not row.parent_code:
            fail(row.number, CoreErrorCode.REQUIRED, f"A {row.type} needs a parent {levels[row.level - 1]}.", "parent_code")
            continue
        if parent_level is not None and parent_level != row.level - 1:
            fail(row.number, LocationErrorCode.INVALID_PARENT,
                 f"The parent of a {row.type} must be a {levels[row.level - 1]}.", "parent_code")
            continue
        if row.level == 0 and not services.is_national(user):
            fail(row.number, CoreErrorCode.OUT_OF_SCOPE, "Only national users may import top-level locations.", "parent_code")
            continue
        stored_self = existing.get(row.code)
        if stored_self is not None:
            same_parent = stored_self.path[: -33] == parent_path
            if stored_self.name == row.name and stored_self.type == row.type and same_parent:
                row.existing, row.id, row.path = True, stored_self.id, stored_self.path
                continue
            fail(row.number, LocationErrorCode.LOCATION_CODE_TAKEN,
                 f"A different location already has the code '{row.code}'.", "code")
            continue
        row.path = parent_path + row.id.hex + "/"

    result.errors = sorted(errors.values(), key=lambda e: e.row)
    valid = [r for r in parsed if r.number not in errors]
    result.unchanged = sum(1 for r in valid if r.existing)
    if result.errors and mode == ImportMode.ALL_OR_NOTHING:
        report(result.total, result.total, "failed")
        return result

    to_create = sorted((r for r in valid if not r.existing), key=lambda r: r.level)
    chunk = int(module_config("location")["import_chunk_size"])
    parent_ids = {r.code: r.id for r in valid} | {c: loc.id for c, loc in stored_parents.items()}
    report(0, len(to_create), "importing")
    with acting_as(user, **(context or {})):
        for start in range(0, len(to_create), chunk):
            batch = to_create[start:start + chunk]
            uid = getattr(user, "pk", None)
            Location.objects.bulk_create([
                Location(id=r.id, code=r.code, name=r.name, type=r.type, level=r.level,
                         parent_id=parent_ids.get(r.parent_code) if r.parent_code else None,
                         path=r.path, user_created_id=uid, user_updated_id=uid)
                for r in batch
            ])
            result.created += len(batch)
            report(result.created, len(to_create), "importing")
    result.written = True
    return result


def run_import(ctx: JobContext) -> dict[str, Any]:
    """Job handler for ``location.import``. Run again (a lost run, a retry) it finds the rows
    it wrote unchanged and writes the rest: the write is one transaction, so a lost run wrote
    nothing."""
    upload = Upload.objects.get(pk=ctx.params["upload_id"])
    mode = services.import_mode(ctx.params.get("mode"))
    report = ImportReportWriter.open(ctx.job, module="location", mode=mode)
    report.clear()  # a retry checks the whole file again
    with open(upload.stored_path, encoding="utf-8-sig", newline="") as stream:
        result = import_rows(
            read_csv(stream), ctx.user, mode,
            progress=lambda processed, total, stage: ctx.progress(processed, total, stage),
            context={"job": str(ctx.job.pk)},
        )
    # The import report holds every refused row with its cell; the job keeps the first ones
    # for clients that read ``job { errors }``.
    report.add(e.as_issue() for e in result.errors)
    ctx.report_errors([e.as_dict() for e in result.errors])
    summary = result.as_dict()
    report.set_counts(total=result.total, created=result.created, unchanged=result.unchanged,
                      invalid=summary["invalid"])
    invalid = summary["invalid"]
    if result.errors and not result.written:
        summary["state"] = "FAILED"
        summary["message"] = (f"{invalid:,} of {result.total:,} rows are invalid, so nothing was imported "
                              "(all or nothing); the job's errors list them.")
        discard_file(upload)  # refused whole: nothing reads the file again
    else:
        summary["message"] = (f"Imported {result.created:,} new locations; {result.unchanged:,} were already "
                              "there" + (f"; {invalid:,} invalid rows left out (the job's errors list them)"
                                         if invalid else "") + ".")
    return summary


def import_file(path: str, user: Any, mode: ImportMode | str = ImportMode.ALL_OR_NOTHING) -> ImportResult:
    """Synchronous import for scripts and demo data."""
    with open(path, encoding="utf-8-sig", newline="") as stream:
        return import_rows(read_csv(stream), user, mode)
