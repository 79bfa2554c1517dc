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


# camt.053 is read in one streaming walk: ``iterparse`` hands over one entry at a time, the
# entry is read by descending only the branches that lead to a wanted field (a tree of local
# names, below), and it is forgotten (with what came before it) once its rows are out. No
# per-entry XPath and no scan of the fields nobody reads.
TX = ("NtryDtls", "TxDtls")
# Read from a transaction (relative to its TxDtls) or, in an entry without details, from the
# entry itself.
TX_FIELDS = (("AmtDtls", "TxAmt", "Amt"), ("Amt",), ("Refs", "EndToEndId"), ("RltdPties", "CdtrAcct", "Id", "IBAN"),
             ("RltdPties", "CdtrAcct", "Id", "Othr", "Id"), ("Refs", "AcctSvcrRef"), ("Refs", "TxId"),
             ("RmtInf", "Ustrd"))
# Read from the entry (relative to its Ntry).
ENTRY_FIELDS = (*TX_FIELDS, ("Sts", "Cd"), ("Sts",), ("RvslInd",), ("CdtDbtInd",), ("ValDt", "Dt"),
                ("ValDt", "DtTm"), ("BookgDt", "Dt"), ("BookgDt", "DtTm"), ("AcctSvcrRef",), ("NtryRef",),
                ("AddtlNtryInf",))

Fields = dict[tuple[str, ...], Any]
# local name -> (the path to it if it is a field, else None; the tree under it)
Wanted = dict[str, tuple[tuple[str, ...] | None, "Wanted"]]


def _wanted(paths: tuple[tuple[str, ...], ...]) -> Wanted:
    tree: Wanted = {}
    for path in paths:
        level = tree
        for depth, name in enumerate(path):
            field, below = level.get(name, (None, {}))
            if depth == len(path) - 1:
                field = path
            level[name] = (field, below)
            level = below
    return tree


ENTRY_TREE = _wanted(ENTRY_FIELDS)
TX_TREE = _wanted(TX_FIELDS)


def _local(tag: Any) -> str:
    return tag[tag.rfind("}") + 1:] if isinstance(tag, str) else ""


def _collect(node: Any, tree: Wanted, found: Fields) -> None:
    """The first element at each wanted path under ``node``, in document order."""
    for child in node:
        wanted = tree.get(child.tag)  # (a comment's or a processing instruction's tag is no name)
        if wanted is not None:
            field, below = wanted
            if field is not None and field not in found:
                found[field] = child
            if below:
                _collect(child, below, found)


def _in(namespace: str, tree: Wanted) -> Wanted:
    """``tree`` keyed by the elements' tags in ``namespace`` (as lxml spells them)."""
    prefix = "{" + namespace + "}" if namespace else ""
    return {prefix + name: (field, _in(namespace, below)) for name, (field, below) in tree.items()}


_trees: dict[str, tuple[Wanted, Wanted, str, str]] = {}


def _trees_for(tag: str) -> tuple[Wanted, Wanted, str, str]:
    namespace = tag[1:tag.index("}")] if tag.startswith("{") else ""
    if namespace not in _trees:
        prefix = "{" + namespace + "}" if namespace else ""
        _trees[namespace] = (_in(namespace, ENTRY_TREE), _in(namespace, TX_TREE), prefix + "NtryDtls",
                             prefix + "TxDtls")
    return _trees[namespace]


def _text(fields: Fields, *path: str) -> str:
    found = fields.get(path)
    return (found.text or "").strip() if found is not None else ""


def _date(fields: Fields, *path: str) -> datetime.date | None:
    text = _text(fields, *path, "Dt") or _text(fields, *path, "DtTm")[:10]
    try:
        return datetime.date.fromisoformat(text) if text else None
    except ValueError:
        return None


def read_camt053(path: Path, counts: Counts) -> Iterator[Row]:
    from lxml import etree

    try:
        for _, entry in etree.iterparse(str(path), events=("end",), tag="{*}Ntry", huge_tree=True,
                                        resolve_entities=False, no_network=True):
            entry_tree, tx_tree, details_tag, tx_tag = _trees_for(entry.tag)
            head: Fields = {}
            _collect(entry, entry_tree, head)
            details: list[Fields] = []
            for part in entry:
                if part.tag == details_tag:
                    for tx in part:
                        if tx.tag == tx_tag:
                            found: Fields = {}
                            _collect(tx, tx_tree, found)
                            details.append(found)
            yield from _entry_rows(head, details, counts)
            entry.clear(keep_tail=False)
            while entry.getprevious() is not None:
                del entry.getparent()[0]
    except etree.XMLSyntaxError as exc:
        counts.issues.append(RowIssue(exc.lineno or 0, "file", E.TRUNCATED_ROW,
                                      f"The statement stops being XML at line {exc.lineno} (was it cut?); the "
                                      "entries before it were read.", ""))


def _entry_rows(head: Fields, details: list[Fields], counts: Counts) -> Iterator[Row]:
    booked = _text(head, "Sts", "Cd") or _text(head, "Sts")
    if booked and booked != "BOOK":
        counts.rows += 1
        counts.ignored += 1
        return
    reversed_ = _text(head, "RvslInd").lower() == "true"
    debit = _text(head, "CdtDbtInd") == "DBIT"
    status = ReportStatus.PAID if debit and not reversed_ else ReportStatus.FAILED
    value_date = _date(head, "ValDt") or _date(head, "BookgDt")
    entry_amount = head.get(("Amt",))
    entry_txn = _text(head, "AcctSvcrRef") or _text(head, "NtryRef")
    entry_message = _text(head, "AddtlNtryInf")[:255]
    for fields in details or [head]:
        counts.rows += 1
        line = counts.rows  # the transaction's number in the statement (XML may be one line)
        amount_node = fields.get(("AmtDtls", "TxAmt", "Amt"))
        if amount_node is None:
            amount_node = fields.get(("Amt",))
        if amount_node is None:
            amount_node = entry_amount
        try:
            amount = Decimal((amount_node.text or "").strip()) if amount_node is not None else None
        except InvalidOperation:
            counts.issues.append(RowIssue(line, "Amt", E.INVALID_AMOUNT, f"Entry at line {line}: the amount is "
                                          "not a number.", ""))
            continue
        reference = _text(fields, "Refs", "EndToEndId")
        account = (_text(fields, "RltdPties", "CdtrAcct", "Id", "IBAN") or
                   _text(fields, "RltdPties", "CdtrAcct", "Id", "Othr", "Id"))
        txn = _text(fields, "Refs", "AcctSvcrRef") or _text(fields, "Refs", "TxId") or entry_txn
        yield Row(line=line, reference="" if reference.upper() in NO_REFERENCE else reference[:100], status=status,
                  provider_transaction_id=txn[:100], amount=amount,
                  currency=(amount_node.get("Ccy", "") if amount_node is not None else "").upper()[:3],
                  value_date=value_date, account=account[:100],
                  message=_text(fields, "RmtInf", "Ustrd")[:255] or entry_message,
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
