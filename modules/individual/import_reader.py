"""Reading an individual import file: rows streamed from disk, each checked on its own, turned
into ``COPY`` text for the staging table.

This is the import's hot loop (a million rows per run), so it works on plain lists of
strings, with the converters for each column chosen once from the header, the compiled
``json_ext`` validator as the fast path, and ``jsonschema`` only for a row that fails. What
needs other rows or the registry (locations, unique keys, households) is checked later in
SQL, over the staged rows.
"""

from __future__ import annotations

import csv
import datetime
import json
import os
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from core.errors import CoreErrorCode, ServiceError
from core.json_ext import JsonExtSchema
from modules.individual.errors import IndividualErrorCode
from modules.individual.models import RecipientType, Role, Sex

BUILTIN_COLUMNS = (
    "first_name", "last_name", "dob", "sex", "location_code", "household_code", "role", "recipient_type",
)
REQUIRED_COLUMNS = ("first_name", "last_name", "dob")
# The staging table's columns that the file fills, in COPY order.
STAGED_COLUMNS = (
    "row", "batch", "first_name", "last_name", "dob", "sex", "json_ext", "location_code",
    "household_code", "role", "recipient_type", "issues",
)
MAX_NAME = 255
MAX_HOUSEHOLD_CODE = 64
OLDEST_DOB = datetime.date(1900, 1, 1)
XLSX_MAGIC = b"PK\x03\x04"
# An XLSX is a zip: what its directory declares is checked before anything is inflated, so
# a small file that inflates to gigabytes (a zip bomb) is refused in milliseconds. Sheets
# compress well, but not by hundreds: real workbooks stay far below these.
XLSX_MAX_RATIO = int(os.environ.get("COREMIS_XLSX_MAX_RATIO", "100"))
XLSX_MAX_UNCOMPRESSED = int(os.environ.get("COREMIS_XLSX_MAX_UNCOMPRESSED_MB", "1024")) * 1024 * 1024
XLSX_MAX_ENTRIES = 10_000

NULL = "\\N"
_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_ROLES = frozenset(Role.values)
_RECIPIENT_TYPES = frozenset(RecipientType.values)
_SEXES = frozenset(Sex.values)
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})

Rows = Iterator[tuple[int, list[str]]]


def copy_text(value: str) -> str:
    """``value`` as a field of PostgreSQL's COPY text format."""
    return value.translate(_COPY_ESCAPES) if _COPY_SPECIAL.search(value) else value


# --- files -----------------------------------------------------------------------------------


def is_xlsx(path: str | Path) -> bool:
    with open(path, "rb") as stream:
        return stream.read(4) == XLSX_MAGIC


@contextmanager
def open_rows(path: str | Path) -> Iterator[tuple[list[str], Rows, int | None]]:
    """``(header, rows, estimated row count)`` of a CSV or XLSX file, streamed.

    Rows come as ``(row number, cells)`` with the header as row 1, so the numbers are the
    ones a spreadsheet shows.
    """
    if not os.path.exists(path):
        raise ServiceError(IndividualErrorCode.FILE_GONE, "The uploaded file is no longer kept (its import was refused or "
                           "rejected); upload it again.", "file")
    if is_xlsx(path):
        with _xlsx_rows(path) as opened:
            yield opened
    else:
        with _csv_rows(path) as opened:
            yield opened


def _scan(path: str | Path) -> tuple[int, bool]:
    """Lines of a text file, and whether it holds a NUL character anywhere."""
    lines, nul = 0, False
    with open(path, "rb") as stream:
        while block := stream.read(1 << 20):
            lines += block.count(b"\n")
            nul = nul or b"\x00" in block
    return lines, nul


def check_zip_directory(path: str | Path) -> None:
    """Refuse an archive whose directory says it inflates too much, before inflating any of
    it (zipfile never reads more of an entry than the directory declares, so what is
    declared is binding)."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise ServiceError(IndividualErrorCode.INVALID_XLSX, "The file cannot be read as an XLSX workbook (it is not a valid "
                           "zip archive).", "file") from exc
    if len(entries) > XLSX_MAX_ENTRIES:
        raise ServiceError(IndividualErrorCode.XLSX_TOO_COMPLEX, f"The workbook holds {len(entries)} parts; a registry file "
                           f"has far fewer than {XLSX_MAX_ENTRIES}.", "file")
    inflated = sum(entry.file_size for entry in entries)
    size = max(os.path.getsize(path), 1)
    mib = 1024 * 1024
    if inflated > XLSX_MAX_UNCOMPRESSED:
        raise ServiceError(IndividualErrorCode.XLSX_TOO_LARGE, f"The workbook inflates to {inflated // mib} MiB, above the "
                           f"{XLSX_MAX_UNCOMPRESSED // mib} MiB accepted; split it or save it as CSV.", "file")
    if inflated > 16 * mib and inflated > XLSX_MAX_RATIO * size:
        raise ServiceError(IndividualErrorCode.XLSX_BOMB, f"The workbook ({size // 1024} KiB) inflates {inflated // size} times, "
                           f"to {inflated // mib} MiB; registry workbooks inflate far less (at most "
                           f"{XLSX_MAX_RATIO} times). It was not read.", "file")


@contextmanager
def _csv_rows(path: str | Path) -> Iterator[tuple[list[str], Rows, int | None]]:
    with open(path, encoding="utf-8-sig", newline="") as stream:
        try:
            first_line = stream.readline()
        except UnicodeDecodeError as exc:
            raise _not_utf8(1) from exc
        # Spreadsheets set to a European locale save CSV with semicolons.
        delimiter = max((",", ";", "\t"), key=first_line.count)
        stream.seek(0)
        reader = csv.reader(stream, delimiter=delimiter)
        header = next(_csv_guarded(reader, 0), (0, []))[1]
        if "\x00" in "".join(header):
            raise ServiceError(CoreErrorCode.INVALID_CHARACTER, "The header contains a NUL character; the file is not "
                               "plain text. Save it as 'CSV UTF-8' and upload it again.", "file")
        rows = _csv_guarded(reader, 1)
        lines, has_nul = _scan(path)
        if has_nul:
            # PostgreSQL text cannot hold a NUL: such a row is refused and the character removed
            # from what is staged and reported. Clean files never pay for the check.
            rows = _without_nul(rows)
        yield header, rows, max(0, lines - 1)


NUL_CELL = "\x00"


def _without_nul(rows: Rows) -> Rows:
    for number, cells in rows:
        if any(NUL_CELL in cell for cell in cells):
            yield number, [NUL_MARK, *(cell.replace(NUL_CELL, "") for cell in cells)]
        else:
            yield number, cells


# First cell of a row that contained a NUL character (the checker refuses the row).
NUL_MARK = "\x00nul"


def _csv_guarded(reader: Any, start: int) -> Rows:
    number = start
    try:
        for number, cells in enumerate(reader, start=start + 1):
            yield number, cells
    except UnicodeDecodeError as exc:
        raise _not_utf8(number + 1) from exc
    except csv.Error as exc:
        raise ServiceError(IndividualErrorCode.INVALID_CSV, f"Row {number + 1} cannot be read as CSV: {exc}.", "file") from exc


def _not_utf8(row: int) -> ServiceError:
    return ServiceError(
        IndividualErrorCode.INVALID_ENCODING,
        f"Row {row} is not UTF-8 text. Save the file as 'CSV UTF-8' (or as XLSX) and upload it again.",
        "file",
    )


@contextmanager
def _xlsx_rows(path: str | Path) -> Iterator[tuple[list[str], Rows, int | None]]:
    import zipfile

    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    check_zip_directory(path)
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError) as exc:
        raise ServiceError(IndividualErrorCode.INVALID_XLSX, f"The file cannot be read as an XLSX workbook: {exc}.", "file") from exc
    try:
        sheet = workbook.worksheets[0]
        values = sheet.iter_rows(values_only=True)
        header = [cell_text(v) for v in next(values, ())]
        rows = ((n, [cell_text(v) for v in cells]) for n, cells in enumerate(values, start=2))
        estimate = (sheet.max_row - 1) if sheet.max_row else None
        yield header, rows, estimate
    finally:
        workbook.close()


def cell_text(value: Any) -> str:
    """A spreadsheet cell as the text a CSV would hold, so both formats are checked alike."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # identifiers typed into a numeric cell come back as 1234.0
    if isinstance(value, datetime.datetime):
        return value.date().isoformat() if value.time() == datetime.time() else value.isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


# --- per-row checks --------------------------------------------------------------------------


def _to_integer(text: str) -> int:
    return int(text)


def _to_number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        number = float(text)
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError(text) from None
        return number


def _to_boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(text)


def _to_json(text: str) -> Any:
    return json.loads(text)


_CONVERTERS: dict[str, tuple[Callable[[str], Any], str]] = {
    "integer": (_to_integer, "is not a whole number"),
    "number": (_to_number, "is not a number"),
    "boolean": (_to_boolean, "is not true or false (write true/false, yes/no or 1/0)"),
    "array": (_to_json, "is not a JSON list"),
    "object": (_to_json, "is not a JSON object"),
}


def converter_for(property_schema: dict[str, Any]) -> tuple[Callable[[str], Any], str] | None:
    """How a cell becomes the property's JSON type (``None``: it stays a string)."""
    declared = property_schema.get("type")
    if isinstance(declared, list):
        declared = next((t for t in declared if t != "null"), "string")
    return _CONVERTERS.get(str(declared))


class RowChecker:
    """Checks rows one by one and yields them as COPY lines for the staging table.

    Each row also gets its commit batch: a household goes in the batch of its first row, so
    a household is always written whole by one batch, wherever its members are in the file.
    """

    def __init__(self, header: list[str], schema: JsonExtSchema, batch_size: int,
                 today: datetime.date | None = None) -> None:
        self.schema = schema
        self.batch_size = batch_size
        self.today = today or datetime.date.today()
        self.rows = 0
        self.invalid = 0
        self._household_batch: dict[str, int] = {}
        self._map_header(header)

    def _map_header(self, header: list[str]) -> None:
        # "First Name" as a spreadsheet user writes it is the first_name column.
        names = ["_".join(h.strip().lower().split()) for h in header]
        properties = {key.lower(): key for key in self.schema.properties}
        positions: dict[str, int] = {}
        unknown: list[str] = []
        for index, name in enumerate(names):
            if not name:
                continue  # an unnamed column, e.g. a trailing separator on every line
            if name in positions:
                raise ServiceError(IndividualErrorCode.DUPLICATE_COLUMNS, f"The column '{name}' appears twice in the header.", "file")
            if name not in BUILTIN_COLUMNS and name not in properties:
                unknown.append(header[index].strip())
            positions[name] = index
        if unknown:
            allowed = ", ".join([*BUILTIN_COLUMNS, *self.schema.properties])
            raise ServiceError(
                IndividualErrorCode.UNKNOWN_COLUMNS,
                f"The file has column(s) {', '.join(unknown)} that are not known; the columns are {allowed}.",
                "file",
            )
        missing = [c for c in REQUIRED_COLUMNS if c not in positions]
        if missing:
            raise ServiceError(
                IndividualErrorCode.MISSING_COLUMNS, f"The file lacks the column(s) {', '.join(missing)}.", "file"
            )
        self.width = len(names)
        # A column the file does not have reads as an empty cell appended to every row.
        absent = self.width
        self.positions = {name: positions.get(name, absent) for name in BUILTIN_COLUMNS}
        self.padded_width = self.width + (1 if absent in self.positions.values() else 0)
        self.ext_columns: list[tuple[int, str, Callable[[str], Any] | None, str]] = []
        for lowered, key in properties.items():
            if lowered in positions:
                converted = converter_for(self.schema.properties[key])
                convert, complaint = converted if converted else (None, "")
                self.ext_columns.append((positions[lowered], key, convert, complaint))

    def lines(self, rows: Iterable[tuple[int, list[str]]]) -> Iterator[str]:
        """COPY text lines (``STAGED_COLUMNS``) for ``rows``; empty rows are skipped."""
        width, padded_width = self.width, self.padded_width
        p = self.positions
        i_first, i_last, i_dob, i_sex = p["first_name"], p["last_name"], p["dob"], p["sex"]
        i_location, i_household = p["location_code"], p["household_code"]
        i_role, i_recipient = p["role"], p["recipient_type"]
        ext_columns = self.ext_columns
        is_valid = self.schema.is_valid
        dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        fromisoformat = datetime.date.fromisoformat
        today, oldest = self.today, OLDEST_DOB
        batch_size = self.batch_size
        household_batch = self._household_batch
        special = _COPY_SPECIAL.search
        roles, recipient_types, sexes = _ROLES, _RECIPIENT_TYPES, _SEXES
        index = self.rows

        for number, cells in rows:
            if not any(cells):
                continue
            problems: list[tuple[str, str, str]] = []
            if cells[0] == NUL_MARK:
                cells = cells[1:]
                problems.append(("", "INVALID_CHARACTER",
                                 "The row contains a NUL character (the file is not plain text); it was removed "
                                 "from what is reported. Fix the row and upload it again."))
            if len(cells) != padded_width:
                if len(cells) > width and any(cells[width:]):
                    problems.append(("", "EXTRA_CELLS",
                                     f"The row has {len(cells)} cells but the header has {width} columns."))
                cells = cells[:width] + [""] * (padded_width - min(len(cells), width))

            first = cells[i_first].strip()
            if not first:
                problems.append(("first_name", "REQUIRED", "The first name is empty."))
            elif len(first) > MAX_NAME:
                problems.append(("first_name", "TOO_LONG", f"The first name is longer than {MAX_NAME} characters."))
            last = cells[i_last].strip()
            if not last:
                problems.append(("last_name", "REQUIRED", "The last name is empty."))
            elif len(last) > MAX_NAME:
                problems.append(("last_name", "TOO_LONG", f"The last name is longer than {MAX_NAME} characters."))

            dob_text = cells[i_dob].strip()
            dob = NULL
            if not dob_text:
                problems.append(("dob", "REQUIRED", "The date of birth is empty."))
            else:
                try:
                    born = fromisoformat(dob_text)
                except ValueError:
                    problems.append(("dob", "INVALID_DATE",
                                     f"'{dob_text}' is not a date; write it as YYYY-MM-DD, e.g. 1985-03-21."))
                else:
                    if born > today:
                        problems.append(("dob", "IN_FUTURE", f"The date of birth {born} is in the future."))
                    elif born < oldest:
                        problems.append(("dob", "TOO_OLD", f"The date of birth {born} is before 1900."))
                    dob = dob_text if len(dob_text) == 10 else born.isoformat()

            sex = cells[i_sex].strip().upper()
            if sex and sex not in sexes:
                problems.append(("sex", "INVALID_CHOICE", f"The sex is M, F or O (or empty), not '{cells[i_sex].strip()}'."))
                sex = ""

            ext: dict[str, Any] = {}
            for position, key, convert, complaint in ext_columns:
                text = cells[position]
                if text:
                    text = text.strip()
                    if not text:
                        continue
                    if convert is None:
                        ext[key] = text
                        continue
                    try:
                        ext[key] = convert(text)
                    except ValueError:
                        problems.append((key, "INVALID_TYPE", f"{key}: '{text}' {complaint}."))
            if not is_valid(ext):
                for error in self.schema.errors(ext):
                    column = (error.field or "").partition(".")[2]
                    detail = error.message.partition(": ")[2] or error.message
                    problems.append((column, "INVALID_VALUE", f"{column}: {detail}" if column else detail))

            household = cells[i_household].strip()
            role = cells[i_role].strip().upper()
            recipient = cells[i_recipient].strip().upper()
            if role and role not in roles:
                problems.append(("role", "INVALID_CHOICE",
                                 f"'{cells[i_role].strip()}' is not a household role; roles are {', '.join(Role.values)}."))
                role = ""
            if recipient and recipient not in recipient_types:
                problems.append(("recipient_type", "INVALID_CHOICE",
                                 f"The recipient type is PRIMARY or SECONDARY (or empty), not '{cells[i_recipient].strip()}'."))
                recipient = ""
            if household:
                if len(household) > MAX_HOUSEHOLD_CODE:
                    problems.append(("household_code", "TOO_LONG",
                                     f"The household code is longer than {MAX_HOUSEHOLD_CODE} characters."))
                batch = household_batch.get(household)
                if batch is None:
                    batch = household_batch[household] = index // batch_size
            else:
                if role or recipient:
                    problems.append(("household_code", "REQUIRED",
                                     "A role or recipient type needs the household code of the household."))
                batch = index // batch_size
            location = cells[i_location].strip()
            index += 1

            ext_text = dumps(ext)
            if special("".join((first, last, ext_text, location, household))):
                first, last, ext_text, location, household = (
                    copy_text(v) for v in (first, last, ext_text, location, household)
                )
            if problems:
                self.invalid += 1
                issues = copy_text(dumps([{"f": f, "c": c, "m": m} for f, c, m in problems]))
            else:
                issues = NULL
            yield (f"{number}\t{batch}\t{first}\t{last}\t{dob}\t{sex}\t{ext_text}\t{location or NULL}\t"
                   f"{household or NULL}\t{role or NULL}\t{recipient or NULL}\t{issues}\n")
        self.rows = index
