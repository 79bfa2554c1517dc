"""Bank statements: camt.053 and MT940, by end-to-end reference or by the point's rule."""

from __future__ import annotations

import pytest

from modules.payroll.models import BenefitConsumption
from modules.reconciliation.models import Mismatch, ProviderReport

pytestmark = pytest.mark.django_db


def entries(sent, **overrides):
    made = [{"reference": ref, "amount": sent.amounts[ref], "txn": f"BK-{n}", "account": sent.phones[ref]}
            for n, ref in enumerate(sent.references)]
    for index, change in overrides.items():
        made[int(index[1:])].update(change)
    return made


@pytest.mark.parametrize("kind", ["camt053", "mt940"])
def test_a_statement_pays_by_reference_or_rule_and_flags_a_partial_payment(kind, sent_payroll, provider_files,
                                                                         upload_result):
    sent = sent_payroll
    refs = sent.references
    lines = entries(sent, e0={"amount": sent.amounts[refs[0]] - 1000},   # a partial payment
                    e1={"reference": ""},                                # no reference: matched by rule
                    e2={"reversal": True},                               # returned
                    e3={"reference": "", "account": "+25771000000"})     # no reference, nobody like it
    path = getattr(provider_files, kind)(lines)
    file = upload_result(sent.user, path, point="BANK")
    assert file.source == kind.upper() and file.status == "PARTIAL_SUCCESS", (file.status, file.error)
    statuses = dict(BenefitConsumption.objects.values_list("code", "status"))
    assert statuses[refs[1]] == "PAID"  # by amount + account + date
    assert statuses[refs[2]] == "FAILED" and statuses[refs[4]] == statuses[refs[5]] == "PAID"
    assert statuses[refs[0]] == "SENT" and statuses[refs[3]] == "SENT"
    assert {(m.klass, m.reference) for m in Mismatch.objects.all()} == {("AMOUNT_DIFFERS", refs[0]),
                                                                        ("UNKNOWN_REFERENCE", "")}
    assert ProviderReport.objects.get(payment__code=refs[1]).provider_transaction_id == "BK-1"
    stored = ProviderReport.objects.count()
    again = upload_result(sent.user, getattr(provider_files, kind)(lines), point="BANK")
    assert again.stored == 0 and ProviderReport.objects.count() == stored == 6


def test_a_cut_camt053_keeps_the_entries_before_the_cut(sent_payroll, provider_files, upload_result):
    sent = sent_payroll
    file = upload_result(sent.user, provider_files.camt053(entries(sent), cut=700), point="BANK")
    assert file.status == "PARTIAL_SUCCESS", file.error
    assert 0 < file.stored < 6 and "cut" in " ".join(file.error.values())
