"""Bank statements: camt.053 and MT940, by end-to-end reference or by the point's rule."""

from __future__ import annotations

import datetime
from decimal import Decimal

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

CAMT_ENTRIES = [  # each shape a bank writes
    '<Ntry><Amt Ccy="BIF">9000</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts><ValDt><Dt>2026-01-02</Dt>'
    '</ValDt><NtryDtls><TxDtls><Refs><AcctSvcrRef>S-1</AcctSvcrRef><EndToEndId>PAY-1</EndToEndId></Refs>'
    '<RltdPties><CdtrAcct><Id><Othr><Id>25771000001</Id></Othr></Id></CdtrAcct></RltdPties></TxDtls></NtryDtls>'
    '</Ntry>',
    # a reversal, the old status form, the booking date, an IBAN, the transaction's own amount
    '<Ntry><NtryRef>N-2</NtryRef><Amt Ccy="BIF">9000</Amt><CdtDbtInd>DBIT</CdtDbtInd><RvslInd>true</RvslInd>'
    '<Sts>BOOK</Sts><BookgDt><DtTm>2026-01-03T10:00:00</DtTm></BookgDt><NtryDtls><TxDtls><Refs><TxId>T-2</TxId>'
    '<EndToEndId>PAY-2</EndToEndId></Refs><AmtDtls><TxAmt><Amt Ccy="usd">10.5</Amt></TxAmt></AmtDtls>'
    '<RltdPties><CdtrAcct><Id><IBAN>BI4220001000010000123456</IBAN></Id></CdtrAcct></RltdPties>'
    '<RmtInf><Ustrd>returned</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>',
    # pending: ignored
    '<Ntry><Amt Ccy="BIF">1</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>PDNG</Cd></Sts></Ntry>',
    # money coming back, no reference, no details
    '<Ntry><AcctSvcrRef>S-4</AcctSvcrRef><Amt Ccy="BIF">500</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd>'
    '</Sts><AddtlNtryInf>came back</AddtlNtryInf></Ntry>',
    # a batch booking: two transactions in one entry
    '<Ntry><Amt Ccy="BIF">3000</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts><ValDt><Dt>2026-01-04'
    '</Dt></ValDt><NtryDtls><TxDtls><Refs><EndToEndId>PAY-5</EndToEndId></Refs><Amt Ccy="BIF">1000</Amt>'
    '</TxDtls><TxDtls><Refs><EndToEndId>NOTPROVIDED</EndToEndId></Refs><Amt Ccy="BIF">2000</Amt></TxDtls>'
    '</NtryDtls></Ntry>',
    # an amount that is not a number, and one that is empty
    '<Ntry><Amt Ccy="BIF">lots</Amt><CdtDbtInd>DBIT</CdtDbtInd><NtryDtls><TxDtls><Refs><EndToEndId>PAY-6'
    '</EndToEndId></Refs></TxDtls></NtryDtls></Ntry>',
    '<Ntry><Amt Ccy="BIF"></Amt><CdtDbtInd>DBIT</CdtDbtInd><NtryDtls><TxDtls><Refs><EndToEndId>PAY-7'
    '</EndToEndId></Refs></TxDtls></NtryDtls></Ntry>',
]


def test_each_shape_of_camt053_entry_is_read(tmp_path):
    from modules.reconciliation import statements
    from modules.reconciliation.reading import Counts

    path = tmp_path / "statement.xml"
    # a comment, a balance and a bank transaction code (an Amt, a Cd and an Id nobody reads) around
    # the entries, which must not be mistaken for their fields
    path.write_text('<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">'
                    '<BkToCstmrStmt><Stmt><Id>S</Id><Bal><Amt Ccy="BIF">1</Amt></Bal><!-- booked -->'
                    f'{"".join(CAMT_ENTRIES)}</Stmt></BkToCstmrStmt></Document>'.replace(
                        "<CdtDbtInd>", "<BkTxCd><Domn><Cd>PMNT</Cd></Domn></BkTxCd><CdtDbtInd>", 1))
    counts = Counts()
    rows = list(statements.read_camt053(path, counts))
    assert (counts.rows, counts.ignored) == (8, 1)
    assert [(i.line, i.code) for i in counts.issues] == [(7, "INVALID_AMOUNT"), (8, "INVALID_AMOUNT")]
    assert [(r.line, r.reference, r.status, r.amount, r.currency, r.provider_transaction_id, r.account,
             r.value_date, r.message) for r in rows] == [
        (1, "PAY-1", "PAID", 9000, "BIF", "S-1", "25771000001", datetime.date(2026, 1, 2), ""),
        (2, "PAY-2", "FAILED", Decimal("10.5"), "USD", "T-2", "BI4220001000010000123456",
         datetime.date(2026, 1, 3), "returned"),
        (4, "", "FAILED", 500, "BIF", "S-4", "", None, "came back"),
        (5, "PAY-5", "PAID", 1000, "BIF", "", "", datetime.date(2026, 1, 4), ""),
        (6, "", "PAID", 2000, "BIF", "", "", datetime.date(2026, 1, 4), "")]
    # the first entry's text names its reference, amount and transaction
    assert rows[0].raw == "Ntry@1 PAY-1 9000 S-1"


class Rollback(Exception):
    pass


def _stored_and_flagged(sent, path, chunk):
    """What storing the statement in chunks of ``chunk`` lines leaves: the ledger's lines, the
    cases and the payments' statuses (then rolled back)."""
    from django.db import transaction

    from modules.reconciliation import ledger, statements
    from modules.reconciliation.reading import Counts

    try:
        with transaction.atomic():
            result = ledger.store(statements.read_camt053(path, Counts()), source="CAMT053", point_id=sent.point.pk,
                                  file_id=None, user=sent.user, chunk=chunk)
            seen = (sorted(ProviderReport.objects.values_list("line", "reference", "status", "amount", "checksum",
                                                               "payment__code")),
                    sorted(Mismatch.objects.values_list("klass", "reference", "detail", "report__line")),
                    sorted(BenefitConsumption.objects.values_list("code", "status", "provider_transaction_id")),
                    {k: v for k, v in result.items() if k != "seconds"})
            raise Rollback
    except Rollback:
        return seen


def test_a_statement_stored_chunk_by_chunk_leaves_what_one_chunk_does(sent_payroll, provider_files):
    sent = sent_payroll
    refs = sent.references
    lines = entries(sent, e0={"amount": sent.amounts[refs[0]] - 1000}, e1={"reference": ""}, e2={"reversal": True},
                    e3={"reference": "", "account": "+25771000000"})
    lines += [dict(lines[4]), {**lines[5], "txn": "BK-OTHER"}]  # the same line again; a second transaction id
    path = provider_files.camt053(lines)
    whole = _stored_and_flagged(sent, path, None)
    assert whole[3]["stored"] == 7 and {klass for klass, *_ in whole[1]} == {"AMOUNT_DIFFERS", "UNKNOWN_REFERENCE",
                                                                             "PAID_TWICE"}
    assert _stored_and_flagged(sent, path, 2) == _stored_and_flagged(sent, path, 1) == whole


def test_a_reader_failing_half_way_stores_nothing(sent_payroll):
    from core.errors import ServiceError
    from modules.reconciliation import ledger
    from modules.reconciliation.errors import ReconciliationErrorCode as E
    from modules.reconciliation.reading import Row

    sent = sent_payroll

    def rows():
        for n, ref in enumerate(sent.references[:3], start=1):
            yield Row(line=n, reference=ref, status="PAID", amount=Decimal(sent.amounts[ref]))
        raise ServiceError(E.UNREADABLE_FILE, "The file is cut short.", "file")

    with pytest.raises(ServiceError, match="cut short"):
        ledger.store(rows(), source="RESULT_FILE", point_id=sent.point.pk, file_id=None, user=sent.user, chunk=2)
    assert not ProviderReport.objects.exists() and not Mismatch.objects.exists()
