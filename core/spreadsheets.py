"""Text made safe for spreadsheets: every file people or providers may open in Excel,
LibreOffice or Sheets (exports, payment files) goes through here.

A cell whose text starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is run as
a formula (``=HYPERLINK(...)``, ``-2+3+cmd|' /C calc'!A0``): CSV injection. A leading quote
makes the three show it as text instead.
"""

from __future__ import annotations

import re
from typing import Any

# Spreadsheets treat a cell starting with one of these as a formula (or a formula's start).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# A signed number such as a phone number ("+257 79 000 001") or an amount ("-12.50"): it holds
# no function or reference, so nothing in it can run.
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9][0-9 ]*(?:[.,][0-9]+)?")


def neutralise(text: str, *, keep_numbers: bool = False) -> str:
    """``text`` with a leading quote when a spreadsheet would evaluate it.

    ``keep_numbers`` leaves a plain signed number as it is: a payment file is read by the
    provider's software too, which must get "+25779000001", not "'+25779000001"; a person
    opening it sees a number, never a formula.
    """
    if not text.startswith(FORMULA_TRIGGERS):
        return text
    if keep_numbers and _PLAIN_NUMBER.fullmatch(text):
        return text
    return "'" + text


def xlsx_text(sheet: Any, text: str, *, keep_numbers: bool = False) -> Any:
    """A value for ``sheet.append`` (openpyxl, write-only) that is always a text cell.

    openpyxl refuses control characters, and stores text starting with ``=`` as a formula and
    an error name (``#N/A``) as an error; such text becomes a cell forced to the string type.
    """
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE

    text = neutralise(ILLEGAL_CHARACTERS_RE.sub("", text), keep_numbers=keep_numbers)
    if text.startswith("=") or text in ERROR_CODES:
        cell = WriteOnlyCell(sheet, value=text)
        cell.data_type = "s"
        return cell
    return text
