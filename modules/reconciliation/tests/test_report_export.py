"""The reconciliation report as a file: started by a mutation, written by a job, downloaded over
HTTP; the same rows as the GraphQL report, in the same scope, for its creator only."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

pytestmark = pytest.mark.django_db

EXPORT = ('mutation($i: ExportReconciliationReportMutationInput!) { exportReconciliationReport(input: $i) '
          '{ errors { field code message } job { uuid state } } }')
REPORT = ('query($p: UUID, $g: ReconciliationGroupByEnum, $l: Int) { reconciliationReport(payrollId: $p, groupBy: $g, '
          'locationLevel: $l) { key label orderedCount orderedSum paidCount paidSum failedCount pendingCount '
          'mismatchedCount mismatchedSum mismatches { klass count } } }')


def download(client: Any, user: Any, job: str) -> Any:
    from core.auth.tokens import issue

    return client.get(f"/api/reconciliation/report/{job}/download", HTTP_AUTHORIZATION=f"Bearer {issue(user).token}")


def table(response: Any, file_format: str) -> list[list[Any]]:
    body = b"".join(response.streaming_content)
    if file_format == "csv":
        return [[int(c) if c.isdigit() else c for c in row] for row in csv.reader(io.StringIO(body.decode("utf-8-sig")))]
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(body), read_only=True).worksheets[0]
    return [["" if v is None else v for v in row] for row in sheet.iter_rows(values_only=True)]


def export(api: Any, run_jobs: Any, capture: Any, **arguments: Any) -> dict[str, Any]:
    with capture(execute=True):
        out = api.ok(EXPORT, {"i": arguments})["exportReconciliationReport"]
    assert out["errors"] == [], out["errors"]
    run_jobs()
    return out["job"]


@pytest.mark.parametrize("file_format", ["CSV", "XLSX"])
def test_the_report_downloads_with_the_rows_of_the_graphql_report(file_format, sent_payroll, gql, client, make_user,
                                                                  provider_files, upload_result, run_jobs,
                                                                  django_capture_on_commit_callbacks):
    from modules.location.services import assign_user_locations

    sent = sent_payroll
    refs = sent.references
    upload_result(sent.user, provider_files.csv(["reference", "status", "transaction_id", "amount"], [
        [refs[0], "PAID", "T0", sent.amounts[refs[0]]], [refs[1], "FAILED", "T1", ""],
        [refs[2], "PAID", "T2", sent.amounts[refs[2]] + 1]]), point="BANK")
    api = gql(sent.user)
    shown = api.ok(REPORT, {"p": str(sent.payroll.pk), "g": "LOCATION", "l": 2})["reconciliationReport"]
    job = export(api, run_jobs, django_capture_on_commit_callbacks, format=file_format,
                 payrollId=str(sent.payroll.pk), groupBy="LOCATION", locationLevel=2)
    response = download(client, sent.user, job["uuid"])
    assert response.status_code == 200 and response["Cache-Control"] == "private, no-store"
    [header, *rows] = table(response, file_format.lower())
    assert header[:12] == ["Group", "Key", "Ordered", "Ordered sum", "Paid", "Paid sum", "Failed", "Failed sum",
                           "Pending", "Pending sum", "Mismatched", "Mismatched sum"]
    assert "Open AMOUNT_DIFFERS" in header and "Open WRONG_RECIPIENT" in header
    got = {r[0]: dict(zip(header, r, strict=True)) for r in rows}
    assert sorted(got) == sorted(r["label"] for r in shown) == ["H1", "H2", "H3"]
    for row in shown:
        line = got[row["label"]]
        assert (line["Ordered"], line["Ordered sum"], line["Paid"], line["Failed"], line["Pending"],
                line["Mismatched"]) == (row["orderedCount"], row["orderedSum"], row["paidCount"], row["failedCount"],
                                        row["pendingCount"], row["mismatchedCount"])
        assert line["Open AMOUNT_DIFFERS"] == sum(m["count"] for m in row["mismatches"] if m["klass"] == "AMOUNT_DIFFERS")
    assert sum(r["Mismatched"] for r in got.values()) == 1

    # the file is its creator's: another reporter hears of no such export
    other = make_user(["reconciliation.report.search", "location.scope.national"])
    assert download(client, other, job["uuid"]).status_code == 404
    # a scoped officer's export holds their locations only, like their GraphQL report
    officer = make_user(["payroll.payroll.search", "reconciliation.report.search"])
    assign_user_locations(officer, [sent.locations["C2"].pk])
    theirs = export(gql(officer), run_jobs, django_capture_on_commit_callbacks, format=file_format,
                    payrollId=str(sent.payroll.pk))
    [_, mine] = table(download(client, officer, theirs["uuid"]), file_format.lower())
    assert mine[2] == len([r for r in refs if sent.colline[r] == "H3"]) and mine[0] == "January"


def test_a_bad_export_request_is_refused_before_any_job(sent_payroll, gql, make_user, client):
    from core.models import Job

    api = gql(sent_payroll.user)
    unknown = api.ok(EXPORT, {"i": {"payrollId": "00000000-0000-0000-0000-000000000000"}})
    assert unknown["exportReconciliationReport"]["errors"][0]["code"] == "NOT_FOUND"
    denied = gql(make_user(["payroll.payroll.search"])).execute(EXPORT, {"i": {}})
    assert denied["errors"] and denied["data"]["exportReconciliationReport"] is None
    assert not Job.objects.filter(kind="reconciliation.report_export").exists()
    assert client.get("/api/reconciliation/report/00000000-0000-0000-0000-000000000000/download").status_code == 401
    assert download(client, sent_payroll.user, "00000000-0000-0000-0000-000000000000").status_code == 404
