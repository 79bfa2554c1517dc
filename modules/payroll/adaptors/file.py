"""The file adaptor: a payment file (CSV or XLSX) per batch for providers that take files.

Each file carries its control totals (a trailer row with the count and the sum in minor
units) and is accompanied by ``<file>.sha256`` (the checksum the provider verifies) and
``<file>.manifest.json`` (references, totals, checksum), which is what a status query reads.
File names are derived from the batch, so a resend after a crash rewrites the same file
rather than adding a second one.

The provider's result file (``reference,status,transaction_id,message`` with PAID or FAILED)
comes back through the payment point's callback route, authenticated by the bearer token the
point's ``callback_token`` refers to.

Configuration: ``{"format": "csv" | "xlsx", "batch_size": n, "callback_token": {"env": "NAME"}}``.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.conf import settings

from core.loader import module_config
from core.spreadsheets import neutralise, xlsx_text
from modules.payroll.adaptors.base import (
    ACCEPTED,
    FAILED,
    NOT_FOUND,
    PAID,
    CallbackRejected,
    Instruction,
    Outcome,
    secret,
)

NAME = "file"
COLUMNS = ["reference", "recipient_id", "first_name", "last_name", "phone", "account", "amount", "currency"]


def directory(point: Any) -> Path:
    path = Path(settings.MEDIA_ROOT) / module_config("payroll")["file_output_dir"] / point.code
    path.mkdir(parents=True, exist_ok=True)
    return path


def _rows(instructions: list[Instruction]) -> list[list[str]]:
    return [[i.reference, i.recipient_id, i.first_name, i.last_name, i.phone, i.account, i.major_amount(), i.currency]
            for i in instructions]


def render(instructions: list[Instruction], file_format: str) -> bytes:
    """The payment file. Names and accounts come from the registry, so a cell a spreadsheet
    would run as a formula (``=HYPERLINK(...)``) is neutralised as exports are; plain numbers
    (phone numbers, amounts) are kept as they are, for the provider's software to read."""
    total = sum(i.amount for i in instructions)
    trailer = ["TOTAL", len(instructions), total]
    if file_format == "xlsx":
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        sheet = book.create_sheet("payments")
        sheet.append(COLUMNS)
        for row in _rows(instructions):
            sheet.append([xlsx_text(sheet, value, keep_numbers=True) for value in row])
        sheet.append(trailer)
        buffer = io.BytesIO()
        book.save(buffer)
        return buffer.getvalue()
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows([neutralise(value, keep_numbers=True) for value in row] for row in _rows(instructions))
    writer.writerow(trailer)
    return text.getvalue().encode()


def send_batch(point: Any, instructions: list[Instruction]) -> list[Outcome]:
    file_format = (point.config or {}).get("format", "csv")
    content = render(instructions, file_format)
    digest = hashlib.sha256(content).hexdigest()
    batch_key = hashlib.sha256("\n".join(i.reference for i in instructions).encode()).hexdigest()[:16]
    path = directory(point) / f"{point.code}-{batch_key}.{file_format}"
    # Written to a temporary name and renamed, so a provider never picks up half a file.
    for target, data in ((path, content), (Path(f"{path}.sha256"), f"{digest}  {path.name}\n".encode())):
        partial = target.with_name(target.name + ".part")
        partial.write_bytes(data)
        partial.replace(target)
    manifest = {"file": path.name, "sha256": digest, "count": len(instructions),
                "sum": sum(i.amount for i in instructions), "references": [i.reference for i in instructions]}
    Path(f"{path}.manifest.json").write_text(json.dumps(manifest))
    return [Outcome(i.reference, ACCEPTED) for i in instructions]


def query_status(point: Any, references: list[str]) -> list[Outcome]:
    written: set[str] = set()
    for manifest in directory(point).glob("*.manifest.json"):
        written.update(json.loads(manifest.read_text())["references"])
    return [Outcome(r, ACCEPTED if r in written else NOT_FOUND) for r in references]


def parse_callback(point: Any, body: bytes, headers: Mapping[str, str]) -> list[Outcome]:
    expected = f"Bearer {secret(point, 'callback_token')}"
    if not hmac.compare_digest(headers.get("Authorization", ""), expected):
        raise CallbackRejected("The result file is not signed with this payment point's callback token.")
    try:
        rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise CallbackRejected(f"The result file is not a readable CSV: {exc}") from exc
    outcomes = []
    for number, row in enumerate(rows, start=2):
        status = (row.get("status") or "").strip().upper()
        if not row.get("reference") or status not in (PAID, FAILED):
            raise CallbackRejected(f"Line {number}: needs a reference and a status of PAID or FAILED.")
        outcomes.append(Outcome(row["reference"].strip(), status, (row.get("transaction_id") or "").strip(),
                                (row.get("message") or "").strip()))
    return outcomes
