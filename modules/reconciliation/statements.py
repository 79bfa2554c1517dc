"""Bank statements: ISO 20022 ``camt.053`` (streamed with lxml ``iterparse``, one entry in
memory at a time) and SWIFT MT940, read into the same rows as a result file.

A payout is a debit of the programme's account: booked (``BOOK``, or an MT940 ``D``) it is
PAID; a reversal (``RvslInd``, ``RD``) or money coming back (a credit) is FAILED. The payment's
reference is the end-to-end id (``EndToEndId``; in MT940 ``EREF+`` or ``/EREF/`` in field 86, else
the customer reference of field 61). A line without one (``NOTPROVIDED``, ``NONREF``) is
matched by the point's rule instead: same amount, same account, within the date window (see
``ledger.match_by_rule``)."""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from core.errors import ServiceError
from modules.reconciliation.errors import ReconciliationErrorCode as E
from modules.reconciliation.models import ReportStatus
from modules.reconciliation.reading import Counts, Row, RowIssue

NO_REFERENCE = {"", "NOTPROVIDED", "NONREF", "NONE"}


def kind_of(path: Path) -> str | None:
    """``"CAMT053"``, ``"MT940"`` or ``None`` (a result file), from the first bytes."""
    with open(path, "rb") as probe:
        head = probe.read(4096).lstrip(b"\xef\xbb\xbf \r\n\t")
    if head.startswith(b"<") and b"camt.053" in head:
        return "CAMT053"
    if head.startswith((b":20:", b"{1:", b":940:")) or b"\n:20:" in head[:200]:
        return "MT940"
    return None


Paths = dict[tuple[str, ...], Any]


def _paths(node: Any, skip: str | None = None) -> Paths:
    """Every element under ``node`` by its path of local names (the first of each path), in one
    walk: an entry is read with a few dictionary look-ups instead of a child scan per field,
    which at 315,000 entries is most of the time of reading a statement. ``skip`` names a child
    whose subtree is left out (the transactions, read on their own)."""
    found: Paths = {}
    stack: list[tuple[Any, tuple[str, ...]]] = [(node, ())]
    while stack:
        parent, prefix = stack.pop()
        for child in parent:
            tag = child.tag
            if not isinstance(tag, str):  # a comment or a processing instruction
                continue
            key = (*prefix, tag[tag.rfind("}") + 1:])
            if key in found or (not prefix and key[0] == skip):
                continue
            found[key] = child
            if len(child):
                stack.append((child, key))
    return found


def _text(paths: Paths, *path: str) -> str:
    found = paths.get(path)
    return (found.text or "").strip() if found is not None else ""


def _date(paths: Paths, *path: str) -> datetime.date | None:
    text = _text(paths, *path, "Dt") or _text(paths, *path, "DtTm")[:10]
    try:
        return datetime.date.fromisoformat(text) if text else None
    except ValueError:
        return None


def read_camt053(path: Path, counts: Counts) -> Iterator[Row]:
    from lxml import etree

    try:
        for _, entry in etree.iterparse(str(path), events=("end",), tag="{*}Ntry", huge_tree=True,
                                        resolve_entities=False, no_network=True):
            yield from _entry_rows(entry, counts)
            entry.clear()
            while entry.getprevious() is not None:
                del entry.getparent()[0]
    except etree.XMLSyntaxError as exc:
        counts.issues.append(RowIssue(exc.lineno or 0, "file", E.TRUNCATED_ROW,
                                      f"The statement stops being XML at line {exc.lineno} (was it cut?); the "
                                      "entries before it were read.", ""))


def _local(tag: Any) -> str:
    return tag[tag.rfind("}") + 1:] if isinstance(tag, str) else ""


# An entry with one transaction (a payout) is read by one compiled XPath, in C: the fields
# below, first match of each step, joined by U+E000 (private use; an entry whose text carries it
# splits into more parts and is walked instead). Entries with several transactions, or without a
# namespace, take the element walk below.
SEP = "\ue000"
TX = ("NtryDtls", "TxDtls")
FIELDS: tuple[tuple[str, ...], ...] = (
    ("Sts", "Cd"), ("RvslInd",), ("CdtDbtInd",), ("ValDt", "Dt"), ("ValDt", "DtTm"), ("BookgDt", "Dt"),
    ("BookgDt", "DtTm"), (*TX, "AmtDtls", "TxAmt", "Amt"), (*TX, "Amt"), ("Amt",), (*TX, "Refs", "EndToEndId"),
    (*TX, "RltdPties", "CdtrAcct", "Id", "IBAN"), (*TX, "RltdPties", "CdtrAcct", "Id", "Othr", "Id"),
    (*TX, "Refs", "AcctSvcrRef"), (*TX, "Refs", "TxId"), ("AcctSvcrRef",), ("NtryRef",), (*TX, "RmtInf", "Ustrd"),
    ("AddtlNtryInf",))
AMOUNTS = (7, 8, 9)  # the transaction's amount, else its Amt, else the entry's
WIDTH = 2 + len(FIELDS) + 2 * len(AMOUNTS)
_compiled: dict[str, Any] = {}


def _one_transaction_reader(namespace: str) -> Any:
    if namespace not in _compiled:
        from lxml import etree

        def step(path: tuple[str, ...]) -> str:
            return "/".join(f"n:{name}[1]" for name in path)

        parts = ["concat(count(n:NtryDtls), count(n:NtryDtls/n:TxDtls))", "n:Sts[1]/text()[1]"]
        for i, path in enumerate(FIELDS):
            parts.append(step(path))
            if i in AMOUNTS:
                parts += [f"count({step(path)})", f"{step(path)}/@Ccy"]
        expression = "concat(" + f", '{SEP}', ".join(parts) + ")"
        _compiled[namespace] = etree.XPath(expression, namespaces={"n": namespace})
    return _compiled[namespace]


def _entry_rows(entry: Any, counts: Counts) -> Iterator[Row]:
    tag = entry.tag
    if tag.startswith("{"):
        values = _one_transaction_reader(tag[1:tag.index("}")])(entry).split(SEP)
        if values[0] == "11" and len(values) == WIDTH:  # one NtryDtls holding one TxDtls
            yield from _read_one(values, counts)
            return
    yield from _walk_entry(entry, counts)


def _read_one(values: list[str], counts: Counts) -> Iterator[Row]:
    (_, sts_text, sts_code, reversal, side, val_dt, val_dttm, book_dt, book_dttm, tx_amount, tx_amounts, tx_ccy,
     amt, amts, amt_ccy, entry_amt, entry_amts, entry_ccy, reference, iban, other_id, servicer_ref, tx_id,
     entry_servicer_ref, entry_ref, remittance, entry_info) = (v.strip() for v in values)
    booked = sts_code or sts_text
    counts.rows += 1
    if booked and booked != "BOOK":
        counts.ignored += 1
        return
    line = counts.rows
    status = ReportStatus.PAID if side == "DBIT" and reversal.lower() != "true" else ReportStatus.FAILED
    value_date = _iso_date(val_dt or val_dttm[:10]) or _iso_date(book_dt or book_dttm[:10])
    amount_text, currency, present = ((tx_amount, tx_ccy, True) if tx_amounts != "0" else
                                      (amt, amt_ccy, True) if amts != "0" else
                                      (entry_amt, entry_ccy, entry_amts != "0"))
    try:
        amount = Decimal(amount_text) if present else None
    except InvalidOperation:
        counts.issues.append(RowIssue(line, "Amt", E.INVALID_AMOUNT, f"Entry at line {line}: the amount is "
                                      "not a number.", ""))
        return
    txn = servicer_ref or tx_id or entry_servicer_ref or entry_ref
    yield Row(line=line, reference="" if reference.upper() in NO_REFERENCE else reference[:100], status=status,
              provider_transaction_id=txn[:100], amount=amount, currency=currency.upper()[:3],
              value_date=value_date, account=(iban or other_id)[:100],
              message=remittance[:255] or entry_info[:255], raw=f"Ntry@{line} {reference} {amount} {txn}"[:2000])


def _iso_date(text: str) -> datetime.date | None:
    try:
        return datetime.date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _walk_entry(entry: Any, counts: Counts) -> Iterator[Row]:
    head = _paths(entry, skip="NtryDtls")
    booked = _text(head, "Sts", "Cd") or _text(head, "Sts")
    if booked and booked != "BOOK":
        counts.rows += 1
        counts.ignored += 1
        return
    reversed_ = _text(head, "RvslInd").lower() == "true"
    debit = _text(head, "CdtDbtInd") == "DBIT"
    status = ReportStatus.PAID if debit and not reversed_ else ReportStatus.FAILED
    value_date = _date(head, "ValDt") or _date(head, "BookgDt")
    details = [tx for d in entry if _local(d.tag) == "NtryDtls" for tx in d if _local(tx.tag) == "TxDtls"]
    entry_amount = head.get(("Amt",))
    entry_txn = _text(head, "AcctSvcrRef") or _text(head, "NtryRef")
    entry_message = _text(head, "AddtlNtryInf")[:255]
    for tx in details or [entry]:
        counts.rows += 1
        line = counts.rows  # the transaction's number in the statement (XML may be one line)
        paths = _paths(tx) if details else head
        amount_node = paths.get(("AmtDtls", "TxAmt", "Amt"))
        if amount_node is None:
            amount_node = paths.get(("Amt",))
        if amount_node is None:
            amount_node = entry_amount
        try:
            amount = Decimal((amount_node.text or "").strip()) if amount_node is not None else None
        except InvalidOperation:
            counts.issues.append(RowIssue(line, "Amt", E.INVALID_AMOUNT, f"Entry at line {line}: the amount is "
                                          "not a number.", ""))
            continue
        reference = _text(paths, "Refs", "EndToEndId")
        account = (_text(paths, "RltdPties", "CdtrAcct", "Id", "IBAN") or
                   _text(paths, "RltdPties", "CdtrAcct", "Id", "Othr", "Id"))
        txn = _text(paths, "Refs", "AcctSvcrRef") or _text(paths, "Refs", "TxId") or entry_txn
        yield Row(line=line, reference="" if reference.upper() in NO_REFERENCE else reference[:100], status=status,
                  provider_transaction_id=txn[:100], amount=amount,
                  currency=(amount_node.get("Ccy", "") if amount_node is not None else "").upper()[:3],
                  value_date=value_date, account=account[:100],
                  message=_text(paths, "RmtInf", "Ustrd")[:255] or entry_message,
                  raw=f"Ntry@{line} {reference} {amount} {txn}"[:2000])


LINE_61 = re.compile(r"^(?P<value>\d{6})(?P<entry>\d{4})?(?P<mark>RC|RD|C|D)[A-Z]?(?P<amount>\d[\d,]*)"
                     r"(?P<type>[NSF][A-Z0-9]{3})(?P<ref>[^/\n]*)(?://(?P<bank>[^\n]*))?")
EREF = re.compile(r"(?:EREF\+|/EREF/)([^/\s]+)")
IBAN = re.compile(r"(?:IBAN\+|/IBAN/)([^/\s]+)")


def _fields(path: Path) -> Iterator[tuple[int, str, str]]:
    """(line, tag, value) of every field; a value runs until the next line starting with ':'."""
    current: tuple[int, str, list[str]] | None = None
    with open(path, encoding="utf-8-sig", errors="replace") as text:
        for number, raw in enumerate(text, start=1):
            line = raw.rstrip("\r\n")
            match = re.match(r"^:(\d{2}[A-Z]?):(.*)$", line)
            if match:
                if current:
                    yield current[0], current[1], "\n".join(current[2])
                current = (number, match.group(1), [match.group(2)])
            elif current and line not in ("-", "-}") and not line.startswith("{"):
                current[2].append(line)
    if current:
        yield current[0], current[1], "\n".join(current[2])


def read_mt940(path: Path, counts: Counts) -> Iterator[Row]:
    currency = ""
    pending: tuple[int, Any] | None = None

    def row_of(line: int, match: Any, info: str) -> Row:
        value = match.group("value")
        try:
            value_date = datetime.datetime.strptime(value, "%y%m%d").date()
        except ValueError:
            value_date = None
        mark = match.group("mark")
        status = ReportStatus.PAID if mark in ("D", "RC") else ReportStatus.FAILED
        eref = EREF.search(info)
        reference = eref.group(1) if eref else match.group("ref").strip()
        iban = IBAN.search(info)
        return Row(line=line, reference="" if reference.upper() in NO_REFERENCE else reference[:100], status=status,
                   provider_transaction_id=(match.group("bank") or "").strip()[:100],
                   amount=Decimal(match.group("amount").replace(",", ".")), currency=currency, value_date=value_date,
                   account=(iban.group(1) if iban else "")[:100], message=info.replace("\n", " ")[:255],
                   raw=f":61:{match.group(0)}"[:2000])

    for line, tag, value in _fields(path):
        if tag in ("60F", "60M"):
            currency = value[7:10].upper() if len(value) >= 10 else currency
        elif tag == "61":
            if pending:
                yield row_of(pending[0], pending[1], "")
            counts.rows += 1
            match = LINE_61.match(value.split("\n", 1)[0])
            if match is None:
                counts.issues.append(RowIssue(line, ":61:", E.TRUNCATED_ROW, f"Line {line}: the statement line "
                                              "cannot be read (was the file cut?).", value[:200]))
                pending = None
                continue
            pending = (line, match)
        elif tag == "86" and pending:
            yield row_of(pending[0], pending[1], value)
            pending = None
    if pending:
        yield row_of(pending[0], pending[1], "")


def read_statement(kind: str, path: Path, counts: Counts) -> Iterator[Row]:
    if kind == "CAMT053":
        return read_camt053(path, counts)
    if kind == "MT940":
        return read_mt940(path, counts)
    raise ServiceError(E.UNREADABLE_FILE, f"'{kind}' is not a statement format.", "file")
