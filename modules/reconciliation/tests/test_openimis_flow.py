"""The openIMIS payroll frontend's reconciliation flow, request by request: download the blank
CSV, fill it in, upload it, read csvReconciliationUpload and benefitsSummary, close."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from modules.payroll.models import BenefitConsumption, Payroll
from modules.reconciliation.models import Mismatch

pytestmark = pytest.mark.django_db

CLOSE = 'mutation($i: ClosePayrollMutationInput!) { closePayroll(input: $i) { errors { code message } payroll { status } } }'


def blank(client: Any, user: Any, payroll_id: Any) -> list[list[str]]:
    from core.auth.tokens import issue

    response = client.get("/api/payroll/csv_reconciliation/", {"payroll_id": str(payroll_id), "blank": "true",
                                                                 "payroll_file_name": "January"},
                          HTTP_AUTHORIZATION=f"Bearer {issue(user).token}")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))


def test_download_fill_upload_summarise_and_close(sent_payroll, client, gql, upload_result, provider_files):
    sent = sent_payroll
    api = gql(sent.user)
    table = blank(client, sent.user, sent.payroll.pk)
    assert table[0] == ["Code", "First Name", "Last Name", "Amount", "Currency", "Paid", "Receipt", "Date Paid"]
    assert sorted(r[0] for r in table[1:]) == sent.references and {r[5] for r in table[1:]} == {""}
    filled = [table[0]]
    for n, row in enumerate(table[1:]):
        row[5], row[6] = ("Yes", f"R-{n}") if n < 4 else ("No", "")
        filled.append(row)
    filled.append(["PAY-TYPO", "", "", "", "", "Yes", "R-X"])  # a code that does not exist
    path = provider_files.csv(filled[0], filled[1:])
    file = upload_result(sent.user, path, payroll_id=sent.payroll.pk, openimis=True)
    assert file.status == "PARTIAL_SUCCESS"

    uploads = api.ok('query($p: ID) { csvReconciliationUpload(payroll_Id: $p) { totalCount edges { node '
                     '{ fileName status error jsonExt } } } }', {"p": str(sent.payroll.pk)})["csvReconciliationUpload"]
    assert uploads["totalCount"] == 1
    node = uploads["edges"][0]["node"]
    assert node["fileName"] == path.name and node["status"] == "PARTIAL_SUCCESS"
    assert "PAY-TYPO" in str(node["error"])

    paid = BenefitConsumption.objects.filter(payroll=sent.payroll, status="PAID")
    assert paid.count() == 4 and set(paid.values_list("provider_transaction_id", flat=True)) == {f"R-{n}" for n in range(4)}
    receipts = api.ok('query($p: UUID!) { benefitConsumptionByPayroll(payrollUuid: $p) { edges { node { code receipt '
                      'status } } } }', {"p": str(sent.payroll.pk)})["benefitConsumptionByPayroll"]["edges"]
    assert sorted(e["node"]["receipt"] for e in receipts if e["node"]["status"] == "PAID") == [f"R-{n}" for n in range(4)]
    summary = api.ok('query($p: UUID) { benefitsSummary(payrollId: $p) { totalAmountReceived totalAmountDue } }',
                     {"p": str(sent.payroll.pk)})["benefitsSummary"]
    paid_sum = sum(sent.amounts[c] for c in paid.values_list("code", flat=True))
    assert summary == {"totalAmountReceived": paid_sum, "totalAmountDue": sum(sent.amounts.values()) - paid_sum}

    # Not final yet (two payments without word, an unknown code): closing is refused and says why.
    refused = api.ok(CLOSE, {"i": {"id": str(sent.payroll.pk)}})["closePayroll"]
    assert refused["errors"][0]["code"] in ("INVALID_PAYROLL_STATUS", "NOT_RECONCILED")

    # The provider's word on the other two arrives; the re-downloaded file shows what is known.
    rest = [[c, "", "", "", "", "Yes", f"R-{c}"] for c in sent.references if not paid.filter(code=c).exists()]
    done = upload_result(sent.user, provider_files.csv(filled[0], rest), payroll_id=sent.payroll.pk, openimis=True)
    assert done.status == "SUCCESS", done.error
    assert {r[5] for r in blank(client, sent.user, sent.payroll.pk)[1:]} == {"Yes"}
    assert Payroll.objects.get(pk=sent.payroll.pk).status == "PAID"
    closed = api.ok(CLOSE, {"i": {"id": str(sent.payroll.pk)}})["closePayroll"]
    assert closed["errors"] == [] and closed["payroll"]["status"] == "RECONCILED"


def test_an_open_mismatch_holds_the_close_until_it_is_resolved(sent_payroll, gql, upload_result, provider_files):
    sent = sent_payroll
    api = gql(sent.user)
    header = ["reference", "status", "transaction_id", "amount"]
    rows = [[r, "PAID", f"T-{n}", sent.amounts[r] - (100 if n == 0 else 0)] for n, r in enumerate(sent.references)]
    upload_result(sent.user, provider_files.csv(header, rows), point="BANK")
    [case] = Mismatch.objects.all()
    assert case.klass == "AMOUNT_DIFFERS" and Payroll.objects.get(pk=sent.payroll.pk).status == "SENT"

    listed = api.ok('query($p: ID) { reconciliationMismatch(payroll_Id: $p, status: OPEN) { totalCount edges { node '
                    '{ uuid version klass reference detail status history { action } } } } }',
                    {"p": str(sent.payroll.pk)})["reconciliationMismatch"]
    assert listed["totalCount"] == 1 and listed["edges"][0]["node"]["klass"] == "AMOUNT_DIFFERS"
    update = ('mutation($i: UpdateReconciliationMismatchMutationInput!) { updateReconciliationMismatch(input: $i) '
              '{ errors { field code message } mismatch { status resolution assignee version history { action } } } }')
    no_reason = api.ok(update, {"i": {"id": str(case.pk), "resolution": "ACCEPTED_WITH_REASON"}})
    assert no_reason["updateReconciliationMismatch"]["errors"][0]["code"] == "COMMENT_REQUIRED"
    assigned = api.ok(update, {"i": {"id": str(case.pk), "assigneeId": str(sent.user.pk), "comment": "checking"}})
    assert assigned["updateReconciliationMismatch"]["mismatch"]["assignee"] == sent.user.username
    stale = api.ok(update, {"i": {"id": str(case.pk), "version": 1, "comment": "again"}})
    assert stale["updateReconciliationMismatch"]["errors"][0]["code"] == "STALE_VERSION"
    resolved = api.ok(update, {"i": {"id": str(case.pk), "resolution": "ACCEPTED_WITH_REASON",
                                     "comment": "the provider kept its 100 BIF fee; agreed by the ministry"}})
    out = resolved["updateReconciliationMismatch"]
    assert out["errors"] == [] and out["mismatch"]["status"] == "RESOLVED"
    assert [h["action"] for h in out["mismatch"]["history"]] == ["DETECTED", "ASSIGNED", "RESOLVED"]
    # accepted: the provider's word stands, the payment is paid and the payroll can close
    assert Payroll.objects.get(pk=sent.payroll.pk).status == "PAID"
    closed = api.ok(CLOSE, {"i": {"id": str(sent.payroll.pk)}})["closePayroll"]
    assert closed["errors"] == [] and closed["payroll"]["status"] == "RECONCILED"
    again = api.ok(update, {"i": {"id": str(case.pk), "comment": "late"}})
    assert again["updateReconciliationMismatch"]["errors"][0]["code"] == "MISMATCH_RESOLVED"
