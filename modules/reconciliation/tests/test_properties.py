"""Property: whatever the providers report about a payroll, every payment is in one state,
the states add up to the control totals, and re-ingesting any report changes nothing."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modules.payroll.models import BenefitConsumption, Payroll
from modules.reconciliation import ledger, services
from modules.reconciliation.models import Mismatch, ProviderReport
from modules.reconciliation.reading import Row

pytestmark = pytest.mark.django_db

report = st.tuples(
    st.integers(min_value=0, max_value=6),          # which payment (6: a reference nobody ordered)
    st.sampled_from(["PAID", "FAILED", "ACCEPTED"]),
    st.sampled_from(["", "T1", "T2", "T3"]),         # provider transaction id
    st.sampled_from([0, 0, 0, 100, -100, None]),     # amount difference (None: not said)
    st.sampled_from(["", "BIF", "BIF", "USD"]),
    st.integers(min_value=0, max_value=5),           # value date offset
)


class Rollback(Exception):
    pass


def snapshot(payroll):
    return (ProviderReport.objects.count(), Mismatch.objects.count(),
            sorted(Mismatch.objects.values_list("klass", "reference", "status")),
            sorted(BenefitConsumption.objects.filter(payroll=payroll).values_list("code", "status",
                                                                                 "provider_transaction_id")))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(report, min_size=1, max_size=8), min_size=1, max_size=3), data=st.data())
def test_states_add_up_and_reingesting_changes_nothing(sent_payroll, batches, data):
    sent = sent_payroll
    refs = sent.references
    day = datetime.date(2026, 1, 10)

    def rows(batch):
        made = []
        for line, (which, status, txn, delta, currency, offset) in enumerate(batch, start=2):
            ref = refs[which] if which < len(refs) else "PAY-NOBODY"
            amount = None if delta is None else Decimal(sent.amounts.get(ref, 7000) + delta)
            made.append(Row(line=line, reference=ref, status=status, provider_transaction_id=txn, amount=amount,
                            currency=currency, value_date=day + datetime.timedelta(days=offset)))
        return made

    try:
        with transaction.atomic():
            for batch in batches:
                ledger.store(rows(batch), source="RESULT_FILE", point_id=sent.point.pk, file_id=None, user=sent.user)
            request = services.check_report(sent.user, payroll_id=sent.payroll.pk)
            [row] = services.report_rows(request)
            payroll = Payroll.objects.get(pk=sent.payroll.pk)
            assert row["ordered_count"] == payroll.control_count == len(refs)
            assert row["ordered_sum"] == payroll.control_sum
            parts = ("paid", "failed", "pending", "mismatched")
            assert sum(row[f"{p}_count"] for p in parts) == row["ordered_count"]
            assert sum(row[f"{p}_sum"] for p in parts) == row["ordered_sum"]
            # a payment is paid (failed) only on a provider's word that it was
            for code, status in BenefitConsumption.objects.filter(payroll=payroll).values_list("code", "status"):
                if status in ("PAID", "FAILED"):
                    assert ProviderReport.objects.filter(payment__code=code, status=status).exists()
            before = snapshot(payroll)
            again = data.draw(st.sampled_from(batches))
            ledger.store(rows(again), source="RESULT_FILE", point_id=sent.point.pk, file_id=None, user=sent.user)
            assert snapshot(payroll) == before
            raise Rollback
    except Rollback:
        pass
