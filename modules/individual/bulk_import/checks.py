"""Staging a file (each row checked on its own while it is copied) and the set-based checks
over the staged rows: locations and scope, households, unique keys, likely duplicates."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.db import connection, transaction
from django.db.models import Sum

from core.actors import checked_actor
from core.errors import ServiceError
from core.jobs import JobContext
from core.loader import module_config
from modules.individual.bulk_import.staging import COPY_BLOCK, OK, Staging, report_writer, set_phase
from modules.individual.errors import IndividualErrorCode
from modules.individual.import_models import ImportBatch, ImportRun
from modules.individual.import_reader import STAGED_COLUMNS, RowChecker, open_rows
from modules.individual.unique_keys import unique_keys
from modules.individual.validation import individual_schema
from modules.location.services import scope_paths

log = logging.getLogger("coremis.individual.import")


PROGRESS_EVERY = 1.0  # seconds between progress writes


# Hash aggregates and joins over a million staged rows stay in memory instead of spilling.
CHECK_WORK_MEM = "256MB"


Issues = Callable[..., None]  # runs "INSERT INTO core_importissue … <its SQL>" (the job's import report)


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


def validate(ctx: JobContext, run: ImportRun, staging: Staging) -> None:
    job = ctx.job
    progress = _Throttle(ctx)
    started = time.monotonic()
    progress(0, None, "validating", force=True)
    report = report_writer(job, run.mode)
    report.clear()
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
    report.add_from_sql(f"""
        SELECT s.row, e->>'f', e->>'c', e->>'m', '', true, 'row'
        FROM {staging.rows} s CROSS JOIN LATERAL jsonb_array_elements(s.issues) e
        WHERE s.issues IS NOT NULL""")
    run.counts = {"total": checker.rows}
    check(ctx, run, staging)


def scope_patterns(user: Any) -> list[str] | None:
    """``LIKE`` patterns of the locations ``user`` may act on; ``None`` for everywhere."""
    paths = scope_paths(checked_actor(user))
    return None if paths is None else [p + "%" for p in paths]


def check(ctx: JobContext, run: ImportRun, staging: Staging) -> None:
    """Every check that needs other rows or the registry; sets the rows' ``rejected`` flag
    and the phase. Re-runnable: it first undoes what an earlier run of it did."""
    job_id, mode = ctx.job.pk, run.mode
    started = time.monotonic()
    ctx.progress(run.counts["total"], run.counts["total"], "validating")
    s, h = staging.rows, staging.households
    scope = scope_patterns(ctx.user)
    report = report_writer(ctx.job, mode)
    params: dict[str, Any] = {"job": job_id, "report": report.report.pk, "scope": scope or []}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '{CHECK_WORK_MEM}'")
        # Rows already written (taken out of staging) keep their report lines.
        cursor.execute(f"""
            DELETE FROM core_importissue WHERE report_id = %(report)s AND stage = 'set'
              AND row IN (SELECT row FROM {s})""", params)
        cursor.execute(f"UPDATE {s} SET rejected = false WHERE rejected")
        cursor.execute(f"DROP TABLE IF EXISTS {h}")
        _build_households(cursor, staging)

        def issues(sql: str, extra: dict[str, Any] | None = None) -> None:
            # Each check's SELECT gives (report, row, field, code, message, blocking, stage).
            cursor.execute(
                f"INSERT INTO core_importissue (report_id, row, field, code, message, blocking, stage, raw_value) "
                f"SELECT i.*, '' FROM ({sql}) AS i", {**params, **(extra or {})},
            )

        _check_locations(issues, s, h, scope)
        _check_households(issues, s, h)
        _check_unique_keys(issues, s)
        _flag_likely_duplicates(issues, s, h)
        cursor.execute(f"""
            UPDATE {s} s SET rejected = true FROM (
                SELECT DISTINCT row FROM core_importissue
                WHERE report_id = %(report)s AND blocking AND stage = 'set'
            ) x WHERE s.row = x.row""", params)
        if mode == "valid_rows":
            _leave_out_broken_households(cursor, params, s, h)
        run.counts = {**run.counts, **_counts(cursor, params, s, h)}
        valid, total = run.counts["valid"], run.counts["total"]
        refused = (mode == "all_or_nothing" and valid < total) or valid == 0
        set_phase(run, ImportRun.REFUSED if refused else
                   (ImportRun.APPROVED if run.phase == ImportRun.APPROVED else ImportRun.VALIDATED),
                   counts=run.counts)
    log.info("import checked", extra={"job": str(job_id), "valid": run.counts["valid"],
                                      "seconds": round(time.monotonic() - started, 1)})


def _check_locations(issues: Issues, s: str, h: str, scope: list[str] | None) -> None:
    """Known, within the uploader's scope, and one per household."""
    in_scope = "TRUE" if scope is None else "{path} LIKE ANY (%(scope)s::text[])"
    issues(f"""
        SELECT %(report)s, s.row, 'location_code',
               CASE WHEN l.id IS NULL THEN 'LOCATION_NOT_FOUND' ELSE 'OUT_OF_SCOPE' END,
               CASE WHEN l.id IS NULL THEN format('No location has the code ''%%s''.', s.location_code)
                    ELSE format('The location ''%%s'' is outside your locations.', s.location_code) END,
               true, 'set'
        FROM {s} s LEFT JOIN location_location l ON l.code = s.location_code AND NOT l.is_deleted
        WHERE s.location_code IS NOT NULL AND (l.id IS NULL OR NOT ({in_scope.format(path="l.path")}))""")
    issues(f"""
        SELECT %(report)s, s.row, 'location_code', 'LOCATION_REQUIRED',
               CASE WHEN s.household_code IS NULL THEN 'The location code is empty.'
                    ELSE format('No member of household ''%%s'' has a location code; give its head one.',
                                s.household_code) END,
               true, 'set'
        FROM {s} s LEFT JOIN {h} h ON h.code = s.household_code
        WHERE s.location_code IS NULL AND (s.household_code IS NULL OR h.location_code IS NULL)""")
    issues(f"""
        SELECT %(report)s, s.row, 'location_code', 'LOCATION_MISMATCH',
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
            SELECT %(report)s, s.row, 'household_code', 'OUT_OF_SCOPE',
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
            SELECT %(report)s, s.row, '{field}', 'MULTIPLE_{count.upper()}',
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
            SELECT %(report)s, s.row, '{field}', '{value}_EXISTS',
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
            SELECT %(report)s, x.row, %(key)s, 'DUPLICATE_IN_FILE',
                   format('%%s ''%%s'' is also on row %%s.', %(key)s::text, x.value,
                          array_to_string((array_remove(g.rows, x.row))[1:5], ', ')),
                   true, 'set'
            FROM shared x JOIN grouped g ON g.value = x.value""", {"key": key})
        issues(f"""
            SELECT %(report)s, s.row, %(key)s, 'DUPLICATE_KEY',
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
        SELECT %(report)s, p.row, '', 'LIKELY_DUPLICATE',
               format('Looks like the person on row %%s: same first name, last name, date of birth '
                      'and location.', t.first_row),
               false, 'set'
        FROM person p JOIN twins t USING (first_name, last_name, dob, location_code)
        WHERE p.row <> t.first_row""")
    issues(f"""
        SELECT %(report)s, s.row, '', 'LIKELY_DUPLICATE',
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
        INSERT INTO core_importissue (report_id, row, field, code, message, raw_value, blocking, stage)
        SELECT %(report)s, row, 'household_code', 'HOUSEHOLD_REJECTED',
               format('Left out with the rest of household ''%%s'', because its row %%s is invalid.',
                      household_code, first_bad),
               household_code, true, 'set'
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
        FROM core_importissue WHERE report_id = %(report)s""", params)
    invalid, likely_duplicates, errors = cursor.fetchone()
    return {"valid": valid, "invalid": invalid, "errors": errors, "likely_duplicates": likely_duplicates,
            "households_new": new_households, "households_existing": existing_households,
            "written_before_check": written["individuals"] or 0}


def rows_outside_scope(run: ImportRun, user: Any) -> int:
    """Valid rows whose location ``user`` may not act on (an approver must cover them all)."""
    scope = scope_patterns(user)
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
