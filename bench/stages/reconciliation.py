"""Did the money arrive, at national scale: the provider's result file and its bank's camt.053
statement for the 315,000 payments the payroll stages sent, ingested and matched, and the
reconciliation report of that payroll.

Baseline, measured in the same run: ``reconciliation.pg_copy``, PostgreSQL alone copying the
same rows (``COPY … (FORMAT csv)`` into a plain table of text columns, committed). The
statement is compared with the same COPY: the rows it carries are the same.
"""

from __future__ import annotations

import atexit
import datetime
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from bench.harness import Context, Measurement, latencies, median, percentile, stage, stopwatch

COPY_TABLE = "bench_recon_copy"
COLUMNS = ["reference", "status", "transaction_id", "amount", "currency", "date", "account"]
EVERY = 1000        # one payment in EVERY is reported with another amount
UNKNOWN = 100       # lines for references nobody ordered
REPORT = ("query($p: UUID, $g: ReconciliationGroupByEnum, $l: Int) { reconciliationReport(payrollId: $p, "
          "groupBy: $g, locationLevel: $l) { key label orderedCount orderedSum paidCount failedCount pendingCount "
          "mismatchedCount mismatches { klass count } } }")


def _folder(ctx: Context) -> Path:
    if "recon_dir" not in ctx.state:
        folder = Path(tempfile.mkdtemp(prefix="coremis-bench-recon-"))
        atexit.register(shutil.rmtree, folder, True)
        ctx.state["recon_dir"] = folder
    return Path(ctx.state["recon_dir"])


def _payments(ctx: Context) -> list[tuple[str, int, str]]:
    if "recon_payments" not in ctx.state:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT b.code, b.amount, coalesce(i.json_ext->>'phone', '') FROM payroll_benefitconsumption b "
                           "JOIN individual_individual i ON i.id = b.individual_id WHERE b.payroll_id = %s ORDER BY b.code",
                           [ctx.state["pay_payroll"].pk])
            ctx.state["recon_payments"] = cursor.fetchall()
    return ctx.state["recon_payments"]


def _lines(ctx: Context) -> list[list[str]]:
    """The provider's word on every payment (one in EVERY with another amount) and UNKNOWN
    lines for references nobody ordered, as text cells."""
    today = datetime.date.today().isoformat()
    rows = [[code, "PAID", f"MM-{n:07d}", str(amount + (100 if n % EVERY == 0 else 0)), "BIF", today, phone]
            for n, (code, amount, phone) in enumerate(_payments(ctx))]
    rows += [[f"PAY-UNKNOWN-{n:04d}", "PAID", f"MM-X{n:04d}", "9000", "BIF", today, ""] for n in range(UNKNOWN)]
    return rows


def _result_file(ctx: Context) -> Path:
    path = _folder(ctx) / "results.csv"
    if not path.exists():
        import csv

        with open(path, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(COLUMNS)
            writer.writerows(_lines(ctx))
    return path


def _statement(ctx: Context) -> Path:
    """The same payments as a camt.053 statement (booked debits, end-to-end reference, the
    provider's transaction id, the account paid)."""
    path = _folder(ctx) / "statement.xml"
    if not path.exists():
        with open(path, "w", encoding="utf-8") as out:
            out.write('<?xml version="1.0" encoding="UTF-8"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:'
                      'camt.053.001.08"><BkToCstmrStmt><GrpHdr><MsgId>BENCH</MsgId><CreDtTm>2026-01-31T00:00:00'
                      '</CreDtTm></GrpHdr><Stmt><Id>1</Id>\n')
            for ref, _, txn, amount, ccy, day, account in _lines(ctx):
                out.write(f'<Ntry><Amt Ccy="{ccy}">{amount}</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>'
                          f'<ValDt><Dt>{day}</Dt></ValDt><NtryDtls><TxDtls><Refs><AcctSvcrRef>{txn}</AcctSvcrRef>'
                          f'<EndToEndId>{ref}</EndToEndId></Refs><RltdPties><CdtrAcct><Id><Othr><Id>{account}'
                          '</Id></Othr></Id></CdtrAcct></RltdPties></TxDtls></NtryDtls></Ntry>\n')
            out.write("</Stmt></BkToCstmrStmt></Document>\n")
    return path


@stage("reconciliation.pg_copy", module="reconciliation", needs=("payroll.send",), is_baseline=True)
def pg_copy(ctx: Context) -> Measurement:
    """PostgreSQL alone: COPY the provider's result file into a plain table (text columns)."""
    path = _result_file(ctx)
    connection = ctx.psycopg()
    connection.execute(f"DROP TABLE IF EXISTS {COPY_TABLE}")
    connection.execute(f"CREATE TABLE {COPY_TABLE} ({', '.join(f'{c} text' for c in COLUMNS)})")
    with stopwatch() as elapsed:
        with connection.transaction(), connection.cursor() as cursor, open(path, "rb") as stream:
            with cursor.copy(f"COPY {COPY_TABLE} FROM STDIN (FORMAT csv, HEADER true)") as copy:
                while block := stream.read(1 << 20):
                    copy.write(block)
    seconds = elapsed()
    rows = connection.execute(f"SELECT count(*) FROM {COPY_TABLE}").fetchone()[0]
    assert rows == len(_payments(ctx)) + UNKNOWN, rows
    connection.execute(f"DROP TABLE {COPY_TABLE}")
    return Measurement(rows, seconds, [f"{path.stat().st_size / 2**20:,.0f} MiB of CSV"])


def _ingest(ctx: Context, path: Path) -> tuple[Any, float]:
    import django_rq
    from django.conf import settings

    from core.jobs import run_job
    from core.uploads import store_upload
    from modules.reconciliation import services
    from modules.reconciliation.models import ReportFile

    user = ctx.superuser()
    settings.MEDIA_ROOT = _folder(ctx) / "media"
    point = ctx.state["pay_payroll"].payment_point.code if ctx.state["pay_payroll"].payment_point_id else None
    if point is None:
        from modules.payroll.models import BenefitConsumption

        point = BenefitConsumption.objects.filter(payroll=ctx.state["pay_payroll"]).values_list(
            "payment_point__code", flat=True).first()
    with stopwatch() as elapsed:
        with open(path, "rb") as stream:
            upload = store_upload(stream, path.name, "reconciliation.result_file", user)
        file = services.do_ingest(services.check_ingest(user, source="RESULT_FILE", upload=upload, point_code=point))
        run_job(str(file.job_id))
    seconds = elapsed()
    django_rq.get_queue("default").remove(f"coremis-{file.job_id}-0")
    return ReportFile.objects.get(pk=file.pk), seconds


def _check(ctx: Context, file: Any, source: str) -> list[str]:
    from modules.payroll.models import BenefitConsumption
    from modules.reconciliation.models import Mismatch, ProviderReport

    payments = len(_payments(ctx))
    assert file.status == "PARTIAL_SUCCESS" and file.stored == payments + UNKNOWN, (file.status, file.stored,
                                                                                    list(file.error.items())[:3])
    assert ProviderReport.objects.filter(file=file).count() == payments + UNKNOWN
    differ = len(range(0, payments, EVERY))
    paid = BenefitConsumption.objects.filter(payroll=ctx.state["pay_payroll"], status="PAID").count()
    assert paid == payments - differ, (paid, payments, differ)
    amounts = Mismatch.objects.filter(klass="AMOUNT_DIFFERS").count()
    unknown = Mismatch.objects.filter(klass="UNKNOWN_REFERENCE").count()
    assert amounts == differ * ctx.state.get("recon_sources", 1) and unknown == UNKNOWN * ctx.state.get(
        "recon_sources", 1), (amounts, unknown)
    assert not Mismatch.objects.exclude(klass__in=("AMOUNT_DIFFERS", "UNKNOWN_REFERENCE")).exists()
    return [f"{payments:,} payments paid or held: {differ} AMOUNT_DIFFERS, {UNKNOWN} UNKNOWN_REFERENCE",
            f"{source}: every line stored once and matched"]


@stage("reconciliation.result_file", baseline="reconciliation.pg_copy", needs=("reconciliation.pg_copy",),
       module="reconciliation")
def result_file(ctx: Context) -> Measurement:
    """The provider's CSV result file (315,100 lines) through upload, the ingestion job (read,
    COPY to staging, one INSERT … SELECT into the ledger, set-based matching) and the outcomes
    applied to the payments; then the same file again, which must change nothing (target 15 s)."""
    from modules.reconciliation.models import ProviderReport

    file, seconds = _ingest(ctx, _result_file(ctx))
    notes = _check(ctx, file, "result file")
    ctx.state["recon_sources"] = 1
    before = ProviderReport.objects.count()
    # the same lines in a file with another name: every line recognised, nothing stored
    again_path = _folder(ctx) / "results-again.csv"
    again_path.write_bytes(_result_file(ctx).read_bytes() + b"\n")
    again, again_seconds = _ingest(ctx, again_path)
    assert again.stored == 0 and ProviderReport.objects.count() == before, again.stored
    rows = len(_payments(ctx)) + UNKNOWN
    return Measurement(rows, seconds, [*notes, f"{rows / seconds:,.0f} lines/s (target ≤ 15 s)",
                                       f"re-delivered: 0 stored in {again_seconds:.1f} s"])


@stage("reconciliation.camt053", baseline="reconciliation.pg_copy", needs=("reconciliation.result_file",),
       module="reconciliation")
def camt053(ctx: Context) -> Measurement:
    """The bank's camt.053 statement of the same payments (315,100 entries, streamed with lxml)
    through the same path; its lines are another source, so each is stored and matched again,
    and the same transaction ids mean no payment is paid twice (target 15 s)."""
    path = _statement(ctx)
    ctx.state["recon_sources"] = 2
    file, seconds = _ingest(ctx, path)
    assert file.source == "CAMT053", file.source
    notes = _check(ctx, file, "camt.053")
    rows = len(_payments(ctx)) + UNKNOWN
    return Measurement(rows, seconds, [*notes, f"{path.stat().st_size / 2**20:,.0f} MiB of XML",
                                       f"{rows / seconds:,.0f} entries/s (target ≤ 15 s)"])


@stage("reconciliation.report", needs=("reconciliation.camt053",), module="reconciliation")
def report(ctx: Context) -> Measurement:
    """GraphQL ``reconciliationReport`` of that payroll, whole and per commune, over HTTP as a
    superuser: median and p95 of ``--repeat`` requests (target ≤ 1 s)."""
    from django.conf import settings
    from django.test import Client

    from core.auth.tokens import issue

    host = next((h.lstrip(".") for h in settings.ALLOWED_HOSTS if h.lstrip(".") not in ("", "*")), "localhost")
    client = Client(HTTP_HOST=host, HTTP_AUTHORIZATION=f"Bearer {issue(ctx.superuser()).token}")
    payroll = str(ctx.state["pay_payroll"].pk)

    def ask(group: str, level: int | None = None) -> list[dict[str, Any]]:
        response = client.post("/graphql", data=json.dumps({"query": REPORT, "variables": {
            "p": payroll, "g": group, "l": level}}), content_type="application/json")
        body = response.json()
        assert response.status_code == 200 and not body.get("errors"), body
        return body["data"]["reconciliationReport"]

    [whole] = ask("PAYROLL")
    payments = len(_payments(ctx))
    assert whole["orderedCount"] == payments
    assert whole["paidCount"] + whole["mismatchedCount"] + whole["failedCount"] + whole["pendingCount"] == payments
    communes = ask("LOCATION", 1)
    assert sum(r["orderedCount"] for r in communes) == payments
    times = latencies(lambda: ask("PAYROLL"), max(ctx.repeat, 5), warmup=1)
    commune_times = latencies(lambda: ask("LOCATION", 1), max(ctx.repeat // 2, 5), warmup=1)
    return Measurement(payments, median(times), [f"p95 {percentile(times, 0.95) * 1000:,.0f} ms (target ≤ 1 s)",
                                                 f"per commune ({len(communes)}): median "
                                                 f"{median(commune_times) * 1000:,.0f} ms"])
