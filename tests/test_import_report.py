"""The one import report: issues per row, counts, and the CSV a person downloads."""

from __future__ import annotations

from typing import Any

import pytest

from core.errors import CoreErrorCode
from core.imports import ImportMode, ImportReportWriter, Issue, report_csv_response, report_of
from core.models import Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def job() -> Job:
    return Job.objects.create(kind="location.import", module="location")


def test_issues_are_kept_per_row_with_their_raw_value(job: Job) -> None:
    report = ImportReportWriter.open(job, module="location", mode=ImportMode.VALID_ROWS)
    assert report.add([Issue(row=3, field="code", code=CoreErrorCode.REQUIRED, message="The code is required."),
                       Issue(row=2, field="name", code=CoreErrorCode.TOO_LONG, message="Too long.", raw_value="x" * 600,
                             stage="row")]) == 2
    report.set_counts(total=10, valid=8, invalid=2)
    stored = report_of(job)
    assert stored is not None and (stored.mode, stored.module) == ("valid_rows", "location")
    assert stored.counts == {"total": 10, "valid": 8, "invalid": 2, "issues": 2}
    assert ImportReportWriter.open(job, module="location", mode="valid_rows").report == stored  # a re-run


def test_a_set_based_import_writes_issues_from_sql_and_redoes_a_stage(job: Job) -> None:
    report = ImportReportWriter.open(job, module="location", mode=ImportMode.ALL_OR_NOTHING)
    found = report.add_from_sql(
        "SELECT n, 'parent_code', 'NOT_FOUND', 'No location has this code.', 'P-' || n, true, 'set' "
        "FROM generate_series(2, %s) AS n", [4])
    assert found == 3
    report.add([Issue(row=9, code=CoreErrorCode.INVALID, message="Kept.", stage="row")])
    report.clear("set")
    report.set_counts()
    assert report.report.counts == {"issues": 1}


def test_the_report_downloads_as_csv_in_file_order(job: Job) -> None:
    report = ImportReportWriter.open(job, module="location", mode=ImportMode.ALL_OR_NOTHING)
    report.add([Issue(row=5, field="name", code=CoreErrorCode.REQUIRED, message='Say "name"'),
                Issue(row=2, field="code", code=CoreErrorCode.TOO_LONG, message="Too long.", raw_value="K,1")])
    response = report_csv_response(report.report)
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    assert text.splitlines() == ["row,field,code,message,value", '2,code,TOO_LONG,Too long.,"K,1"',
                                  '5,name,REQUIRED,"Say ""name""",']
    assert response["Content-Disposition"] == f'attachment; filename="import-{job.pk}-report.csv"'
    assert response["Cache-Control"] == "private, no-store"


def test_the_mode_is_one_enum_in_the_schema_vocabulary(gql: Any) -> None:
    from core.graphql.types import ImportModeEnum

    assert ImportModeEnum._meta.name == "ImportMode"
    assert [m.value for m in ImportMode] == ["all_or_nothing", "valid_rows"]
