"""Bulk import of individuals and households from CSV or XLSX: job kind ``individual.import``.

A million-row file is a pipeline, not a loop:

1. **stage**: the file is streamed (``csv`` over the open file; ``openpyxl`` read-only for
   XLSX); each row is checked on its own in Python (``import_reader``) and copied with
   ``COPY`` into a staging table of this job, its reasons with it when it is invalid;
2. **check**: what involves other rows or the registry is checked set-based in SQL: location
   codes and the uploader's scope, unique ``json_ext`` keys within the file and against the
   registry, households (one head, one primary recipient, one location), likely duplicates.
   Every reason becomes an :class:`ImportIssue`, a line of the downloadable report;
3. **wait** (when ``import_requires_approval`` is set): the job pauses in state ``WAITING``
   until a second user approves it (the registry is then checked again) or rejects it;
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
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from functools import partial
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef, Q, Sum
from django.utils import timezone

from core.errors import CoreErrorCode, NotFound, ServiceError
from core.history import acting_as
from core.hooks import hook
from core.imports import ImportMode
from core.jobs import JobContext, dispatch_on_commit, ends_the_job, progress_db, start_job
from core.loader import module_config
from core.models import Job, Upload
from core.permissions import JOB_VIEW_ALL, has_permission, require
from core.uploads import discard_file, discard_on_commit, get_upload
from modules.individual.errors import IndividualErrorCode
from modules.individual.import_models import ImportBatch, ImportIssue, ImportRun
from modules.individual.import_reader import STAGED_COLUMNS, RowChecker, open_rows
from modules.individual.permissions import IMPORT_APPROVE, IMPORT_START
from modules.individual.unique_keys import unique_keys
from modules.individual.validation import individual_schema
from modules.location.services import scope_paths, unscoped_system

log = logging.getLogger("coremis.individual.import")

KIND = "individual.import"
MODES = tuple(mode.value for mode in ImportMode)
COPY_BLOCK = 2000  # lines per write to the COPY stream
PROGRESS_EVERY = 1.0  # seconds between progress writes
MAX_ERRORS_ON_JOB = 1000
# Set only by tests that kill a worker in the middle of a commit: seconds to wait after each
# batch, so the kill lands inside the transaction.
PAUSE_ENV = "COREMIS_TEST_IMPORT_PAUSE"
# Hash aggregates and joins over a million staged rows stay in memory instead of spilling.
CHECK_WORK_MEM = "256MB"
# An import in one of these states has run (or runs now): the same file again would register
# the same people twice. A queued one has not run yet; it checks again when it starts.
BLOCKING_STATES = (Job.RUNNING, Job.WAITING, Job.SUCCEEDED, Job.PARTIAL)

OK = "s.issues IS NULL AND NOT s.rejected"

Issues = Callable[..., None]  # runs "INSERT INTO individual_importissue … <its SQL>"


def report_url(job_id: Any) -> str:
    return f"/api/individual/import/{job_id}/report.csv"


class Staging:
    """The job's staging tables: ``rows`` (one per file row) and ``households`` (one per
    household code). Ordinary (logged) tables, so even a database crash in the middle of a
    commit leaves what the re-run needs; dropped when the import ends, which costs nothing,
    where deleting a million rows from a shared table would not.

    The ids of what a row becomes are a function of the job and the row number
    (:meth:`id_sql`), so every run of the job writes the same ids. They are UUIDv7-shaped
    (the job's creation time, then a per-job random offset plus the row number): ids that
    grow with the row keep the primary-key and history indexes' inserts on a few hot pages,
    where random ids touch a page per row (measured: about a fifth less time per insert).
    """

    # What a row number is turned into: its individual, its membership, and (for a
    # household's first row) its household.
    INDIVIDUAL, MEMBERSHIP, HOUSEHOLD = 0, 1, 2

    def __init__(self, job: Job) -> None:
        suffix = job.pk.hex
        self.rows = f"individual_stage_{suffix}"
        self.households = f"individual_stagehh_{suffix}"
        millis = int(job.created_at.timestamp() * 1000) & (2**48 - 1)
        self._prefix = f"{millis:012x}7{suffix[:3]}8"
        self._offset = int(suffix[3:17], 16)  # 56 bits: the 60 left hold it plus 4 x rows

    def id_sql(self, row: str, kind: int) -> str:
        """SQL for the id that row number ``row`` (an SQL expression) becomes as ``kind``."""
        return f"('{self._prefix}' || lpad(to_hex({self._offset} + ({row}) * 4 + {kind}), 15, '0'))::uuid"

    def create_rows(self, cursor: Any) -> None:
        self.drop(cursor)
        cursor.execute(f"""
            CREATE TABLE {self.rows} (
                row integer NOT NULL,
                batch integer NOT NULL,
                first_name text NOT NULL,
                last_name text NOT NULL,
                dob date,
                sex varchar(1) NOT NULL,
                json_ext jsonb NOT NULL,
                location_code text,
                household_code text,
                role text,
                recipient_type text,
                issues jsonb,
                rejected boolean NOT NULL DEFAULT false
            )""")

    def drop(self, cursor: Any) -> None:
        cursor.execute(f"DROP TABLE IF EXISTS {self.rows}, {self.households}")

    def exists(self, cursor: Any) -> bool:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL",
                       [self.rows, self.households])
        return bool(cursor.fetchone()[0])


# --- starting, approving, rejecting ----------------------------------------------------------


def start_import(user: Any, upload_id: Any, mode: str = "all_or_nothing",
                 allow_duplicate_file: bool = False) -> Job:
    """Queue the import of an uploaded file (``POST /api/upload?purpose=individual.import``)."""
    require(user, IMPORT_START)
    if mode not in MODES:
        raise ServiceError(IndividualErrorCode.INVALID_MODE, f"Unknown import mode '{mode}'; use all_or_nothing or valid_rows.", "mode")
    upload = get_upload(upload_id, user, "individual.import")
    return _start(user, upload, mode, allow_duplicate_file)


def imports_that_ran(sha256: str) -> Any:
    """Imports of the file with this SHA-256 that have run: running, waiting for approval,
    done, or ended after writing rows (queued ones and those that wrote nothing do not count)."""
    wrote = ImportBatch.objects.filter(job_id=OuterRef("job_id"))
    return (ImportRun.objects.select_related("job").filter(sha256=sha256)
            .filter(Q(job__state__in=BLOCKING_STATES) | Q(Exists(wrote))))


def _lock_file(sha256: str) -> None:
    """Until the transaction ends, no other import of this file passes its duplicate check."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"{KIND}:{sha256}"])


def _duplicate_file(previous: ImportRun, field: str | None) -> ServiceError:
    return ServiceError(
        IndividualErrorCode.DUPLICATE_FILE,
        f"This file was already imported (job {previous.job_id}, {previous.job.state.lower()}); "
        "importing it again would register the same people twice. To import it anyway, "
        "send allowDuplicateFile: true.",
        field,
    )


def _start(user: Any, upload: Upload, mode: str, allow_duplicate_file: bool) -> Job:
    with transaction.atomic():
        # Two uploads of one file started at the same moment must not both pass the check.
        _lock_file(upload.sha256)
        if not allow_duplicate_file:
            previous = imports_that_ran(upload.sha256).order_by("-created_at").first()
            if previous is not None:
                raise _duplicate_file(previous, "uploadId")
        job = start_job(KIND, {"upload_id": str(upload.pk), "mode": mode,
                               "allow_duplicate_file": allow_duplicate_file}, user)
        job.stage = "received"
        Job.objects.filter(pk=job.pk).update(stage=job.stage)
        ImportRun.objects.create(
            job=job, upload=upload, sha256=upload.sha256, mode=mode,
            needs_approval=bool(module_config("individual")["import_requires_approval"]),
        )
    return job


def _waiting_run(job_id: Any) -> ImportRun:
    run = (ImportRun.objects.select_for_update(of=("self",)).select_related("job", "job__created_by", "upload")
           .filter(job_id=job_id).first())
    if run is None:
        raise NotFound("Import", job_id)
    if run.phase != ImportRun.WAITING or run.job.state != Job.WAITING:
        raise ServiceError(IndividualErrorCode.NOT_AWAITING_APPROVAL,
                           f"This import is not waiting for approval (it is {run.job.state.lower()}).", "jobId")
    return run


def approve_import(user: Any, job_id: Any) -> Job:
    """A second user lets a validated import write to the registry; the job resumes."""
    require(user, IMPORT_APPROVE)
    with transaction.atomic():
        run = _waiting_run(job_id)
        if run.job.created_by_id is not None and run.job.created_by_id == getattr(user, "pk", None):
            raise ServiceError(IndividualErrorCode.SELF_APPROVAL,
                               "You started this import; another user with the right to approve imports must approve it.",
                               "jobId")
        outside = _rows_outside_scope(run, user)
        if outside:
            raise ServiceError(CoreErrorCode.OUT_OF_SCOPE,
                               f"{outside} of the rows to import are in locations outside yours; "
                               "a user whose locations cover them must approve this import.", "jobId")
        run.phase, run.decided_by, run.decided_at = ImportRun.APPROVED, user, timezone.now()
        run.save(update_fields=["phase", "decided_by", "decided_at"])
        job = run.job
        job.state, job.stage = Job.QUEUED, "approved"
        Job.objects.filter(pk=job.pk).update(state=job.state, stage=job.stage)
        dispatch_on_commit(job)
    return job


def reject_import(user: Any, job_id: Any, reason: str) -> Job:
    """Refuse a waiting import; nothing is written and its staged rows are dropped."""
    require(user, IMPORT_APPROVE)
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError(CoreErrorCode.REQUIRED, "Say why the import is rejected; its uploader reads it.", "reason")
    with transaction.atomic():
        run = _waiting_run(job_id)
        run.phase, run.decided_by, run.decided_at, run.decision_reason = (
            ImportRun.REJECTED, user, timezone.now(), reason)
        run.save(update_fields=["phase", "decided_by", "decided_at", "decision_reason"])
        job = run.job
        job.state, job.stage, job.finished_at = Job.CANCELLED, "rejected", timezone.now()
        job.message = f"Rejected by {user.username}: {reason}"
        Job.objects.filter(pk=job.pk).update(state=job.state, stage=job.stage, finished_at=job.finished_at,
                                             message=job.message)
        staging = Staging(job)
        transaction.on_commit(lambda: _drop(staging))
        discard_on_commit(run.upload)
    return job


def can_see(user: Any, job: Job) -> bool:
    """The uploader may read an import and its report; so may whoever reads every job and
    the approvers, when their locations cover the uploader's (a report names people)."""
    if not (user and user.is_authenticated):
        return False
    if job.created_by_id == user.pk:
        return True
    if not (has_permission(user, JOB_VIEW_ALL) or has_permission(user, IMPORT_APPROVE)):
        return False
    mine = scope_paths(user)
    if mine is None:
        return True
    theirs = scope_paths(job.created_by) if job.created_by is not None else None
    return theirs is not None and all(any(p.startswith(m) for m in mine) for p in theirs)


def report_lines(job_id: Any) -> Iterator[tuple[int, str, str, str]]:
    """The report: ``(row, field, code, message)`` in file order, streamed from the database."""
    return (ImportIssue.objects.filter(job_id=job_id).order_by("row", "id")
            .values_list("row", "field", "code", "message").iterator(chunk_size=5000))


# --- the job ---------------------------------------------------------------------------------


@contextmanager
def _exclusive(job_id: Any) -> Iterator[None]:
    """One process at a time works on an import: a second run of the same job (a worker that
    was thought dead but was not) waits here, then finds the work done."""
    key = f"{KIND}:{job_id}"
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [key])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [key])


def run_import(ctx: JobContext) -> dict[str, Any]:
    """Job handler for ``individual.import``: validates, waits, commits, from wherever the
    job's previous run stopped."""
    with _exclusive(ctx.job.pk):
        run = ImportRun.objects.select_related("upload").get(job_id=ctx.job.pk)
        staging = Staging(ctx.job)
        try:
            if run.phase == ImportRun.RECEIVED and not run.job.params.get("allow_duplicate_file"):
                _refuse_if_another_import_ran_first(ctx.job)
            return _run(ctx, run, staging)
        except BaseException as exc:
            # The job ends (failed, cancelled), and nothing runs it again by itself: its staged
            # rows would only sit there. A run that was only lost keeps them for the next one.
            if ends_the_job(exc):
                with suppress(Exception):
                    _drop(staging)
            raise


def _refuse_if_another_import_ran_first(job: Job) -> None:
    """Of two imports of one file that were both queued, the one that started first goes on;
    the other refuses (a retry checks again, so it goes on if the first wrote nothing)."""
    run = ImportRun.objects.select_related("job").get(job_id=job.pk)
    with transaction.atomic():
        _lock_file(run.sha256)
        mine = (run.job.started_at, str(job.pk))
        for other in imports_that_ran(run.sha256).exclude(job_id=job.pk):
            theirs = (other.job.started_at, str(other.job_id))
            if other.job.started_at is None or run.job.started_at is None or theirs < mine:
                raise _duplicate_file(other, None)


def _run(ctx: JobContext, run: ImportRun, staging: Staging) -> dict[str, Any]:
    started_writing = ImportBatch.objects.filter(job=ctx.job).exists()
    if run.phase in (ImportRun.VALIDATED, ImportRun.APPROVED, ImportRun.WAITING) and not _staging_exists(staging):
        if started_writing:
            raise ServiceError(
                IndividualErrorCode.STAGING_LOST, "The import's staged rows were removed after part of it was written; "
                "the report lists what was refused, and the rows written are in the registry.")
        run.phase = ImportRun.RECEIVED
    if run.phase == ImportRun.RECEIVED:
        try:
            _validate(ctx, run, staging)
        except ServiceError:
            _set_phase(run, ImportRun.REFUSED)
            Job.objects.using(progress_db()).filter(pk=ctx.job.pk).update(stage="failed")
            discard_file(run.upload)  # refused before anything was written: nothing reads it again
            raise
    if run.phase == ImportRun.VALIDATED and run.needs_approval:
        _set_phase(run, ImportRun.WAITING)
    if run.phase == ImportRun.APPROVED and not started_writing:
        # Others may have registered people or households since the uploader's checks.
        _check(ctx, run, staging)
    if run.phase in (ImportRun.VALIDATED, ImportRun.APPROVED):
        _commit(ctx, run, staging)
    if run.phase == ImportRun.REFUSED:
        _drop(staging)  # the report lives on in the issues
        discard_file(run.upload)
    return _outcome(ctx, run)


def _set_phase(run: ImportRun, phase: str, **changes: Any) -> None:
    run.phase = phase
    for name, value in changes.items():
        setattr(run, name, value)
    ImportRun.objects.filter(pk=run.pk).update(phase=phase, **changes)


def _staging_exists(staging: Staging) -> bool:
    with connection.cursor() as cursor:
        return staging.exists(cursor)


def _drop(staging: Staging) -> None:
    with connection.cursor() as cursor:
        staging.drop(cursor)


class _Throttle:
    """Progress writes at most once a second: each is a round trip on its own connection."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self.last = 0.0

    def __call__(self, processed: int, total: int | None, stage: str, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last >= PROGRESS_EVERY:
            self.ctx.progress(processed, total, stage)
            self.last = now


def _validate(ctx: JobContext, run: ImportRun, staging: Staging) -> None:
    job = ctx.job
    progress = _Throttle(ctx)
    started = time.monotonic()
    progress(0, None, "validating", force=True)
    ImportIssue.objects.filter(job=job).delete()
    batch_size = int(module_config("individual")["import_chunk_size"])
    with open_rows(run.upload.stored_path) as (header, rows, estimate):
        checker = RowChecker(header, individual_schema(), batch_size)
        with connection.cursor() as cursor:
            staging.create_rows(cursor)
            with cursor.copy(f"COPY {staging.rows} ({', '.join(STAGED_COLUMNS)}) FROM STDIN") as copy:
                block: list[str] = []
                for line in checker.lines(rows):
                    block.append(line)
                    if len(block) >= COPY_BLOCK:
                        copy.write("".join(block))
                        block.clear()
                        progress(checker.rows, max(estimate or 0, checker.rows), "validating")
                if block:
                    copy.write("".join(block))
    if not checker.rows:
        raise ServiceError(IndividualErrorCode.NO_ROWS, "The file has a header but no rows.", "file")
    log.info("import staged", extra={"job": str(job.pk), "rows": checker.rows, "seconds": round(time.monotonic() - started, 1)})
    progress(checker.rows, checker.rows, "validating", force=True)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE INDEX ON {staging.rows} (batch)")
        cursor.execute(f"ANALYZE {staging.rows}")
        # The reasons found in Python become report lines in one statement.
        cursor.execute(f"""
            INSERT INTO individual_importissue (job_id, row, field, code, message, blocking, checked_by)
            SELECT %s, s.row, e->>'f', e->>'c', e->>'m', true, 'row'
            FROM {staging.rows} s CROSS JOIN LATERAL jsonb_array_elements(s.issues) e
            WHERE s.issues IS NOT NULL""", [job.pk])
    run.counts = {"total": checker.rows}
    _check(ctx, run, staging)


# --- set-based checks ------------------------------------------------------------------------


def _scope(user: Any) -> list[str] | None:
    """``LIKE`` patterns of the locations ``user`` may act on; ``None`` for everywhere."""
    if unscoped_system(user, ("individual",)):
        return None
    paths = scope_paths(user)
    return None if paths is None else [p + "%" for p in paths]


def _check(ctx: JobContext, run: ImportRun, staging: Staging) -> None:
    """Every check that needs other rows or the registry; sets the rows' ``rejected`` flag
    and the phase. Re-runnable: it first undoes what an earlier run of it did."""
    job_id, mode = ctx.job.pk, run.mode
    started = time.monotonic()
    ctx.progress(run.counts["total"], run.counts["total"], "validating")
    s, h = staging.rows, staging.households
    scope = _scope(ctx.user)
    params: dict[str, Any] = {"job": job_id, "scope": scope or []}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '{CHECK_WORK_MEM}'")
        # Rows already written (taken out of staging) keep their report lines.
        cursor.execute(f"""
            DELETE FROM individual_importissue WHERE job_id = %(job)s AND checked_by = 'set'
              AND row IN (SELECT row FROM {s})""", params)
        cursor.execute(f"UPDATE {s} SET rejected = false WHERE rejected")
        cursor.execute(f"DROP TABLE IF EXISTS {h}")
        _build_households(cursor, staging)

        def issues(sql: str, extra: dict[str, Any] | None = None) -> None:
            cursor.execute(
                "INSERT INTO individual_importissue (job_id, row, field, code, message, blocking, checked_by) "
                + sql, {**params, **(extra or {})},
            )

        _check_locations(issues, s, h, scope)
        _check_households(issues, s, h)
        _check_unique_keys(issues, s)
        _flag_likely_duplicates(issues, s, h)
        cursor.execute(f"""
            UPDATE {s} s SET rejected = true FROM (
                SELECT DISTINCT row FROM individual_importissue
                WHERE job_id = %(job)s AND blocking AND checked_by = 'set'
            ) x WHERE s.row = x.row""", params)
        if mode == "valid_rows":
            _leave_out_broken_households(cursor, params, s, h)
        run.counts = {**run.counts, **_counts(cursor, params, s, h)}
        valid, total = run.counts["valid"], run.counts["total"]
        refused = (mode == "all_or_nothing" and valid < total) or valid == 0
        _set_phase(run, ImportRun.REFUSED if refused else
                   (ImportRun.APPROVED if run.phase == ImportRun.APPROVED else ImportRun.VALIDATED),
                   counts=run.counts)
    log.info("import checked", extra={"job": str(job_id), "valid": run.counts["valid"],
                                      "seconds": round(time.monotonic() - started, 1)})



def _check_locations(issues: Issues, s: str, h: str, scope: list[str] | None) -> None:
    """Known, within the uploader's scope, and one per household."""
    in_scope = "TRUE" if scope is None else "{path} LIKE ANY (%(scope)s::text[])"
    issues(f"""
        SELECT %(job)s, s.row, 'location_code',
               CASE WHEN l.id IS NULL THEN 'LOCATION_NOT_FOUND' ELSE 'OUT_OF_SCOPE' END,
               CASE WHEN l.id IS NULL THEN format('No location has the code ''%%s''.', s.location_code)
                    ELSE format('The location ''%%s'' is outside your locations.', s.location_code) END,
               true, 'set'
        FROM {s} s LEFT JOIN location_location l ON l.code = s.location_code AND NOT l.is_deleted
        WHERE s.location_code IS NOT NULL AND (l.id IS NULL OR NOT ({in_scope.format(path="l.path")}))""")
    issues(f"""
        SELECT %(job)s, s.row, 'location_code', 'LOCATION_REQUIRED',
               CASE WHEN s.household_code IS NULL THEN 'The location code is empty.'
                    ELSE format('No member of household ''%%s'' has a location code; give its head one.',
                                s.household_code) END,
               true, 'set'
        FROM {s} s LEFT JOIN {h} h ON h.code = s.household_code
        WHERE s.location_code IS NULL AND (s.household_code IS NULL OR h.location_code IS NULL)""")
    issues(f"""
        SELECT %(job)s, s.row, 'location_code', 'LOCATION_MISMATCH',
               CASE WHEN h.existing_id IS NOT NULL
                    THEN format('Household ''%%s'' is registered in location ''%%s'', not ''%%s''.',
                                h.code, h.location_code, s.location_code)
                    ELSE format('Household ''%%s'' is in location ''%%s'' (its head''s, or its first '
                                'member''s), not ''%%s''; a household lives in one location.',
                                h.code, h.location_code, s.location_code) END,
               true, 'set'
        FROM {s} s JOIN {h} h ON h.code = s.household_code
        WHERE s.location_code IS NOT NULL AND h.location_code IS NOT NULL
          AND s.location_code <> h.location_code""")
    if scope is not None:
        issues(f"""
            SELECT %(job)s, s.row, 'household_code', 'OUT_OF_SCOPE',
                   format('Household ''%%s'' is registered outside your locations.', h.code), true, 'set'
            FROM {s} s JOIN {h} h ON h.code = s.household_code
            WHERE h.existing_id IS NOT NULL
              AND (h.location_path IS NULL OR NOT ({in_scope.format(path="h.location_path")}))""")


def _check_households(issues: Issues, s: str, h: str) -> None:
    """One head and one primary recipient, counting the members already registered."""
    for field, value, count, plural, existing in (
        ("role", "HEAD", "heads", "heads", "has_head"),
        ("recipient_type", "PRIMARY", "primaries", "primary recipients", "has_primary"),
    ):
        what = "head" if value == "HEAD" else "primary recipient"
        issues(f"""
            SELECT %(job)s, s.row, '{field}', 'MULTIPLE_{count.upper()}',
                   format('Household ''%%s'' has %%s {plural} in this file (rows %%s); it can have one.',
                          s.household_code, d.n, d.rows),
                   true, 'set'
            FROM {s} s JOIN (
                SELECT x.household_code, count(*) AS n, string_agg(x.row::text, ', ' ORDER BY x.row) AS rows
                FROM {s} x JOIN {h} hh ON hh.code = x.household_code AND hh.{count} > 1
                WHERE x.{field} = '{value}' GROUP BY x.household_code
            ) d ON d.household_code = s.household_code
            WHERE s.{field} = '{value}'""")
        issues(f"""
            SELECT %(job)s, s.row, '{field}', '{value}_EXISTS',
                   format('Household ''%%s'' already has a {what} in the registry.', h.code), true, 'set'
            FROM {s} s JOIN {h} h ON h.code = s.household_code
            WHERE s.{field} = '{value}' AND h.existing_{existing}""")


def _check_unique_keys(issues: Issues, s: str) -> None:
    """Within the file (every row sharing a value is refused: which one is right is for a
    person to say), and against the live registry."""
    for key in unique_keys():
        issues(f"""
            WITH shared AS (
                SELECT s.row, s.json_ext->>%(key)s AS value
                FROM {s} s JOIN (
                    SELECT json_ext->>%(key)s AS value FROM {s} WHERE json_ext ? %(key)s
                    GROUP BY 1 HAVING count(*) > 1
                ) d ON d.value = s.json_ext->>%(key)s
                WHERE s.json_ext ? %(key)s
            ), grouped AS (
                SELECT value, array_agg(row ORDER BY row) AS rows FROM shared GROUP BY value
            )
            SELECT %(job)s, x.row, %(key)s, 'DUPLICATE_IN_FILE',
                   format('%%s ''%%s'' is also on row %%s.', %(key)s::text, x.value,
                          array_to_string((array_remove(g.rows, x.row))[1:5], ', ')),
                   true, 'set'
            FROM shared x JOIN grouped g ON g.value = x.value""", {"key": key})
        issues(f"""
            SELECT %(job)s, s.row, %(key)s, 'DUPLICATE_KEY',
                   format('Another individual in the registry already has %%s ''%%s''.',
                          %(key)s::text, s.json_ext->>%(key)s),
                   true, 'set'
            FROM {s} s JOIN individual_individual i
              ON (i.json_ext->>%(key)s) = (s.json_ext->>%(key)s) AND i.json_ext ? %(key)s AND NOT i.is_deleted
            WHERE s.json_ext ? %(key)s""", {"key": key})


def _build_households(cursor: Any, staging: Staging) -> None:
    """One row per household code: its members' roles, its location, and the registered
    household of that code if there is one."""
    s, h = staging.rows, staging.households
    cursor.execute(f"""
        CREATE TABLE {h} AS
        WITH members AS (
            SELECT household_code AS code, min(batch) AS batch,
                   count(*) FILTER (WHERE role = 'HEAD') AS heads,
                   count(*) FILTER (WHERE recipient_type = 'PRIMARY') AS primaries,
                   min(row) AS first_row,
                   min(row) FILTER (WHERE role = 'HEAD') AS head_row,
                   (array_agg(location_code ORDER BY (role = 'HEAD') IS TRUE DESC, row)
                        FILTER (WHERE location_code IS NOT NULL))[1] AS file_location_code
            FROM {s} WHERE household_code IS NOT NULL GROUP BY household_code
        )
        SELECT m.code, m.batch, m.heads, m.primaries,
               {staging.id_sql("m.first_row", Staging.HOUSEHOLD)} AS id,
               CASE WHEN m.head_row IS NOT NULL THEN {staging.id_sql("m.head_row", Staging.INDIVIDUAL)} END AS head_id,
               g.id AS existing_id,
               g.head_id IS NOT NULL AS existing_has_head,
               CASE WHEN g.id IS NULL THEN false ELSE EXISTS (
                   SELECT 1 FROM individual_groupindividual gi
                   WHERE gi.group_id = g.id AND NOT gi.is_deleted AND gi.recipient_type = 'PRIMARY'
               ) END AS existing_has_primary,
               CASE WHEN g.id IS NULL THEN m.file_location_code ELSE gl.code END AS location_code,
               CASE WHEN g.id IS NULL THEN fl.id ELSE g.location_id END AS location_id,
               CASE WHEN g.id IS NULL THEN fl.path ELSE gl.path END AS location_path,
               false AS rejected
        FROM members m
        LEFT JOIN individual_group g ON g.code = m.code AND NOT g.is_deleted
        LEFT JOIN location_location gl ON gl.id = g.location_id
        LEFT JOIN location_location fl ON fl.code = m.file_location_code AND NOT fl.is_deleted""")
    cursor.execute(f"CREATE UNIQUE INDEX ON {h} (code)")
    cursor.execute(f"CREATE INDEX ON {h} (batch)")
    cursor.execute(f"ANALYZE {h}")


def _flag_likely_duplicates(issues: Any, s: str, h: str) -> None:
    """Same first name, last name (ignoring case), date of birth and location: within the
    file (rows after the first of them) and against the registry. Notes, not refusals."""
    issues(f"""
        WITH person AS (
            SELECT s.row, lower(s.first_name) AS first_name, lower(s.last_name) AS last_name, s.dob,
                   coalesce(h.location_code, s.location_code) AS location_code
            FROM {s} s LEFT JOIN {h} h ON h.code = s.household_code
            WHERE s.dob IS NOT NULL
        ), twins AS (
            SELECT first_name, last_name, dob, location_code, min(row) AS first_row
            FROM person WHERE location_code IS NOT NULL
            GROUP BY 1, 2, 3, 4 HAVING count(*) > 1
        )
        SELECT %(job)s, p.row, '', 'LIKELY_DUPLICATE',
               format('Looks like the person on row %%s: same first name, last name, date of birth '
                      'and location.', t.first_row),
               false, 'set'
        FROM person p JOIN twins t USING (first_name, last_name, dob, location_code)
        WHERE p.row <> t.first_row""")
    issues(f"""
        SELECT %(job)s, s.row, '', 'LIKELY_DUPLICATE',
               format('Looks like %%s %%s, born %%s, already registered in the same location '
                      '(individual %%s).', i.first_name, i.last_name, i.dob, i.id),
               false, 'set'
        FROM {s} s
        LEFT JOIN {h} h ON h.code = s.household_code
        LEFT JOIN location_location l ON l.code = s.location_code AND NOT l.is_deleted
        JOIN individual_individual i
          ON lower(i.first_name) = lower(s.first_name) AND lower(i.last_name) = lower(s.last_name)
         AND i.dob = s.dob AND i.location_id = coalesce(h.location_id, l.id) AND NOT i.is_deleted""")


def _leave_out_broken_households(cursor: Any, params: dict[str, Any], s: str, h: str) -> None:
    cursor.execute(f"""
        WITH broken AS (
            SELECT household_code, min(row) AS first_bad FROM {s}
            WHERE household_code IS NOT NULL AND (issues IS NOT NULL OR rejected)
            GROUP BY household_code
        ), left_out AS (
            UPDATE {s} s SET rejected = true FROM broken b
            WHERE s.household_code = b.household_code AND s.issues IS NULL AND NOT s.rejected
            RETURNING s.row, s.household_code, b.first_bad
        )
        INSERT INTO individual_importissue (job_id, row, field, code, message, blocking, checked_by)
        SELECT %(job)s, row, 'household_code', 'HOUSEHOLD_REJECTED',
               format('Left out with the rest of household ''%%s'', because its row %%s is invalid.',
                      household_code, first_bad),
               true, 'set'
        FROM left_out""", params)
    cursor.execute(f"""
        UPDATE {h} h SET rejected = true FROM (
            SELECT DISTINCT household_code FROM {s} WHERE household_code IS NOT NULL AND (issues IS NOT NULL OR rejected)
        ) b WHERE h.code = b.household_code""")


def _counts(cursor: Any, params: dict[str, Any], s: str, h: str) -> dict[str, int]:
    """Counts over the file: what is still staged, plus the batches already written."""
    written = ImportBatch.objects.filter(job_id=params["job"]).aggregate(
        individuals=Sum("individuals"), households=Sum("households"))
    cursor.execute(f"SELECT count(*) FILTER (WHERE {OK}) FROM {s} s")
    valid = cursor.fetchone()[0] + (written["individuals"] or 0)
    cursor.execute(f"""
        SELECT count(*) FILTER (WHERE existing_id IS NULL AND NOT rejected),
               count(*) FILTER (WHERE existing_id IS NOT NULL AND NOT rejected) FROM {h}""")
    new_households, existing_households = cursor.fetchone()
    new_households += written["households"] or 0
    cursor.execute("""
        SELECT count(DISTINCT row) FILTER (WHERE blocking),
               count(DISTINCT row) FILTER (WHERE code = 'LIKELY_DUPLICATE'),
               count(*) FILTER (WHERE blocking)
        FROM individual_importissue WHERE job_id = %(job)s""", params)
    invalid, likely_duplicates, errors = cursor.fetchone()
    return {"valid": valid, "invalid": invalid, "errors": errors, "likely_duplicates": likely_duplicates,
            "households_new": new_households, "households_existing": existing_households,
            "written_before_check": written["individuals"] or 0}


def _rows_outside_scope(run: ImportRun, user: Any) -> int:
    """Valid rows whose location ``user`` may not act on (an approver must cover them all)."""
    scope = _scope(user)
    if scope is None:
        return 0
    staging = Staging(run.job)
    with connection.cursor() as cursor:
        cursor.execute(f"""
            SELECT count(*) FROM {staging.rows} s
            LEFT JOIN {staging.households} h ON h.code = s.household_code
            LEFT JOIN location_location l ON l.code = s.location_code AND NOT l.is_deleted
            LEFT JOIN location_location hl ON hl.id = h.location_id
            WHERE {OK} AND NOT (coalesce(hl.path, l.path, '') LIKE ANY (%s::text[]))""", [scope])
        return int(cursor.fetchone()[0])


# --- commit ----------------------------------------------------------------------------------


def commit_workers() -> int:
    """Connections that write batches side by side: PostgreSQL spends one core per writing
    connection (indexes, history triggers, foreign-key checks), and the job's own process is
    idle meanwhile."""
    return max(1, min(4, os.cpu_count() or 1))


def _commit(ctx: JobContext, run: ImportRun, staging: Staging, retried: bool = False) -> None:
    """Write the valid rows batch by batch, each batch in its own transaction with its
    :class:`ImportBatch` marker, several batches at once. Idempotent: a re-run (after a
    crash) writes only the batches without a marker, from the same staged ids, so nothing
    is written twice and nothing is skipped."""
    job = ctx.job
    s = staging.rows
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT batch FROM {s} s WHERE {OK} ORDER BY 1")
        batches = [row[0] for row in cursor.fetchall()]
    committed = {b.batch: b for b in ImportBatch.objects.filter(job=job)}
    pending = [b for b in batches if b not in committed]
    valid = run.counts["valid"]
    done = sum(b.individuals for b in committed.values())
    ctx.progress(done, valid, "importing")
    for marker in committed.values():
        if not marker.announced:
            _announce_later(job.pk, staging, marker.batch)
    started = time.monotonic()
    try:
        for marker in _write_batches(ctx, staging, pending):
            done += marker.individuals
            ctx.progress(done, valid, "importing")
            _announce_later(job.pk, staging, marker.batch)
    except IntegrityError:
        # Someone registered a clashing national id or household code after the checks ran.
        # The batch that met it wrote nothing; check what is left against the registry as it
        # is now, and go on with what still passes.
        if retried:
            raise
        log.warning("import clashed with concurrent registrations; checking again", extra={"job": str(job.pk)})
        _forget_written(job.pk, staging)
        _check(ctx, run, staging)
        if run.phase != ImportRun.REFUSED:
            _commit(ctx, run, staging, retried=True)
        return
    log.info("import committed", extra={"job": str(job.pk), "batches": len(pending), "individuals": done,
                                        "seconds": round(time.monotonic() - started, 1)})
    totals = ImportBatch.objects.filter(job=job).aggregate(
        individuals=Sum("individuals"), households=Sum("households"), memberships=Sum("memberships"))
    run.counts = {**run.counts, **{f"created_{k}": v or 0 for k, v in totals.items()}}
    run.phase = ImportRun.FINISHED
    # After the announcements above (callbacks run in order): the staging tables go with the
    # phase change, in one transaction, so a re-run never finds one without the other.
    transaction.on_commit(partial(_finish_import, job.pk, staging, run.counts))


def _write_batches(ctx: JobContext, staging: Staging, pending: list[int]) -> Iterator[ImportBatch]:
    """Write ``pending`` batches, yielding each one's marker once it is committed."""
    pause = float(os.environ.get(PAUSE_ENV) or 0)
    user, job_id = ctx.user, ctx.job.pk
    workers = min(commit_workers(), len(pending))
    if workers <= 1 or connection.in_atomic_block:
        # Inside an outer transaction (tests) other connections would not see the staged rows.
        for batch in pending:
            yield _write_batch(user, job_id, staging, batch, pause)
        return
    todo: queue.SimpleQueue[int] = queue.SimpleQueue()
    for batch in pending:
        todo.put(batch)
    results: queue.SimpleQueue[Any] = queue.SimpleQueue()
    stop = threading.Event()
    finished = object()

    def work() -> None:
        try:
            while not stop.is_set():
                try:
                    batch = todo.get_nowait()
                except queue.Empty:
                    break
                results.put(_write_batch(user, job_id, staging, batch, pause))
        except BaseException as exc:  # handed to the job's thread, which raises it
            stop.set()
            results.put(exc)
        finally:
            connection.close()  # this thread's own connection
            results.put(finished)

    threads = [threading.Thread(target=work, name=f"import-{job_id}-{n}", daemon=True) for n in range(workers)]
    for thread in threads:
        thread.start()
    error: BaseException | None = None
    try:
        running = workers
        while running:
            item = results.get()
            if item is finished:
                running -= 1
            elif isinstance(item, BaseException):
                error = error or item
            else:
                yield item
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    if error is not None:
        raise error


def _write_batch(user: Any, job_id: Any, staging: Staging, batch: int, pause: float) -> ImportBatch:
    s, h = staging.rows, staging.households
    params = {"batch": batch, "user": getattr(user, "pk", None)}
    with acting_as(user, job=str(job_id)), connection.cursor() as cursor:
        cursor.execute(f"""
            INSERT INTO individual_individual (id, date_created, date_updated, user_created_id,
                user_updated_id, version, is_deleted, json_ext, first_name, last_name, dob, sex, location_id)
            SELECT {staging.id_sql("s.row", Staging.INDIVIDUAL)}, now(), now(), %(user)s, %(user)s, 1, false,
                   s.json_ext, s.first_name,
                   s.last_name, s.dob, s.sex, CASE WHEN s.household_code IS NULL THEN l.id ELSE h.location_id END
            FROM {s} s
            LEFT JOIN {h} h ON h.code = s.household_code AND h.batch = %(batch)s
            LEFT JOIN location_location l ON l.code = s.location_code AND NOT l.is_deleted
            WHERE s.batch = %(batch)s AND {OK}""", params)
        individuals = cursor.rowcount
        cursor.execute(f"""
            INSERT INTO individual_group (id, date_created, date_updated, user_created_id,
                user_updated_id, version, is_deleted, json_ext, code, location_id, head_id)
            SELECT h.id, now(), now(), %(user)s, %(user)s, 1, false, '{{}}'::jsonb, h.code,
                   h.location_id, h.head_id
            FROM {h} h WHERE h.batch = %(batch)s AND h.existing_id IS NULL AND NOT h.rejected""", params)
        households = cursor.rowcount
        cursor.execute(f"""
            UPDATE individual_group g SET head_id = h.head_id, version = g.version + 1,
                   date_updated = now(), user_updated_id = %(user)s
            FROM {h} h
            WHERE h.batch = %(batch)s AND h.existing_id = g.id AND h.head_id IS NOT NULL
              AND NOT h.rejected AND g.head_id IS NULL""", params)
        cursor.execute(f"""
            INSERT INTO individual_groupindividual (id, date_created, date_updated, user_created_id,
                user_updated_id, version, is_deleted, group_id, individual_id, role, recipient_type)
            SELECT {staging.id_sql("s.row", Staging.MEMBERSHIP)}, now(), now(), %(user)s, %(user)s, 1, false,
                   coalesce(h.existing_id, h.id), {staging.id_sql("s.row", Staging.INDIVIDUAL)},
                   coalesce(s.role, 'OTHER_RELATIVE'), s.recipient_type
            FROM {s} s JOIN {h} h ON h.code = s.household_code AND h.batch = %(batch)s
            WHERE s.batch = %(batch)s AND {OK}""", params)
        marker = ImportBatch.objects.create(job_id=job_id, batch=batch, individuals=individuals,
                                            households=households, memberships=cursor.rowcount)
        if pause:
            time.sleep(pause)
    return marker


def _announce_later(job_id: Any, staging: Staging, batch: int) -> None:
    """Fire ``individual_after_created`` for a committed batch once the current transaction
    commits (at once in a worker, where there is none). At least once: a crash between the
    call and the ``announced`` mark makes the re-run announce the batch again."""
    transaction.on_commit(partial(_announce, job_id, staging, batch))


def _announce(job_id: Any, staging: Staging, batch: int) -> None:
    caller = hook().individual_after_created
    if caller.get_hookimpls():
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {staging.id_sql('s.row', Staging.INDIVIDUAL)} FROM {staging.rows} s "
                           f"WHERE s.batch = %s AND {OK} ORDER BY s.row", [batch])
            ids = [row[0] for row in cursor.fetchall()]
        try:
            caller(individual_ids=ids, source=f"import:{job_id}")
        except Exception:
            # The people are registered whatever a listener does with the news.
            log.exception("individual_after_created failed", extra={"job": str(job_id), "batch": batch})
    ImportBatch.objects.filter(job_id=job_id, batch=batch).update(announced=True)


def _finish_import(job_id: Any, staging: Staging, counts: dict[str, Any]) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        ImportRun.objects.filter(job_id=job_id).update(phase=ImportRun.FINISHED, counts=counts)
        staging.drop(cursor)


def _forget_written(job_id: Any, staging: Staging) -> None:
    """Take the batches already in the registry out of staging, so checking again compares
    only what is left with the registry (which now holds them)."""
    written = list(ImportBatch.objects.filter(job_id=job_id).values_list("batch", flat=True))
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {staging.rows} WHERE batch = ANY(%s)", [written])
        cursor.execute(f"DELETE FROM {staging.households} WHERE batch = ANY(%s)", [written])


# --- the outcome -----------------------------------------------------------------------------


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def _outcome(ctx: JobContext, run: ImportRun) -> dict[str, Any]:
    counts = run.counts
    total, valid, invalid = counts.get("total", 0), counts.get("valid", 0), counts.get("invalid", 0)
    duplicates = counts.get("likely_duplicates", 0)
    if run.phase == ImportRun.REFUSED:
        state, stage = Job.FAILED, "failed"
        if counts.get("written_before_check"):
            message = (f"Stopped after {counts['written_before_check']:,} of {total:,} rows were imported: "
                       "people or households registered meanwhile clash with rows not yet written, "
                       "which were not imported. The report lists them.")
        elif valid == 0:
            message = f"None of the {total:,} rows is valid, so nothing was imported. The report lists the reasons."
        else:
            message = (f"{invalid:,} of {total:,} rows are invalid, so nothing was imported (all or nothing). "
                       "The report lists the reasons.")
    elif run.phase == ImportRun.WAITING:
        state, stage = Job.WAITING, "waiting_for_approval"
        message = f"{valid:,} of {total:,} rows are valid and wait for another user's approval."
    else:
        state, stage = (Job.PARTIAL, "partially_done") if invalid else (Job.SUCCEEDED, "done")
        message = (f"Imported {_count(counts.get('created_individuals', valid), 'individual')} "
                   f"({_count(counts.get('created_households', 0), 'new household')}).")
        if invalid:
            message += f" {_count(invalid, 'row')} left out; the report lists why."
    if duplicates:
        message += (f" {_count(duplicates, 'row')} look like people already known; "
                    "the report lists them for review.")
    errors = list(ImportIssue.objects.filter(job_id=ctx.job.pk, blocking=True).order_by("row", "id")
                  .values("row", "field", "code", "message")[:MAX_ERRORS_ON_JOB])
    processed = counts.get("created_individuals", 0) if state in (Job.SUCCEEDED, Job.PARTIAL) else total
    Job.objects.using(progress_db()).filter(pk=ctx.job.pk).update(
        stage=stage, message=message, errors=errors, error_count=counts.get("errors", 0), processed=processed,
    )
    ctx.job.stage, ctx.job.message, ctx.job.errors = stage, message, errors
    return {"state": state, "mode": run.mode, "report": report_url(ctx.job.pk), "awaiting_approval": state == Job.WAITING,
            **counts}
