"""Bulk import of individuals and households from CSV or XLSX: job kind ``individual.import``.

A million-row file is a pipeline, not a loop:

1. **stage**: the file is streamed (``csv`` over the open file; ``openpyxl`` read-only for
   XLSX); each row is checked on its own in Python (``import_reader``) and copied with
   ``COPY`` into a staging table of this job, its reasons with it when it is invalid;
2. **check**: what involves other rows or the registry is checked set-based in SQL: location
   codes and the uploader's scope, unique ``json_ext`` keys within the file and against the
   registry, households (one head, one primary recipient, one location), likely duplicates.
   Every reason becomes an :class:`ImportIssue`, a line of the downloadable report;
3. **wait** (when the deployment routes the approval action ``individual.import`` to a task
   group): the job asks the core's maker-checker for approval (``approval``) and pauses in
   state ``WAITING`` until a checker other than the uploader approves it (the registry is then
   checked again) or rejects it;
4. **commit**: ``INSERT … SELECT`` from staging, batch by batch, several batches at once on
   their own connections (PostgreSQL does this work, one core per connection). Each batch is
   one transaction that also records an :class:`ImportBatch` marker; history is written by
   the tables' triggers, attributed to the uploader and the job. ``individual_after_created``
   fires once per batch, after it commits.

Restart: the staging tables outlive the worker, the ids of what each row becomes are fixed
by the job and the row number, and :class:`ImportRun` ``phase`` records the last step
completed. A re-run after a crash validates again if validation was cut short, and otherwise
writes the batches that have no marker yet: a killed worker's open batch rolls back and is
written again, the committed ones are not, so nothing is lost or doubled. A batch holds
whole households. ``individual_after_created`` is at least once: a crash between a batch's
commit and its announcement announces it again.

All or nothing is decided before anything is written: an invalid row means no batch is
written. Should someone register a clashing national id or household between the checks and
a batch, that batch writes nothing, the rest is checked again, and the import goes on with
what still passes (``valid_rows``) or stops, saying how much was already written.

Rules decided here:
- A row's location is its ``location_code``; a household member may leave it empty and lives
  where the household does: the head's location, or the first member's that has one.
  A member with another location is refused (``LOCATION_MISMATCH``); everyone needs one.
- A ``household_code`` already in the registry adds the rows to that household (the uploader
  must have it in scope), as long as it keeps one head and one primary recipient and its
  location.
- ``valid_rows`` mode leaves out a whole household when one of its rows is invalid, so no
  household is imported without some of its members (``HOUSEHOLD_REJECTED``).
- Likely duplicates (same first name, last name, date of birth and location, ignoring case)
  in the file or the registry are imported and listed in the report (``LIKELY_DUPLICATE``)
  for a person to review: the same name and birthday in one colline is rare but real, so
  refusing them would lose real people.
- The same file (same SHA-256) as an import that has run (it is running, waits for approval,
  is done, or wrote rows before it failed or was cancelled) is refused unless the caller says
  ``allowDuplicateFile``; an import that is queued but has not started, or that ended without
  writing anything, does not count. Two imports of one file queued together both pass at
  upload; when they run, the one that started later refuses itself (``DUPLICATE_FILE``),
  and a retry of it checks again.

The parts: ``api`` (start, who may read), ``approval`` (asking, deciding, the approval action), ``staging``, ``checks`` (row by
row while staging, then set-based), ``commit`` (the engine), ``outcome`` (state and message),
``job`` (the handler that runs them in order).
"""

from __future__ import annotations

from modules.individual.bulk_import.api import (
    KIND,
    MODES,
    can_see,
    imports_that_ran,
    report_of,
    report_url,
    start_import,
)
from modules.individual.bulk_import.approval import (
    IMPORT_APPROVAL,
    ImportDecision,
    check_decide_import,
    do_decide_import,
)
from modules.individual.bulk_import.commit import commit_workers
from modules.individual.bulk_import.job import run_import
from modules.individual.bulk_import.staging import Staging

__all__ = ["IMPORT_APPROVAL", "KIND", "MODES", "ImportDecision", "Staging", "can_see", "check_decide_import",
           "commit_workers", "do_decide_import", "imports_that_ran", "report_of", "report_url", "run_import",
           "start_import"]
