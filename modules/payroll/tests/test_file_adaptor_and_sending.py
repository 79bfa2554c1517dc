"""Sending a payroll as payment files, results coming back, closing and re-issuing failures."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from core.actors import system_actor
from modules.payroll import adaptors
from modules.payroll.models import BenefitConsumption, Payroll
from modules.payroll.sending import _claim_batch, _instructions, send_payroll

pytestmark = pytest.mark.django_db

TOKEN = "result-file-token"


@pytest.fixture
def files(settings: Any, tmp_path: Path, monkeypatch: Any) -> Path:
    settings.MEDIA_ROOT = str(tmp_path)
    monkeypatch.setenv("COREMIS_PSP_CB_TOKEN", TOKEN)
    return tmp_path / "payment_files"


def send(client: Any, payroll_id: str, capture: Any, run_jobs: Any, *, mutate, ok) -> dict[str, Any]:
    with capture(execute=True):
        started = ok(mutate(client, "makePaymentForPayroll", {"id": payroll_id}, "payroll { status } job { uuid }"))
    assert started["payroll"]["status"] == "SENDING"
    run_jobs()
    return client.ok('{ jobs(kind: "payroll.send", orderBy: ["-created_at"], first: 1) { edges { node { state result } } } }')[
        "jobs"]["edges"][0]["node"]


def post_results(client: Any, rows: list[tuple[str, str, str]], token: str = TOKEN) -> Any:
    body = "reference,status,transaction_id,message\n" + "".join(f"{r},{s},{t},\n" for r, s, t in rows)
    return client.post("/api/payroll/callback/BANK", data=body, content_type="text/csv",
                       HTTP_AUTHORIZATION=f"Bearer {token}")


def test_payment_file_results_close_and_reissue(gql, make_user, group_plan, files, client, run_jobs,
                                                 django_capture_on_commit_callbacks, create_payroll, expected_amounts, generate, mutate, ok, payroll_rights, setup_payments):
    api = gql(make_user(payroll_rights))
    ids = setup_payments(api, group_plan, config={"format": "csv", "callback_token": {"env": "COREMIS_PSP_CB_TOKEN"}})
    payroll = ok(create_payroll(api, ids))["payroll"]
    job = send(api, payroll["uuid"], django_capture_on_commit_callbacks, run_jobs, mutate=mutate, ok=ok)
    assert job["state"] == "SUCCEEDED" and json.loads(job["result"])["sent"] == 8
    assert Payroll.objects.get(pk=payroll["uuid"]).status == "SENT"

    [written] = list((files / "BANK").glob("*.csv"))
    content = written.read_bytes()
    assert (files / "BANK" / f"{written.name}.sha256").read_text().split()[0] == hashlib.sha256(content).hexdigest()
    rows = list(csv.reader(io.StringIO(content.decode())))
    assert rows[0][0] == "reference" and rows[-1] == ["TOTAL", "8", str(sum(expected_amounts.values()))]
    references = [r[0] for r in rows[1:-1]]
    assert sorted(references) == sorted(BenefitConsumption.objects.values_list("code", flat=True))

    assert post_results(client, [(references[0], "PAID", "T0")], token="wrong").status_code == 403
    results = [(ref, "FAILED" if n < 2 else "PAID", f"TXN-{n}") for n, ref in enumerate(references)]
    answer = post_results(client, results)
    assert answer.status_code == 200 and answer.json() == {"received": 8, "changed": 8}
    # the provider sends the file again, and then a late contradicting line: nothing changes
    assert post_results(client, results).json()["changed"] == 0
    assert post_results(client, [(references[5], "FAILED", "LATE")]).json()["changed"] == 0
    assert Payroll.objects.get(pk=payroll["uuid"]).status == "PARTIALLY_PAID"

    failed_amount = sum(BenefitConsumption.objects.filter(code__in=references[:2]).values_list("amount", flat=True))
    summary = api.ok('query($p: UUID) { benefitsSummary(payrollId: $p) { totalAmountReceived totalAmountDue '
                     'totalAmountFailed count } }', {"p": payroll["uuid"]})["benefitsSummary"]
    assert summary == {"totalAmountReceived": sum(expected_amounts.values()) - failed_amount,
                       "totalAmountDue": failed_amount, "totalAmountFailed": failed_amount, "count": 8}
    unpaid = api.ok('query($p: UUID!) { benefitConsumptionByPayroll(payrollUuid: $p, filterOnlyUnpaid: true) '
                    '{ totalCount edges { node { code status receipt } } } }', {"p": payroll["uuid"]})
    nodes = [e["node"] for e in unpaid["benefitConsumptionByPayroll"]["edges"]]
    assert sorted(n["code"] for n in nodes) == sorted(references[:2]) and {n["status"] for n in nodes} == {"FAILED"}

    closed = ok(mutate(api, "closePayroll", {"id": payroll["uuid"]}, "payroll { status }"))
    assert closed["payroll"]["status"] == "RECONCILED"

    follow_up = ok(generate(api, {"name": "January re-issue", "fromFailedInvoicesPayrollId": payroll["uuid"]}))["payroll"]
    assert (follow_up["controlCount"], follow_up["controlSum"]) == (2, failed_amount)
    again = BenefitConsumption.objects.filter(payroll_id=follow_up["uuid"])
    failed = BenefitConsumption.objects.filter(code__in=references[:2])
    assert {r.beneficiary_id for r in again} == {r.beneficiary_id for r in failed}
    assert not {r.code for r in again} & set(references)  # a new instruction has a new reference
    assert {r.reissue_of_id for r in again} == {r.pk for r in failed}
    nothing = mutate(api, "createPayroll", {"name": "twice", "fromFailedInvoicesPayrollId": payroll["uuid"]}, "job { uuid }")
    assert nothing["errors"][0]["code"] == "NOTHING_TO_PAY"


def test_xlsx_files_per_batch_carry_their_own_totals(gql, make_user, group_plan, files, run_jobs,
                                                     django_capture_on_commit_callbacks, create_payroll, expected_amounts, mutate, ok, payroll_rights, setup_payments):
    api = gql(make_user(payroll_rights))
    ids = setup_payments(api, group_plan, config={"format": "xlsx", "batch_size": 3})
    payroll = ok(create_payroll(api, ids))["payroll"]
    send(api, payroll["uuid"], django_capture_on_commit_callbacks, run_jobs, mutate=mutate, ok=ok)
    written = sorted((files / "BANK").glob("*.xlsx"))
    assert len(written) == 3
    count = total = 0
    for path in written:
        sheet = list(load_workbook(path, read_only=True).active.iter_rows(values_only=True))
        assert sheet[-1][0] == "TOTAL" and sheet[-1][1] == len(sheet) - 2
        assert sheet[-1][2] == sum(int(row[6]) for row in sheet[1:-1])
        count, total = count + sheet[-1][1], total + sheet[-1][2]
    assert (count, total) == (8, sum(expected_amounts.values()))


FORMULA = '=HYPERLINK("http://evil.example","click")'


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_formula_cells_in_payment_files_are_neutralised(gql, make_user, group_plan, files, run_jobs,
                                                        django_capture_on_commit_callbacks, file_format, create_payroll, expected_amounts, mutate, ok, payroll_rights, setup_payments):
    from modules.individual.models import Individual

    # household 0 has one member, who is its recipient
    Individual.objects.filter(first_name="P0-0").update(
        first_name=FORMULA, last_name="@SUM(A1:A9)",
        json_ext={"phone": "+257 79 000 001", "account": "-2+3+cmd|' /C calc'!A0"})
    api = gql(make_user(payroll_rights))
    ids = setup_payments(api, group_plan, config={"format": file_format})
    payroll = ok(create_payroll(api, ids))["payroll"]
    send(api, payroll["uuid"], django_capture_on_commit_callbacks, run_jobs, mutate=mutate, ok=ok)
    [written] = list((files / "BANK").glob(f"*.{file_format}"))
    if file_format == "csv":
        rows = list(csv.reader(io.StringIO(written.read_text())))
    else:
        cells = list(load_workbook(written).active.iter_rows())
        assert all(c.data_type != "f" for row in cells for c in row)  # no formula anywhere
        rows = [[c.value for c in row] for row in cells]
    [evil] = [r for r in rows if len(r) > 3 and r[3] == "'@SUM(A1:A9)"]
    assert evil[2] == "'" + FORMULA and evil[5] == "'-2+3+cmd|' /C calc'!A0"
    assert evil[4] == "+257 79 000 001"  # a phone number stays readable by the provider
    assert rows[-1][0] == "TOTAL" and str(rows[-1][2]) == str(sum(expected_amounts.values()))


def test_a_crash_between_sending_and_recording_never_sends_twice(gql, make_user, group_plan, files, create_payroll, mutate, ok, payroll_rights, setup_payments):
    api = gql(make_user(payroll_rights))
    ids = setup_payments(api, group_plan, config={"format": "csv", "batch_size": 3})
    payroll = ok(create_payroll(api, ids))["payroll"]
    ok(mutate(api, "makePaymentForPayroll", {"id": payroll["uuid"]}, "payroll { status }"))
    row = Payroll.objects.get(pk=payroll["uuid"])

    # 1: the process dies after marking a batch dispatched, before the provider got it
    lost = _claim_batch(row)
    # 2: the provider gets the next batch but the process dies before recording its answer
    delivered = _claim_batch(row)
    adaptors.send_batch(delivered[0].payment_point, _instructions(delivered, 0))

    result = send_payroll(row.pk, system_actor())
    assert result == {"sent": 5, "unknown": 0, "pending": 0}
    sent_references: list[str] = []
    for path in (files / "BANK").glob("*.manifest.json"):
        sent_references += json.loads(path.read_text())["references"]
    assert sorted(sent_references) == sorted(BenefitConsumption.objects.values_list("code", flat=True))
    assert {r.code for r in lost} <= set(sent_references)
    attempts = dict(BenefitConsumption.objects.values_list("code", "send_attempts"))
    assert all(attempts[r.code] == 1 for r in delivered)  # resolved by a status query, not resent
    assert all(attempts[r.code] == 2 for r in lost)       # the provider never had them: sent again
    assert set(BenefitConsumption.objects.values_list("status", flat=True)) == {"SENT"}


def test_only_one_run_sends_a_payroll_at_a_time(gql, make_user, group_plan, files, create_payroll, mutate, ok, payroll_rights, setup_payments):
    from django.db import connections

    api = gql(make_user(payroll_rights))
    ids = setup_payments(api, group_plan)
    payroll = ok(create_payroll(api, ids))["payroll"]
    ok(mutate(api, "makePaymentForPayroll", {"id": payroll["uuid"]}, "payroll { status }"))
    other = connections.create_connection("default")  # another worker, already sending
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [f"payroll.send:{payroll['uuid']}"])
        assert send_payroll(payroll["uuid"], system_actor()) == {"skipped": "another run is sending this payroll"}
        assert not (files / "BANK").exists() or not list((files / "BANK").glob("*.csv"))
    finally:
        other.close()
    assert send_payroll(payroll["uuid"], system_actor())["sent"] == 8
