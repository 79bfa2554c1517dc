"""Callbacks reach the ledger too; reports add up per payroll and per location, in scope."""

from __future__ import annotations

from typing import Any

import pytest

from modules.reconciliation.models import Mismatch, ProviderReport

pytestmark = pytest.mark.django_db

REPORT = ('query($p: UUID, $g: ReconciliationGroupByEnum, $l: Int) { reconciliationReport(payrollId: $p, groupBy: $g, '
          'locationLevel: $l) { key label orderedCount orderedSum paidCount paidSum failedCount pendingCount '
          'mismatchedCount mismatchedSum mismatches { klass count } } }')


def callback(client: Any, token: str, rows: list[tuple[str, str, str]], capture: Any) -> Any:
    body = "reference,status,transaction_id,message\n" + "".join(f"{r},{s},{t},\n" for r, s, t in rows)
    with capture(execute=True):  # the ledger hears of it once the callback committed
        return client.post("/api/payroll/callback/BANK", data=body, content_type="text/csv",
                           HTTP_AUTHORIZATION=f"Bearer {token}")


def test_callbacks_are_written_to_the_ledger_once_and_contradictions_found(
        sent_payroll, client, callback_token, provider_files, upload_result, django_capture_on_commit_callbacks):
    sent = sent_payroll
    a, b, c = sent.references[:3]
    rows = [(a, "PAID", "CB-A"), (b, "PAID", "CB-B"), (c, "FAILED", "CB-C")]
    assert callback(client, callback_token, rows, django_capture_on_commit_callbacks).json() == {"received": 3, "changed": 3}
    assert callback(client, callback_token, rows, django_capture_on_commit_callbacks).json()["changed"] == 0
    assert sorted(ProviderReport.objects.values_list("source", "reference", "status")) == sorted(
        [("CALLBACK", a, "PAID"), ("CALLBACK", b, "PAID"), ("CALLBACK", c, "FAILED")])
    # the bank's statement file later says the failed one was paid, and the paid one paid by another transaction
    header = ["reference", "status", "transaction_id"]
    upload_result(sent.user, provider_files.csv(header, [[c, "PAID", "CB-C"], [a, "PAID", "FILE-A"]]), point="BANK")
    assert {(m.klass, m.reference) for m in Mismatch.objects.all()} == {("PAID_AFTER_FAILED", c), ("PAID_TWICE", a)}


def test_the_report_adds_up_per_payroll_and_location_and_follows_scope(sent_payroll, gql, make_user, provider_files,
                                                                       upload_result):
    from modules.location.services import assign_user_locations

    sent = sent_payroll
    refs = sent.references
    header = ["reference", "status", "transaction_id", "amount"]
    rows = [[refs[0], "PAID", "T0", sent.amounts[refs[0]]], [refs[1], "FAILED", "T1", ""],
            [refs[2], "PAID", "T2", sent.amounts[refs[2]] + 1]]
    upload_result(sent.user, provider_files.csv(header, rows), point="BANK")
    api = gql(sent.user)
    [whole] = api.ok(REPORT, {"p": str(sent.payroll.pk), "g": "PAYROLL"})["reconciliationReport"]
    total = sum(sent.amounts.values())
    assert whole["orderedCount"] == 6 and whole["orderedSum"] == total and whole["label"] == "January"
    assert (whole["paidCount"], whole["failedCount"], whole["mismatchedCount"], whole["pendingCount"]) == (1, 1, 1, 3)
    assert whole["mismatches"] == [{"klass": "AMOUNT_DIFFERS", "count": 1}]
    collines = api.ok(REPORT, {"p": str(sent.payroll.pk), "g": "LOCATION", "l": 2})["reconciliationReport"]
    assert sorted(r["label"] for r in collines) == ["H1", "H2", "H3"]
    assert sum(r["orderedCount"] for r in collines) == 6 and sum(r["orderedSum"] for r in collines) == total
    for row in collines:
        assert row["paidCount"] + row["failedCount"] + row["pendingCount"] + row["mismatchedCount"] == row["orderedCount"]
    [province] = api.ok(REPORT, {"p": str(sent.payroll.pk), "g": "LOCATION", "l": 0})["reconciliationReport"]
    assert province["label"] == "P1" and province["orderedCount"] == 6

    officer = make_user(["payroll.payroll.search", "reconciliation.report.search", "reconciliation.mismatch.search"])
    assign_user_locations(officer, [sent.locations["C2"].pk])
    scoped = gql(officer)
    [mine] = scoped.ok(REPORT, {"p": str(sent.payroll.pk), "g": "PAYROLL"})["reconciliationReport"]
    in_c2 = [r for r in refs if sent.colline[r] == "H3"]
    assert mine["orderedCount"] == len(in_c2) and mine["orderedSum"] == sum(sent.amounts[r] for r in in_c2)
    seen = scoped.ok("{ reconciliationMismatch { totalCount } }")["reconciliationMismatch"]["totalCount"]
    assert seen == (1 if sent.colline[refs[2]] == "H3" else 0)
    outsider = gql(make_user(["reconciliation.report.search"]))
    denied = outsider.execute(REPORT, {"p": str(sent.payroll.pk), "g": "PAYROLL"})
    assert denied["errors"][0]["extensions"]["code"] == "NOT_FOUND"


def test_the_per_location_report_groups_by_the_place_a_payment_was_generated_for(sent_payroll, gql, make_user):
    """Generation records the recipient's place on the payment; the report groups by it (a
    recipient who moved since stays in the round they were paid in) while scope follows where
    the recipient lives now, and a payment without a place (made before it was recorded) is
    grouped by its recipient's place."""
    from django.db import connection

    from modules.individual.models import Individual
    from modules.location.services import assign_user_locations
    from modules.payroll.models import BenefitConsumption

    sent = sent_payroll
    payments = BenefitConsumption.objects.filter(payroll=sent.payroll)
    assert all(p.place_id == p.individual.location_id for p in payments.select_related("individual"))
    moved = next(r for r in sent.references if sent.colline[r] == "H1")
    person = payments.get(code=moved).individual_id
    Individual.objects.filter(pk=person).update(location=sent.locations["H3"])  # moved to commune C2 after generation
    api = gql(sent.user)

    def by_colline() -> dict[str, int]:
        rows = api.ok(REPORT, {"p": str(sent.payroll.pk), "g": "LOCATION", "l": 2})["reconciliationReport"]
        return {r["label"]: r["orderedCount"] for r in rows}

    assert by_colline() == {"H1": 2, "H2": 2, "H3": 2}
    officer = make_user(["payroll.payroll.search", "reconciliation.report.search"])
    assign_user_locations(officer, [sent.locations["C2"].pk])
    rows = gql(officer).ok(REPORT, {"p": str(sent.payroll.pk), "g": "LOCATION", "l": 2})["reconciliationReport"]
    assert {r["label"]: r["orderedCount"] for r in rows} == {"H1": 1, "H3": 2}  # lives in C2 now, paid in H1's round
    with connection.cursor() as cursor:  # a payment from before places were recorded
        cursor.execute("UPDATE payroll_benefitconsumption SET place_id = NULL WHERE code = %s", [moved])
    assert by_colline() == {"H1": 1, "H2": 2, "H3": 3}


def test_no_word_by_the_deadline_is_a_mismatch_that_a_late_word_resolves(sent_payroll, provider_files, upload_result):
    import datetime

    from django.utils import timezone

    from modules.reconciliation.ledger import flag_unreported

    sent = sent_payroll
    later = timezone.now() + datetime.timedelta(days=15)
    assert flag_unreported(sent.user) == 0  # not late yet
    assert flag_unreported(sent.user, later) == 6
    assert flag_unreported(sent.user, later) == 0
    ref = sent.references[0]
    upload_result(sent.user, provider_files.csv(["reference", "status", "transaction_id"], [[ref, "PAID", "T"]]),
                  point="BANK")
    late = Mismatch.objects.get(reference=ref)
    assert (late.status, late.resolution) == ("RESOLVED", "PROVIDER_CORRECTED")
    assert [e.action for e in late.events.order_by("id")] == ["DETECTED", "RESOLVED"]
    assert Mismatch.objects.filter(status="OPEN", klass="NOT_REPORTED").count() == 5
