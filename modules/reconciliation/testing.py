"""Fixtures of the reconciliation module, loaded as a pytest plug-in by the core's plug-in:
a payroll already sent to a file provider (``sent_payroll``), and a simulated provider that
writes result files the way real ones do (``provider_files``: CSV with any delimiter,
encoding and BOM, XLSX with real or serial dates, truncated files)."""

from __future__ import annotations

import csv
import datetime
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

RECON_ALL = ["payroll.payroll.search", "payroll.configuration.manage", "payroll.provider.manage", "payroll.payroll.create", "payroll.payroll.approve",
             "payroll.payroll.pay", "payroll.payroll.close", "payroll.payroll.delete", "core.job.view", "location.scope.national",
             "social_protection.plan.search", "individual.registry.search", "reconciliation.report.search",
             "reconciliation.report.ingest", "reconciliation.mismatch.search", "reconciliation.mismatch.update"]


CALLBACK_TOKEN = "recon-callback-token"


@pytest.fixture
def callback_token() -> str:
    return CALLBACK_TOKEN


@dataclass
class SentPayroll:
    """A payroll of ``count`` payments (``amounts`` by reference, in BIF), sent as a payment file
    through the point ``BANK``; ``phones`` are the recipients' numbers by reference."""

    payroll: Any
    point: Any
    cycle: Any
    plan: Any
    locations: dict[str, Any]
    amounts: dict[str, int]
    phones: dict[str, str]
    colline: dict[str, str]
    user: Any

    @property
    def references(self) -> list[str]:
        return sorted(self.amounts)


def build_payroll(admin: Any, user: Any, households: int = 6, *, name: str = "January", cycle_code: str = "2026-01",
                  send: bool = True, point_code: str = "BANK", plan: Any = None) -> SentPayroll:
    from core.actors import system_actor
    from core.approvals.services import set_approval_route
    from modules.individual import services as registry
    from modules.location.models import Location
    from modules.location.services import create_location
    from modules.payroll.models import BenefitConsumption, PaymentPlan, PaymentPoint
    from modules.payroll.sending import send_payroll
    from modules.payroll.services import configuration, generation, lifecycle
    from modules.social_protection import services as sp

    set_approval_route(system_actor(), "payroll.approve", None, "tests: approved at generation")
    set_approval_route(system_actor(), "payroll.reconcile", None, "tests: closed at once (tests route it again)")
    locations = {loc.code: loc for loc in Location.objects.filter(code__in=["P1", "C1", "C2", "H1", "H2", "H3"])}
    if not locations:
        for code, type_, parent in [("P1", "Province", None), ("C1", "Commune", "P1"), ("C2", "Commune", "P1"),
                                    ("H1", "Colline", "C1"), ("H2", "Colline", "C1"), ("H3", "Colline", "C2")]:
            locations[code] = create_location(admin, code=code, name=code, type=type_,
                                              parent_id=locations[parent].pk if parent else None)
        benefit = sp.create_plan(admin, code="CT-R", name="Cash transfer", type="GROUP",
                                 date_valid_from=datetime.date(2026, 1, 1), date_valid_to=datetime.date(2027, 12, 31))
        for i in range(households):
            colline = locations[["H1", "H2", "H3"][i % 3]]
            group = registry.create_group(admin, code=f"HH-{i:03d}", location_id=colline.pk)
            person = registry.create_individual(admin, first_name=f"Recipient{i}", last_name=f"Family{i}",
                                                dob=datetime.date(1980, 1, 1), location_id=colline.pk,
                                                json_ext={"phone": f"+25779{i:06d}"})
            registry.add_member(admin, group_id=group.pk, individual_id=person.pk, role="HEAD",
                                recipient_type="PRIMARY")
        sp.enroll_chunk(benefit, admin, "ACTIVE", None, 10000)
        plan = configuration.create_plan(admin, code="PP-R", name="Monthly", benefit_plan_id=benefit.pk,
                               calculation_rule={"fixed": 5000, "per_member": {"amount": 1000, "cap": 3000}},
                               currency="BIF", minor_unit=0)
    plan = plan or PaymentPlan.objects.get(code="PP-R")
    cycle = configuration.create_cycle(admin, code=cycle_code, start_date=datetime.date(2026, 1, 1),
                             end_date=datetime.date(2026, 12, 31))
    point = PaymentPoint.objects.filter(code=point_code).first() or configuration.create_point(
        admin, code=point_code, name="Bank", adaptor="file",
        config={"format": "csv", "callback_token": {"env": "COREMIS_PSP_RECON_CALLBACK"}})
    payroll, _ = generation.create_payroll(admin, name=name, payment_plan_id=plan.pk, payment_cycle_id=cycle.pk,
                                    payment_point_id=point.pk)
    payroll = lifecycle.mark_approved(admin, payroll.pk)
    if send:
        lifecycle.start_sending(admin, payroll.pk)
        send_payroll(payroll.pk, admin)
    payroll.refresh_from_db()
    rows = BenefitConsumption.objects.filter(payroll=payroll).values_list(
        "code", "amount", "individual__json_ext", "individual__location__code")
    return SentPayroll(payroll, point, cycle, plan, locations, {c: a for c, a, _, _ in rows},
                       {c: (j or {}).get("phone", "") for c, _, j, _ in rows}, {c: loc for c, _, _, loc in rows}, user)


@pytest.fixture
def recon_admin(make_user: Any) -> Any:
    return make_user(RECON_ALL)


@pytest.fixture
def sent_payroll(db: Any, admin_user: Any, recon_admin: Any, settings: Any, tmp_path: Path,
                 monkeypatch: Any) -> SentPayroll:
    """Six households paid 6,000 BIF each through the file provider BANK, all SENT; ``user``
    holds every payroll and reconciliation right, nationally. BANK's callbacks carry
    ``Authorization: Bearer`` + ``CALLBACK_TOKEN``."""
    settings.MEDIA_ROOT = str(tmp_path)
    monkeypatch.setenv("COREMIS_PSP_RECON_CALLBACK", CALLBACK_TOKEN)
    return build_payroll(admin_user, recon_admin)


@pytest.fixture
def make_payroll(db: Any, admin_user: Any, recon_admin: Any, settings: Any,
                 tmp_path: Path, monkeypatch: Any) -> Callable[..., SentPayroll]:
    settings.MEDIA_ROOT = str(tmp_path)
    monkeypatch.setenv("COREMIS_PSP_RECON_CALLBACK", CALLBACK_TOKEN)
    return lambda **kw: build_payroll(admin_user, recon_admin, **kw)


class ProviderFiles:
    """What a simulated provider hands back: result files in its own habits."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0

    def csv(self, header: list[str], rows: list[list[Any]], *, delimiter: str = ",", bom: bool = False,
            encoding: str = "utf-8", cut: int = 0) -> Path:
        """A CSV file; ``cut`` drops that many bytes from its end (a transfer that broke off)."""
        out = io.StringIO()
        writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows(rows)
        data = out.getvalue().encode(encoding)
        if bom:
            data = ("\ufeff".encode(encoding) if encoding != "utf-8" else b"\xef\xbb\xbf") + data
        if cut:
            data = data[:-cut]
        return self._write(data, "csv")

    def xlsx(self, header: list[str], rows: list[list[Any]], *, cut: int = 0) -> Path:
        from openpyxl import Workbook

        book = Workbook()
        sheet = book.active
        sheet.append(header)
        for row in rows:
            sheet.append(row)
        buffer = io.BytesIO()
        book.save(buffer)
        data = buffer.getvalue()
        return self._write(data[:-cut] if cut else data, "xlsx")

    def camt053(self, entries: list[dict[str, Any]], *, cut: int = 0, currency: str = "BIF") -> Path:
        """A camt.053.001.08 statement; each entry: ``reference`` (EndToEndId, omitted for
        NOTPROVIDED), ``amount``, ``account``, ``date``, ``txn``, ``reversal``, ``credit``,
        ``status`` (BOOK)."""
        today = datetime.date.today().isoformat()
        parts = ['<?xml version="1.0" encoding="UTF-8"?>',
                 '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt>',
                 "<GrpHdr><MsgId>STMT-1</MsgId><CreDtTm>2026-01-20T08:00:00</CreDtTm></GrpHdr>",
                 "<Stmt><Id>1</Id><Acct><Id><Othr><Id>PROGRAMME-ACCOUNT</Id></Othr></Id></Acct>"]
        for e in entries:
            reversal = "<RvslInd>true</RvslInd>" if e.get("reversal") else ""
            parts.append(
                f'<Ntry><NtryRef>{e.get("txn", "")}</NtryRef><Amt Ccy="{e.get("currency", currency)}">{e["amount"]}</Amt>'
                f'<CdtDbtInd>{"CRDT" if e.get("credit") else "DBIT"}</CdtDbtInd>{reversal}'
                f'<Sts><Cd>{e.get("status", "BOOK")}</Cd></Sts><BookgDt><Dt>{e.get("date", today)}</Dt></BookgDt>'
                f'<ValDt><Dt>{e.get("date", today)}</Dt></ValDt><NtryDtls><TxDtls><Refs>'
                f'<AcctSvcrRef>{e.get("txn", "")}</AcctSvcrRef>'
                f'<EndToEndId>{e.get("reference") or "NOTPROVIDED"}</EndToEndId></Refs>'
                f'<AmtDtls><TxAmt><Amt Ccy="{e.get("currency", currency)}">{e["amount"]}</Amt></TxAmt></AmtDtls>'
                f'<RltdPties><CdtrAcct><Id><Othr><Id>{e.get("account", "")}</Id></Othr></Id></CdtrAcct></RltdPties>'
                "</TxDtls></NtryDtls></Ntry>")
        parts.append("</Stmt></BkToCstmrStmt></Document>")
        data = "".join(parts).encode()
        return self._write(data[:-cut] if cut else data, "xml")

    def mt940(self, entries: list[dict[str, Any]], *, currency: str = "BIF") -> Path:
        """A SWIFT MT940 statement; entries as for :meth:`camt053` (``mark`` D, C, RD)."""
        today = datetime.date.today().isoformat()
        lines = [":20:STMT1", ":25:PROGRAMME-ACCOUNT", ":28C:1/1", f":60F:C260101{currency}1000000,00"]
        for e in entries:
            day = e.get("date", today).replace("-", "")[2:]
            mark = e.get("mark", "RD" if e.get("reversal") else "D")
            ref = e.get("reference") or "NONREF"
            lines.append(f":61:{day}{day[2:]}{mark}{str(e['amount']).replace('.', ',')}NTRF{ref[:16]}//{e.get('txn', '')}")
            info = f"EREF+{e['reference']}" if e.get("reference") else "PAYOUT"
            lines.append(f":86:{info} IBAN+{e.get('account', '')}")
        lines.append(f":62F:C260131{currency}0,00")
        lines.append("-")
        return self._write(("\r\n".join(lines) + "\r\n").encode(), "sta")

    def _write(self, data: bytes, suffix: str) -> Path:
        self.count += 1
        path = self.folder / f"result-{self.count}.{suffix}"
        path.write_bytes(data)
        return path


@pytest.fixture
def provider_files(tmp_path: Path) -> ProviderFiles:
    folder = tmp_path / "provider"
    folder.mkdir(exist_ok=True)
    return ProviderFiles(folder)


@pytest.fixture
def upload_result(client: Any, run_jobs: Any, django_capture_on_commit_callbacks: Any) -> Callable[..., Any]:
    """``upload_result(user, path, payroll_id=…, point=…, openimis=False)``: POST the file as the
    frontend or a provider's operator would, run the ingestion job, and return the file's row."""
    from core.auth.tokens import issue

    def upload(user: Any, path: Path, *, payroll_id: Any = None, point: str | None = None,
               openimis: bool = False) -> Any:
        from modules.reconciliation.models import ReportFile

        url = (f"/api/payroll/csv_reconciliation/?payroll_id={payroll_id}" if openimis else
               f"/api/reconciliation/result_file?point={point or ''}" + (f"&payroll_id={payroll_id}" if payroll_id
                                                                         else ""))
        with open(path, "rb") as handle, django_capture_on_commit_callbacks(execute=True):
            response = client.post(url, {"file": handle}, HTTP_AUTHORIZATION=f"Bearer {issue(user).token}")
        if response.status_code != 202:
            return response
        run_jobs()
        return ReportFile.objects.get(pk=response.json()["id"])

    return upload
