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


def _checksum_as_first_defined(row: Row, source: str, point_id: object) -> str:
    """The checksum as ``reading.Row.checksum`` computed it in Python before PostgreSQL did
    (``ledger.CHECKSUM``): lines stored since then must keep being recognised."""
    import hashlib
    import uuid

    text = "|".join([source, str(point_id or ""), row.reference, row.provider_transaction_id, row.status,
                     "" if row.amount is None else format(row.amount.normalize(), "f"), row.currency,
                     row.value_date.isoformat() if row.value_date else "", row.account])
    return str(uuid.UUID(bytes=hashlib.sha256(text.encode()).digest()[:16]))


cell = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.tuples(
    cell, cell, st.sampled_from(["PAID", "FAILED", "ACCEPTED"]),
    st.one_of(st.none(), st.decimals(min_value=0, max_value=10**12, places=4, allow_nan=False),
              st.sampled_from([Decimal("9000"), Decimal("9000.00"), Decimal("1E+3"), Decimal("0.000"),
                               Decimal("10.50")])),
    cell.filter(lambda c: len(c) <= 3),  # (the readers keep three letters of a currency)
    st.one_of(st.none(), st.dates(min_value=datetime.date(1, 1, 1))), cell), min_size=1, max_size=6),
    with_point=st.booleans())
def test_a_line_is_recognised_by_the_same_checksum_as_before(sent_payroll, lines, with_point):
    sent = sent_payroll
    point_id = sent.point.pk if with_point else None
    # (a transaction id of its own per line: a second line with the same id and status is not
    # stored, whatever its checksum)
    rows = [Row(line=n, reference=ref, provider_transaction_id=txn and f"{n}-{txn}", status=status, amount=amount, currency=ccy,
                value_date=day, account=account) for n, (ref, txn, status, amount, ccy, day, account) in
            enumerate(lines, start=2)]
    try:
        with transaction.atomic():
            ledger.store(iter(rows), source="RESULT_FILE", point_id=point_id, file_id=None, user=sent.user)
            stored = {(r.line, str(r.checksum)) for r in ProviderReport.objects.filter(source="RESULT_FILE")}
            expected = {(row.line, _checksum_as_first_defined(row, "RESULT_FILE", point_id)) for row in rows}
            # a line repeated in the batch is stored once (the first): each stored one has its checksum
            assert stored <= expected and {c for _, c in stored} == {c for _, c in expected}
            raise Rollback
    except Rollback:
        pass
