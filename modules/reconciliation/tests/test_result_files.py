"""Result files from providers: matched, stored once, bad rows reported, mismatches opened."""

from __future__ import annotations

from typing import Any

import pytest

from modules.payroll.models import BenefitConsumption, Payroll
from modules.reconciliation.models import Mismatch, ProviderReport

pytestmark = pytest.mark.django_db

HEADER = ["reference", "status", "transaction_id", "amount", "currency", "date", "account"]


def rows_for(sent: Any, status: str = "PAID") -> list[list[Any]]:
    return [[ref, status, f"TX-{n}", sent.amounts[ref], "BIF", "2026-01-15", sent.phones[ref]]
            for n, ref in enumerate(sent.references)]


def test_a_result_file_pays_every_payment_once_and_again_changes_nothing(sent_payroll, provider_files, upload_result):
    sent = sent_payroll
    path = provider_files.csv(HEADER, rows_for(sent))
    file = upload_result(sent.user, path, point="BANK")
    assert file.status == "SUCCESS", file.error
    assert file.stored == 6 and ProviderReport.objects.count() == 6
    payments = BenefitConsumption.objects.filter(payroll=sent.payroll)
    assert set(payments.values_list("status", flat=True)) == {"PAID"}
    assert {p.code: p.provider_transaction_id for p in payments} == {r: f"TX-{n}" for n, r in enumerate(sent.references)}
    assert Payroll.objects.get(pk=sent.payroll.pk).status == "PAID"
    assert not Mismatch.objects.exists()

    again = upload_result(sent.user, path, point="BANK")
    assert again.status == "SUCCESS" and again.duplicate_of_id == file.pk
    # the same lines in another file (re-delivered with another name, semicolons, BOM): nothing new
    other = upload_result(sent.user, provider_files.csv(HEADER, rows_for(sent), delimiter=";", bom=True), point="BANK")
    assert other.status == "SUCCESS", other.error
    assert other.stored == 0 and ProviderReport.objects.count() == 6 and not Mismatch.objects.exists()


def test_each_difference_is_a_mismatch_and_holds_the_payment(sent_payroll, provider_files, upload_result):
    sent = sent_payroll
    a, b, c, d, e, f = sent.references
    rows = [
        [a, "PAID", "TX-A", sent.amounts[a] - 500, "BIF", "2026-01-15", sent.phones[a]],   # partial payment
        [b, "PAID", "TX-B", sent.amounts[b], "USD", "2026-01-15", sent.phones[b]],          # currency
        [c, "PAID", "TX-C", sent.amounts[c], "BIF", "2026-01-15", "+25771999999"],          # someone else
        [d, "PAID", "TX-D1", sent.amounts[d], "BIF", "2026-01-15", ""],
        [d, "PAID", "TX-D2", sent.amounts[d], "BIF", "2026-01-16", ""],                     # paid twice
        [e, "FAILED", "TX-E", "", "", "2026-01-14", ""],
        [e, "PAID", "TX-E2", sent.amounts[e], "BIF", "2026-01-16", ""],                      # paid after failed
        ["PAY-NEVER-ORDERED", "PAID", "TX-X", 9000, "BIF", "2026-01-15", ""],                # unknown
        [f, "PAID", "TX-F", sent.amounts[f], "BIF", "2026-01-15", sent.phones[f][4:]],      # local number: fine
    ]
    file = upload_result(sent.user, provider_files.csv(HEADER, rows), point="BANK")
    assert file.status == "PARTIAL_SUCCESS"  # the unknown reference is reported, not fatal
    assert "no payment has the reference PAY-NEVER-ORDERED" in " ".join(file.error.values())
    found = {(m.klass, m.reference) for m in Mismatch.objects.all()}
    assert found == {("AMOUNT_DIFFERS", a), ("CURRENCY_DIFFERS", b), ("WRONG_RECIPIENT", c), ("PAID_TWICE", d),
                     ("PAID_AFTER_FAILED", e), ("UNKNOWN_REFERENCE", "PAY-NEVER-ORDERED")}
    statuses = dict(BenefitConsumption.objects.values_list("code", "status"))
    # a mismatched payment is not settled by the line that disputes it; the clean one is paid
    assert statuses[f] == "PAID" and statuses[a] == statuses[b] == statuses[c] == "SENT"
    assert all(m.events.get().action == "DETECTED" for m in Mismatch.objects.all())
    # the same file again: no new mismatch, no new line
    upload_result(sent.user, provider_files.csv(HEADER, rows, delimiter="\t"), point="BANK")
    assert Mismatch.objects.count() == 6 and ProviderReport.objects.count() == len(rows)


def test_bad_rows_are_reported_and_the_rest_is_read(sent_payroll, provider_files, upload_result):
    sent = sent_payroll
    a, b, c, d = sent.references[:4]
    rows = [[a, "PAID", "TX-A", "6 000", "BIF", "15/01/2026", ""],
            [b, "PAID", "TX-B", "six", "BIF", "2026-01-15", ""],
            [c, "MAYBE", "TX-C", 6000, "BIF", "2026-01-15", ""],
            ["", "PAID", "TX-?", 6000, "BIF", "2026-01-15", ""],
            [d, "PAID", "TX-D", 6000, "BIF", "2026-13-45", ""]]
    file = upload_result(sent.user, provider_files.csv(HEADER, rows, delimiter=";", bom=True), point="BANK")
    assert file.status == "PARTIAL_SUCCESS" and file.rows == 5 and file.stored == 1
    assert sorted(file.error) == ["3", "4", "5", "6"]
    assert file.error["3"].startswith("INVALID_AMOUNT") and file.error["4"].startswith("UNKNOWN_STATUS")
    assert file.error["5"].startswith("REFERENCE_REQUIRED") and file.error["6"].startswith("INVALID_DATE")
    assert ProviderReport.objects.get().value_date.isoformat() == "2026-01-15"


def test_a_truncated_file_keeps_its_whole_rows(sent_payroll, provider_files, upload_result):
    sent = sent_payroll
    path = provider_files.csv(HEADER, rows_for(sent), cut=25)
    file = upload_result(sent.user, path, point="BANK")
    assert file.status == "PARTIAL_SUCCESS", (file.status, file.error)
    assert file.stored == 5 and list(file.error) == ["7"] and "TRUNCATED_ROW" in file.error["7"]
    cut_xlsx = upload_result(sent.user, provider_files.xlsx(HEADER, rows_for(sent), cut=300), point="BANK")
    assert cut_xlsx.status == "FAIL" and "cut short" in cut_xlsx.error["file"]


def test_a_providers_own_columns_and_excel_dates(sent_payroll, provider_files, upload_result, settings):
    from core.loader import module_config

    sent = sent_payroll
    config = module_config("reconciliation")
    config["points"] = {"BANK": {"columns": {"reference": "Ref Client", "provider_transaction_id": "Txn Id",
                                             "amount": "Montant Payé", "status": "Code Statut",
                                             "message": "Description", "date": "Date Transaction",
                                             "account": "Numéro de compte"},
                                 "paid_values": ["00"], "failed_values": ["51", "91"], "decimal_comma": True}}
    try:
        header = ["Ref Client", "Txn Id", "Montant Payé", "Code Statut", "Description", "Date Transaction",
                  "Numéro de compte"]
        import datetime

        rows = [[ref, f"T{n}", f"{sent.amounts[ref]:,}".replace(",", ".") + ",00", "00" if n else "51", "ok",
                 datetime.datetime(2026, 1, 15) if n % 2 else 46037, sent.phones[ref]]
                for n, ref in enumerate(sent.references)]
        file = upload_result(sent.user, provider_files.xlsx(header, rows), point="BANK")
        assert file.status == "SUCCESS", file.error
        dates = set(ProviderReport.objects.values_list("value_date", flat=True))
        assert dates == {datetime.date(2026, 1, 15)}
        statuses = BenefitConsumption.objects.filter(payroll=sent.payroll).values_list("status", flat=True)
        assert sorted(statuses) == ["FAILED"] + ["PAID"] * 5
        assert Payroll.objects.get(pk=sent.payroll.pk).status == "PARTIALLY_PAID"
        missing = upload_result(sent.user, provider_files.csv(HEADER, rows_for(sent)), point="BANK")
        assert missing.status == "FAIL" and "no column 'Ref Client'" in missing.error["file"]
    finally:
        config.pop("points")


def test_ingesting_keeps_the_row_counters_exact(sent_payroll, provider_files, upload_result):
    """The outcomes applied to the payments, the ledger and the cases are written set-based in
    SQL; the row counters (``core_row_count``) must still equal the live rows they count."""
    from django.db import connection

    from core.row_counts import counted_columns

    sent = sent_payroll
    a = sent.references[0]
    rows = rows_for(sent)
    rows[0] = [a, "PAID", "TX-0", sent.amounts[a] - 1, "BIF", "2026-01-15", sent.phones[a]]  # held: a mismatch
    upload_result(sent.user, provider_files.csv(HEADER, rows), point="BANK")
    upload_result(sent.user, provider_files.camt053([{"reference": r, "amount": sent.amounts[r], "txn": f"BK-{n}",
                                                      "account": sent.phones[r]}
                                                     for n, r in enumerate(sent.references)]), point="BANK")
    assert BenefitConsumption.objects.filter(payroll=sent.payroll, status="PAID").count() == 5
    with connection.cursor() as cursor:
        for table, column in sorted(counted_columns()):
            cursor.execute("SELECT key, live FROM core_row_count WHERE table_name = %s AND column_name = %s "
                           "AND live <> 0", [table, column])
            counters = dict(cursor.fetchall())
            cursor.execute(f"SELECT {column}, count(*) FROM {table} WHERE NOT is_deleted AND {column} IS NOT NULL "
                           "GROUP BY 1")
            assert counters == dict(cursor.fetchall()), (table, column)
