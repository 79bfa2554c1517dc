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
