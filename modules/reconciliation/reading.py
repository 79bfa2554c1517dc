"""Reading providers' result files (CSV or XLSX) into normalised rows, one at a time.

What varies by provider is configuration (``points.<code>`` in ``modules_config.json``): the
header of each field, the words for paid and failed, the delimiter (detected when absent), the
encoding (a UTF-8 or UTF-16 byte-order mark is honoured), the date formats and the decimal
separator. Excel dates arrive as dates or as day serials; both are read. A row that cannot be
read is an :class:`RowIssue`, never the end of the file."""

from __future__ import annotations

import codecs
import csv
import datetime
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any

from core.errors import ServiceError
from core.loader import module_config
from modules.reconciliation.errors import ReconciliationErrorCode as E
from modules.reconciliation.models import ReportStatus, Source

# The openIMIS reconciliation CSV: the officer fills Paid (Yes/No) and Receipt per Code.
OPENIMIS_COLUMNS = {"reference": "Code", "status": "Paid", "provider_transaction_id": "Receipt"}
OPENIMIS_BLANK_HEADER = ["Code", "First Name", "Last Name", "Amount", "Currency", "Paid", "Receipt", "Date Paid"]
# A provider's result file when its point configures nothing (the file adaptor's own names).
DEFAULT_COLUMNS = {"reference": "reference", "status": "status", "provider_transaction_id": "transaction_id",
                   "amount": "amount", "currency": "currency", "message": "message", "date": "date",
                   "account": "account"}
DEFAULT_PAID = ["PAID", "SUCCESS", "SUCCESSFUL", "COMPLETED", "OK", "00"]
DEFAULT_FAILED = ["FAILED", "FAILURE", "REJECTED", "ERROR", "CANCELLED"]
DEFAULT_IGNORED = ["PENDING", "ACCEPTED", "PROCESSING", ""]
OPENIMIS_PAID = ["YES", "Y", "TRUE", "1", "OUI", "PAID"]
OPENIMIS_IGNORED = ["NO", "N", "FALSE", "0", "NON", ""]
DATE_FORMATS = ["%Y-%m-%d", "%d/%m/%Y", "%Y%m%d", "%d.%m.%Y", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S",
                "%d/%m/%Y %H:%M"]
EXCEL_EPOCH = datetime.date(1899, 12, 30)
REQUIRED = ("reference", "status")


@dataclass(frozen=True)
class Layout:
    """How one source (and point) writes its files."""

    source: str
    columns: dict[str, str]
    paid: frozenset[str]
    failed: frozenset[str]
    ignored: frozenset[str]
    delimiter: str | None = None
    encoding: str = "utf-8"
    date_formats: tuple[str, ...] = tuple(DATE_FORMATS)
    decimal_comma: bool = False


def layout_for(source: str, point_code: str | None) -> Layout:
    """The point's configured layout; the openIMIS CSV always has its own."""
    if source == Source.OPENIMIS_CSV:
        return Layout(source, dict(OPENIMIS_COLUMNS), frozenset(OPENIMIS_PAID), frozenset(), frozenset(OPENIMIS_IGNORED))
    conf: dict[str, Any] = (module_config("reconciliation").get("points") or {}).get(point_code or "", {})

    def words(key: str, default: list[str]) -> frozenset[str]:
        return frozenset(w.strip().upper() for w in conf.get(key, default))

    return Layout(source, dict(conf.get("columns") or DEFAULT_COLUMNS),
                  words("paid_values", DEFAULT_PAID), words("failed_values", DEFAULT_FAILED),
                  words("ignored_values", DEFAULT_IGNORED), conf.get("delimiter"), conf.get("encoding", "utf-8"),
                  tuple(conf.get("date_formats", DATE_FORMATS)), bool(conf.get("decimal_comma", False)))


@dataclass
class Row:
    line: int
    reference: str
    status: str
    provider_transaction_id: str = ""
    amount: Decimal | None = None
    currency: str = ""
    value_date: datetime.date | None = None
    account: str = ""
    message: str = ""
    raw: str = ""


@dataclass
class RowIssue:
    line: int
    field: str
    code: str
    message: str
    raw: str = ""


@dataclass
class Counts:
    rows: int = 0
    ignored: int = 0
    issues: list[RowIssue] = field(default_factory=list)


def _key(name: Any) -> str:
    return "".join(ch for ch in str(name or "").strip().lower() if ch.isalnum())


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def parse_amount(value: Any, decimal_comma: bool) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        amount = Decimal(str(value))
    else:
        text = str(value).strip().replace("\u00a0", "").replace(" ", "").replace("'", "")
        if not text:
            return None
        text = text.replace(".", "").replace(",", ".") if decimal_comma else text.replace(",", "")
        amount = Decimal(text)
    if not amount.is_finite() or amount < 0 or amount >= Decimal(10) ** 15:
        raise InvalidOperation(str(value))
    return amount


def parse_date(value: Any, formats: tuple[str, ...]) -> datetime.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if 1 <= value < 2958466:  # an Excel day serial (1900-01-01 .. 9999-12-31)
            return EXCEL_EPOCH + datetime.timedelta(days=int(value))
        raise ValueError(value)
    return _date_from_text(str(value).strip(), formats)


@lru_cache(maxsize=4096)  # a file holds few distinct dates
def _date_from_text(text: str, formats: tuple[str, ...]) -> datetime.date | None:
    if not text:
        return None
    if text.replace(".", "", 1).isdigit() and len(text) <= 7 and "." not in text[:1]:
        serial = float(text)
        if 20000 <= serial < 80000:  # a serial written out as text by a CSV export of a spreadsheet
            return EXCEL_EPOCH + datetime.timedelta(days=int(serial))
    for fmt in formats:
        try:
            return datetime.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(text)


def _decoded(path: Path, encoding: str) -> io.TextIOBase:
    with open(path, "rb") as probe:
        head = probe.read(4)
    if head.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    elif encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        encoding = "utf-8-sig"
    return open(path, encoding=encoding, newline="")


def _sniff(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _csv_rows(path: Path, layout: Layout) -> Iterator[tuple[int, list[Any], str]]:
    stream = _decoded(path, layout.encoding)
    try:
        first = stream.readline()
        delimiter = layout.delimiter or _sniff(first)
        header = next(csv.reader([first], delimiter=delimiter), [])
        yield 1, header, first.rstrip("\r\n")
        reader = csv.reader(stream, delimiter=delimiter)
        line = 1
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:  # an unterminated quote: the file was cut
                yield reader.line_num, [], f"<unreadable: {exc}>"
                return
            line += 1
            if not cells or all(not c.strip() for c in cells):
                continue
            yield line, cells, delimiter.join(cells)
    except UnicodeDecodeError as exc:
        raise ServiceError(E.UNREADABLE_FILE, f"The file is not in the encoding {layout.encoding}: byte "
                                              f"{exc.start} cannot be read. Set the point's encoding.", "file") from exc
    finally:
        stream.close()


def _xlsx_rows(path: Path) -> Iterator[tuple[int, list[Any], str]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ServiceError(E.UNREADABLE_FILE, "The XLSX file cannot be opened (it may be cut short).", "file") from exc
    try:
        sheet = book.worksheets[0]
        for line, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
            values = list(cells)
            if line > 1 and all(v is None or str(v).strip() == "" for v in values):
                continue
            yield line, values, ",".join(_text(v) for v in values)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise ServiceError(E.UNREADABLE_FILE, "The XLSX file is cut short.", "file") from exc
    finally:
        book.close()


def is_xlsx(path: Path) -> bool:
    with open(path, "rb") as probe:
        return probe.read(4) == b"PK\x03\x04"


def read_rows(path: Path, layout: Layout, counts: Counts) -> Iterator[Row]:
    """The file's statements, in file order; unreadable rows go to ``counts.issues`` and rows
    whose status says nothing yet (``Paid = No``, ``PENDING``) to ``counts.ignored``."""
    rows = _xlsx_rows(path) if is_xlsx(path) else _csv_rows(path, layout)
    try:
        _, header, _ = next(rows)
    except StopIteration:
        raise ServiceError(E.NO_ROWS, "The file is empty.", "file") from None
    index = {_key(name): i for i, name in enumerate(header) if _key(name)}
    positions: dict[str, int] = {}
    for name, column in layout.columns.items():
        if _key(column) in index:
            positions[name] = index[_key(column)]
        elif name in REQUIRED:
            raise ServiceError(E.MISSING_COLUMN, f"The file has no column '{column}' (for the {name}); its columns "
                                                 f"are {', '.join(str(h) for h in header if h)}.", "file")
    width = max(positions.values()) + 1
    at = {name: positions.get(name, -1) for name in ("reference", "status", "provider_transaction_id", "amount",
                                                     "currency", "date", "account", "message")}
    i_ref, i_status, i_txn, i_amount = at["reference"], at["status"], at["provider_transaction_id"], at["amount"]
    i_ccy, i_date, i_account, i_message = at["currency"], at["date"], at["account"], at["message"]
    paid, failed, ignored = layout.paid, layout.failed, layout.ignored
    for line, cells, raw in rows:
        counts.rows += 1
        if len(cells) < width:
            counts.issues.append(RowIssue(line, "row", E.TRUNCATED_ROW, f"Line {line} has {len(cells)} cells; the "
                                          f"header has {len(header)} (was the file cut?).", raw))
            continue
        reference = _text(cells[i_ref])
        if not reference:
            counts.issues.append(RowIssue(line, layout.columns["reference"], E.REFERENCE_REQUIRED,
                                          f"Line {line} names no payment reference.", raw))
            continue
        said = _text(cells[i_status]).upper()
        if said in paid:
            status = ReportStatus.PAID
        elif said in failed:
            status = ReportStatus.FAILED
        elif said in ignored:
            counts.ignored += 1
            continue
        else:
            counts.issues.append(RowIssue(line, layout.columns["status"], E.UNKNOWN_STATUS,
                                          f"Line {line}: the status '{said[:40]}' is none of "
                                          f"{', '.join(sorted(paid | failed))}.", raw))
            continue
        raw_amount = cells[i_amount] if i_amount >= 0 else None
        try:
            amount = parse_amount(raw_amount, layout.decimal_comma)
        except (InvalidOperation, ValueError):
            counts.issues.append(RowIssue(line, layout.columns.get("amount", "amount"), E.INVALID_AMOUNT,
                                          f"Line {line}: the amount '{_text(raw_amount)[:40]}' is not a "
                                          "non-negative number.", raw))
            continue
        raw_date = cells[i_date] if i_date >= 0 else None
        try:
            value_date = parse_date(raw_date, layout.date_formats)
        except (ValueError, OverflowError):
            counts.issues.append(RowIssue(line, layout.columns.get("date", "date"), E.INVALID_DATE,
                                          f"Line {line}: the date '{_text(raw_date)[:40]}' is not in a "
                                          "configured format.", raw))
            continue
        yield Row(line=line, reference=reference[:100], status=status,
                  provider_transaction_id=_text(cells[i_txn])[:100] if i_txn >= 0 else "", amount=amount,
                  currency=_text(cells[i_ccy]).upper()[:3] if i_ccy >= 0 else "", value_date=value_date,
                  account=_text(cells[i_account])[:100] if i_account >= 0 else "",
                  message=_text(cells[i_message])[:255] if i_message >= 0 else "", raw=raw[:2000])
