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


# What the openIMIS payroll pages ask for (fe-payroll 1.5): the approved payrolls' list, one
# payroll with its payments inline, the payments' tab and the payment files' tab.
APPROVED_PAGE = ('{ payroll(isDeleted: false, status: APPROVE_FOR_PAYMENT, first: 10) { totalCount edges { node '
                 '{ id name status paymentPlan { code benefitPlan } dateValidFrom } } } }')
PAYROLL_PAGE = ('query($p: UUID) { payroll(id: $p) { totalCount edges { node { id name status '
                'benefitConsumption { id status code dateDue receipt individual { firstName lastName } '
                'benefitAttachment { bill { id code terms amountTotal } } } } } } }')
PAYMENTS_TAB = ('query($p: UUID!) { benefitConsumptionByPayroll(isDeleted: false, payrollUuid: $p, first: 10) '
                '{ totalCount edges { node { id isDeleted jsonExt dateCreated dateUpdated dateValidFrom dateValidTo '
                'code individual { firstName lastName } benefitAttachment { bill { id code terms datePayed } } '
                'receipt photo amount type status dateDue } } } }')
SUMMARY = ('query($p: UUID!) { benefitAttachmentByPayroll(isDeleted: false, payrollUuid: $p, first: 10) { totalCount '
           'edges { node { benefit { id status code dateDue receipt individual { firstName lastName } jsonExt type '
           'amount } bill { id code terms amountTotal datePayed } } } } }')
FILES_TAB = ('query($p: ID, $d: Boolean) { csvReconciliationUpload(isDeleted: $d, payroll_Id: $p, first: 10) '
             '{ totalCount edges { node { fileName status error jsonExt } } } }')


def test_the_openimis_payroll_pages_read_a_payroll_its_payments_and_files(
        sent_payroll, gql, make_user, admin_user, upload_result, provider_files, settings):
    from modules.location.services import set_user_locations

    sent = sent_payroll
    api = gql(sent.user)
    pid = str(sent.payroll.pk)
    approved = api.ok(APPROVED_PAGE)["payroll"]
    assert approved["totalCount"] == 1 and approved["edges"][0]["node"]["status"] == "SENT"
    assert api.ok('{ payroll(status: RECONCILED) { totalCount } }')["payroll"]["totalCount"] == 0
    assert api.ok('{ payroll(status: PENDING_APPROVAL) { totalCount } }')["payroll"]["totalCount"] == 0

    page = api.ok(PAYROLL_PAGE, {"p": pid})["payroll"]
    assert page["totalCount"] == 1
    payments = page["edges"][0]["node"]["benefitConsumption"]
    assert [p["code"] for p in payments] == sent.references
    assert {p["dateDue"] for p in payments} == {"2026-12-31"} and {p["status"] for p in payments} == {"SENT"}
    bills = [p["benefitAttachment"] for p in payments]
    assert all(len(b) == 1 for b in bills)
    assert {(b[0]["bill"]["code"], b[0]["bill"]["amountTotal"]) for b in bills} == set(sent.amounts.items())
    assert api.ok(PAYROLL_PAGE, {"p": "00000000-0000-0000-0000-000000000000"})["payroll"]["totalCount"] == 0

    summary = api.ok(SUMMARY, {"p": pid})["benefitAttachmentByPayroll"]
    assert summary["totalCount"] == 6
    assert {(e["node"]["benefit"]["code"], e["node"]["bill"]["amountTotal"]) for e in summary["edges"]} == set(
        sent.amounts.items())

    tab = api.ok(PAYMENTS_TAB, {"p": pid})["benefitConsumptionByPayroll"]
    assert tab["totalCount"] == 6
    node = tab["edges"][0]["node"]
    assert (node["type"], node["photo"], node["dateValidFrom"], node["dateValidTo"]) == ("file", None, "2026-01-01",
                                                                                       "2026-12-31")

    upload_result(sent.user, provider_files.csv(["reference", "status", "transaction_id"],
                                                [[sent.references[0], "PAID", "T-1"]]), point="BANK",
                  payroll_id=sent.payroll.pk)
    assert api.ok(FILES_TAB, {"p": pid, "d": False})["csvReconciliationUpload"]["totalCount"] == 1
    assert api.ok(FILES_TAB, {"p": pid, "d": None})["csvReconciliationUpload"]["totalCount"] == 1
    assert api.ok(FILES_TAB, {"p": pid, "d": True})["csvReconciliationUpload"]["totalCount"] == 0  # never deleted
    paid = api.ok(PAYROLL_PAGE, {"p": pid})["payroll"]["edges"][0]["node"]["benefitConsumption"]
    assert [p["receipt"] for p in paid if p["status"] == "PAID"] == ["T-1"]

    # a commune officer sees the payroll's payments in the commune only
    officer = make_user(["payroll.payroll.search", "individual.registry.search"])
    set_user_locations(admin_user, officer, [sent.locations["C2"].pk])
    mine = gql(officer).ok(PAYROLL_PAGE, {"p": pid})["payroll"]["edges"][0]["node"]["benefitConsumption"]
    assert sorted(p["code"] for p in mine) == sorted(r for r in sent.references if sent.colline[r] == "H3")

    # a payroll too large to read inline says so, and points to the paged list
    settings.COREMIS = {**settings.COREMIS, "INLINE_PAYMENTS_LIMIT": 5}
    refused = api.execute(PAYROLL_PAGE, {"p": pid})
    assert refused["errors"][0]["extensions"]["code"] == "RESPONSE_TOO_LARGE"
    assert "benefitConsumptionByPayroll" in refused["errors"][0]["message"]
    assert "SELECT" not in str(refused) and "Traceback" not in str(refused)


def test_the_openimis_location_picker_searches_by_level_letter_and_text(sent_payroll, gql, make_user, admin_user):
    from modules.location.services import set_user_locations

    api = gql(make_user(["location.location.search", "location.scope.national"]))
    query = ('query($t: String, $s: String) { locationsStr(type: $t, str: $s) { pageInfo { hasNextPage } '
             'edges { node { id uuid type code name parent { code } } } } }')
    regions = api.ok(query, {"t": "R", "s": ""})["locationsStr"]["edges"]
    assert [e["node"]["code"] for e in regions] == ["P1"]
    communes = api.ok(query, {"t": "D", "s": "c2"})["locationsStr"]["edges"]
    assert [(e["node"]["code"], e["node"]["parent"]["code"]) for e in communes] == [("C2", "P1")]
    assert sorted(e["node"]["code"] for e in api.ok(query, {"t": "Colline", "s": "H"})["locationsStr"]["edges"]) == [
        "H1", "H2", "H3"]
    officer = make_user(["location.location.search"])
    set_user_locations(admin_user, officer, [sent_payroll.locations["C1"].pk])
    assert sorted(e["node"]["code"] for e in gql(officer).ok(query, {"t": "W", "s": ""})["locationsStr"]["edges"]) == [
        "H1", "H2"]
    assert gql(make_user(["payroll.payroll.search"])).execute(query, {"t": "R"})["errors"]


def test_openimis_address_answers_openimis_words_and_coremis_address_its_own(sent_payroll, client, gql):
    """openIMIS's payroll page shows the reconciliation upload only for a payroll whose status is
    APPROVE_FOR_PAYMENT and whose payment method is StrategyOfflinePayment: at its address
    (/api/graphql) a sent file-paid payroll says exactly that; at /graphql coremis's words."""
    import json as json_

    from core.auth.tokens import issue

    sent = sent_payroll
    query = ('query($p: UUID!, $s: String) { payroll(id: $p) { edges { node { status paymentMethod '
             'benefitConsumption { code status } } } } '
             'benefitConsumptionByPayroll(payrollUuid: $p, status: $s) { totalCount edges { node { status } } } }')

    def ask(path: str, status: str) -> dict[str, Any]:
        response = client.post(path, data=json_.dumps({"query": query, "variables": {"p": str(sent.payroll.pk),
                                                                                     "s": status}}),
                               content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {issue(sent.user).token}")
        body = response.json()
        assert "errors" not in body, body
        return body["data"]

    methods = '{ paymentMethods { paymentMethods { name } } }'
    named = client.post("/api/graphql", data=json_.dumps({"query": methods}), content_type="application/json",
                        HTTP_AUTHORIZATION=f"Bearer {issue(sent.user).token}").json()
    assert {"name": "StrategyOfflinePayment"} in named["data"]["paymentMethods"]["paymentMethods"]
    theirs = ask("/api/graphql", "ACCEPTED")
    node = theirs["payroll"]["edges"][0]["node"]
    assert (node["status"], node["paymentMethod"]) == ("APPROVE_FOR_PAYMENT", "StrategyOfflinePayment")
    assert {p["status"] for p in node["benefitConsumption"]} == {"ACCEPTED"}
    assert theirs["benefitConsumptionByPayroll"]["totalCount"] == 6
    ours = ask("/graphql", "SENT")
    node = ours["payroll"]["edges"][0]["node"]
    assert (node["status"], node["paymentMethod"]) == ("SENT", "file")
    assert {p["status"] for p in node["benefitConsumption"]} == {"SENT"}
    assert ours["benefitConsumptionByPayroll"]["totalCount"] == 6
    assert ask("/graphql", "ACCEPTED")["benefitConsumptionByPayroll"]["totalCount"] == 0  # not a coremis word

    # paid by the provider: openIMIS's RECONCILED, coremis's PAID, found by either word at its own address
    ref = sent.references[0]
    BenefitConsumption.objects.filter(code=ref).update(status="PAID")
    assert ask("/api/graphql", "RECONCILED")["benefitConsumptionByPayroll"]["totalCount"] == 1
    assert ask("/graphql", "RECONCILED")["benefitConsumptionByPayroll"]["totalCount"] == 0
    assert ask("/graphql", "PAID")["benefitConsumptionByPayroll"]["totalCount"] == 1


def test_the_upload_dialog_posts_with_the_cookie_and_no_csrf_header(sent_payroll, provider_files, django_capture_on_commit_callbacks):
    """openIMIS's upload dialog posts FormData with its cookies and no CSRF header: accepted when
    the browser's Origin names this site, refused from another site or with no Origin."""
    import json as json_

    from django.test import Client

    sent = sent_payroll
    browser = Client(enforce_csrf_checks=True)
    sent.user.set_password("correct-horse-battery")
    sent.user.save()
    login = browser.post("/api/graphql", data=json_.dumps({"query": 'mutation { tokenAuth(username: "%s", password: '
                                                                    '"correct-horse-battery") { refreshExpiresIn } }'
                                                                    % sent.user.username}),
                         content_type="application/json", HTTP_ORIGIN="http://testserver")
    assert "errors" not in login.json(), login.json()
    path = provider_files.csv(["Code", "Paid", "Receipt"], [[sent.references[0], "Yes", "R-1"]])
    url = f"/api/payroll/csv_reconciliation/?payroll_id={sent.payroll.pk}"

    def post(**headers: Any) -> Any:
        with open(path, "rb") as handle, django_capture_on_commit_callbacks(execute=False):
            return browser.post(url, {"file": handle}, **headers)

    assert post(HTTP_ORIGIN="https://evil.example").status_code == 401
    assert post().status_code == 401  # no Origin: the token is required
    accepted = post(HTTP_ORIGIN="http://testserver")
    assert accepted.status_code == 202, accepted.content
    # GraphQL keeps requiring the token with a cookie, whatever the Origin
    journal = browser.post("/api/graphql", data=json_.dumps({"query": "{ mutationLogs(first: 1) { totalCount } }"}),
                           content_type="application/json", HTTP_ORIGIN="http://testserver").json()
    assert journal["errors"][0]["extensions"]["code"] == "CSRF_FAILED"


def test_payroll_mutations_take_openimis_ids_form_with_one_payroll(sent_payroll, gql, make_payroll):
    sent = sent_payroll
    api = gql(sent.user)
    other = make_payroll(name="Other", cycle_code="2026-02")
    two = api.ok(CLOSE, {"i": {"ids": [str(sent.payroll.pk), str(other.payroll.pk)]}})["closePayroll"]
    assert [e["code"] for e in two["errors"]] == ["INVALID"]
    assert [e["code"] for e in api.ok(CLOSE, {"i": {}})["closePayroll"]["errors"]] == ["REQUIRED"]
    # as the frontend sends it: ids with the one payroll (refused here because it is not paid yet)
    one = api.ok(CLOSE, {"i": {"ids": [str(sent.payroll.pk)]}})["closePayroll"]
    assert one["errors"][0]["code"] in ("INVALID_PAYROLL_STATUS", "NOT_RECONCILED"), one
    assert Payroll.objects.get(pk=sent.payroll.pk).status == "SENT"


def test_an_approved_payroll_paid_offline_is_reconciled_from_the_filled_file(make_payroll, client, gql, upload_result,
                                                                            provider_files):
    """openIMIS's offline payment: the payroll is approved, never sent through coremis; the
    officer downloads the list, the provider pays, the filled file comes back. The first word
    makes the payroll SENT, the last one PAID, and it then closes as any sent payroll."""
    approved = make_payroll(send=False)
    assert Payroll.objects.get(pk=approved.payroll.pk).status == "APPROVED"
    table = blank(client, approved.user, approved.payroll.pk)
    first, rest = table[1:3], table[3:]
    for row in first:
        row[5], row[6] = "Yes", f"R-{row[0]}"
    assert upload_result(approved.user, provider_files.csv(table[0], first), payroll_id=approved.payroll.pk,
                         openimis=True).status == "SUCCESS"
    assert Payroll.objects.get(pk=approved.payroll.pk).status == "SENT"
    assert BenefitConsumption.objects.filter(payroll=approved.payroll, status="PAID").count() == 2
    for row in rest:
        row[5], row[6] = "Yes", f"R-{row[0]}"
    assert upload_result(approved.user, provider_files.csv(table[0], rest), payroll_id=approved.payroll.pk,
                         openimis=True).status == "SUCCESS"
    assert Payroll.objects.get(pk=approved.payroll.pk).status == "PAID"
    closed = gql(approved.user).ok(CLOSE, {"i": {"ids": [str(approved.payroll.pk)]}})["closePayroll"]
    assert closed["errors"] == [] and closed["payroll"]["status"] == "RECONCILED"
