"""The job's staging tables and the import's phase: what a re-run continues from."""

from __future__ import annotations

import logging
from typing import Any

from django.db import connection

from core.imports import ImportMode, ImportReportWriter
from core.models import Job
from modules.individual.import_models import ImportRun

log = logging.getLogger("coremis.individual.import")


COPY_BLOCK = 2000  # lines per write to the COPY stream


OK = "s.issues IS NULL AND NOT s.rejected"


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


def set_phase(run: ImportRun, phase: str, **changes: Any) -> None:
    run.phase = phase
    for name, value in changes.items():
        setattr(run, name, value)
    ImportRun.objects.filter(pk=run.pk).update(phase=phase, **changes)


def staging_exists(staging: Staging) -> bool:
    with connection.cursor() as cursor:
        return staging.exists(cursor)


def drop_staging(staging: Staging) -> None:
    with connection.cursor() as cursor:
        staging.drop(cursor)


def report_writer(job: Job, mode: ImportMode | str) -> ImportReportWriter:
    """The job's import report (the core's, like every import's): opened when the import
    starts, reopened by every later run."""
    return ImportReportWriter.open(job, module="individual", mode=mode)
