"""One import report for every import (locations, individuals, KoboToolbox submissions).

An import job opens its report, writes issues as it finds them, and sets its counts; the
client reads them on the job and downloads the CSV. The writer takes issues one by one (in
batches) or, for a set-based import, straight from SQL::

    report = ImportReportWriter.open(ctx.job, module="location", mode=ImportMode.ALL_OR_NOTHING)
    report.add([Issue(row=7, field="code", code=LocationErrorCode.CODE_TAKEN, message="…", raw_value="K-1")])
    report.add_from_sql("SELECT s.row, 'parent_code', 'UNKNOWN_PARENT', 'No location has this code.', "
                        "s.parent_code, true, 'set' FROM staging s WHERE …", params)
    report.set_counts(total=120, valid=118, invalid=2)

Re-running an import job (it is idempotent) reopens the same report; ``clear(stage)`` drops
what a stage found before it checks again.

A module serves the CSV from its own route, after its own access rule (a report names
people): ``return report_csv_response(report)``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.db import connection
from django.http import StreamingHttpResponse
from django.utils import timezone

from core.errors import ErrorCode
from core.models import ImportIssue, ImportReport, Job

MAX_RAW_VALUE = 500  # characters of a cell kept in the report
BATCH = 5000


class ImportMode(StrEnum):
    """What an import does with a file some of whose rows are invalid."""

    ALL_OR_NOTHING = "all_or_nothing"  # nothing is written unless every row is valid
    VALID_ROWS = "valid_rows"  # the valid rows are written; the report lists the others


@dataclass(frozen=True)
class Issue:
    """One reason a row was refused (``blocking``), or a note about it."""

    row: int
    code: ErrorCode | str
    message: str
    field: str = ""
    raw_value: Any = ""
    blocking: bool = True
    stage: str = ""


# The columns of ``add_from_sql``'s SELECT, in this order.
SQL_COLUMNS = ("row", "field", "code", "message", "raw_value", "blocking", "stage")


class ImportReportWriter:
    """Writes one job's report."""

    def __init__(self, report: ImportReport) -> None:
        self.report = report

    @classmethod
    def open(cls, job: Job, *, module: str, mode: ImportMode | str) -> ImportReportWriter:
        report, _ = ImportReport.objects.get_or_create(
            job=job, defaults={"module": module, "mode": str(ImportMode(mode))})
        return cls(report)

    def add(self, issues: Iterable[Issue]) -> int:
        """Store ``issues`` (in batches); how many."""
        count = 0
        batch: list[ImportIssue] = []
        for issue in issues:
            batch.append(ImportIssue(
                report=self.report, row=issue.row, field=issue.field[:100], code=str(issue.code)[:60],
                message=issue.message, raw_value=_raw(issue.raw_value), blocking=issue.blocking,
                stage=issue.stage[:20]))
            if len(batch) >= BATCH:
                count += len(ImportIssue.objects.bulk_create(batch))
                batch = []
        if batch:
            count += len(ImportIssue.objects.bulk_create(batch))
        return count

    def add_from_sql(self, select: str, params: Any = None) -> int:
        """Store the issues a ``SELECT`` of :data:`SQL_COLUMNS` finds, in one statement; how many.

        ``params`` are the SELECT's own (a list for ``%s`` placeholders, or a dict).
        """
        table = ImportIssue._meta.db_table
        columns = ", ".join(SQL_COLUMNS)
        sql = (f"INSERT INTO {table} (report_id, {columns}) "
               f"SELECT %(coremis_report)s, i.* FROM ({select}) AS i({columns})")
        if isinstance(params, dict) or params is None:
            bound: Any = {**(params or {}), "coremis_report": self.report.pk}
        else:
            # Positional parameters: the report id comes first in the statement.
            sql = sql.replace("%(coremis_report)s", "%s")
            bound = [self.report.pk, *params]
        with connection.cursor() as cursor:
            cursor.execute(sql, bound)
            return int(cursor.rowcount)

    def clear(self, stage: str | None = None) -> None:
        """Drop the issues found so far (by ``stage`` only, when given)."""
        issues = ImportIssue.objects.filter(report=self.report)
        if stage is not None:
            issues = issues.filter(stage=stage)
        issues.delete()

    def set_counts(self, **counts: int) -> None:
        """Merge ``counts`` into the report's; ``issues`` is always the number stored."""
        merged = {**self.report.counts, **counts,
                  "issues": ImportIssue.objects.filter(report=self.report).count()}
        ImportReport.objects.filter(pk=self.report.pk).update(counts=merged, updated_at=timezone.now())
        self.report.counts = merged


def _raw(value: Any) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= MAX_RAW_VALUE else text[:MAX_RAW_VALUE] + "…"


def report_of(job: Job) -> ImportReport | None:
    return ImportReport.objects.filter(job=job).first()


def issue_lines(report: ImportReport) -> Iterator[tuple[int, str, str, str, str]]:
    """``(row, field, code, message, raw value)`` in file order, streamed from the database."""
    return (ImportIssue.objects.filter(report=report).order_by("row", "id")
            .values_list("row", "field", "code", "message", "raw_value").iterator(chunk_size=BATCH))


class _Line:
    """A write-only file for ``csv.writer``: hands back the line it was given."""

    def write(self, value: str) -> str:
        return value


def csv_lines(report: ImportReport) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield "\ufeff" + writer.writerow(["row", "field", "code", "message", "value"])  # BOM: Excel reads UTF-8
    for line in issue_lines(report):
        yield writer.writerow(line)


def report_csv_response(report: ImportReport, filename: str | None = None) -> StreamingHttpResponse:
    """The report as a streamed CSV download (never in memory whatever its size)."""
    response = StreamingHttpResponse(csv_lines(report), content_type="text/csv; charset=utf-8")
    name = filename or f"import-{report.job_id}-report.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "private, no-store"  # a report names people
    return response
