"""The commit engine: the valid staged rows written batch by batch, several at once, each
batch one transaction with its marker; ``individual_after_created`` once per batch."""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Iterator
from functools import partial
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Sum

from core import events
from core.history import acting_as
from core.hooks import hook
from core.jobs import JobContext
from core.row_counts import counted_by_caller
from modules.individual.bulk_import.checks import check
from modules.individual.bulk_import.staging import OK, Staging
from modules.individual.import_models import ImportBatch, ImportRun

log = logging.getLogger("coremis.individual.import")


def commit_workers() -> int:
    """Connections that write batches side by side: PostgreSQL spends one core per writing
    connection (indexes, history triggers, foreign-key checks), and the job's own process is
    idle meanwhile."""
    return max(1, min(4, os.cpu_count() or 1))


def commit(ctx: JobContext, run: ImportRun, staging: Staging, retried: bool = False) -> None:
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
        check(ctx, run, staging)
        if run.phase != ImportRun.REFUSED:
            commit(ctx, run, staging, retried=True)
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
    user, job_id = ctx.user, ctx.job.pk
    workers = min(commit_workers(), len(pending))
    if workers <= 1 or connection.in_atomic_block:
        # Inside an outer transaction (tests) other connections would not see the staged rows.
        for batch in pending:
            yield _write_batch(user, job_id, staging, batch)
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
                results.put(_write_batch(user, job_id, staging, batch))
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


# What a batch's INSERT … SELECT returns instead of its rows: per location, the live rows it
# added (what core_row_count counts) and every row it wrote (the marker's figure).
_PER_LOCATION = """
    SELECT location_id, count(*) FILTER (WHERE NOT is_deleted), count(*) FROM written GROUP BY 1"""


def _write_batch(user: Any, job_id: Any, staging: Staging, batch: int) -> ImportBatch:
    """One batch in one transaction: its people, new households, heads of existing households
    and memberships, history by the triggers, and the per-location counters added last
    (``counted_by_caller``): side-by-side batches touch the same collines, and counter rows
    upserted by each statement's trigger would stay locked until the batch's commit, making
    the other batches wait for it."""
    s, h = staging.rows, staging.households
    params = {"batch": batch, "user": getattr(user, "pk", None)}
    with (acting_as(user, job=str(job_id)),
          counted_by_caller("individual_individual", "individual_group") as tally,
          connection.cursor() as cursor):
        cursor.execute(f"""
            WITH written AS (
            INSERT INTO individual_individual (id, date_created, date_updated, user_created_id,
                user_updated_id, version, is_deleted, json_ext, first_name, last_name, dob, sex, location_id)
            SELECT {staging.id_sql("s.row", Staging.INDIVIDUAL)}, now(), now(), %(user)s, %(user)s, 1, false,
                   s.json_ext, s.first_name,
                   s.last_name, s.dob, s.sex, CASE WHEN s.household_code IS NULL THEN l.id ELSE h.location_id END
            FROM {s} s
            LEFT JOIN {h} h ON h.code = s.household_code AND h.batch = %(batch)s
            LEFT JOIN location_location l ON l.code = s.location_code AND NOT l.is_deleted
            WHERE s.batch = %(batch)s AND {OK}
            RETURNING location_id, is_deleted){_PER_LOCATION}""", params)
        people = cursor.fetchall()
        tally.add("individual_individual", "location_id", ((key, live) for key, live, _ in people))
        cursor.execute(f"""
            WITH written AS (
            INSERT INTO individual_group (id, date_created, date_updated, user_created_id,
                user_updated_id, version, is_deleted, json_ext, code, location_id, head_id)
            SELECT h.id, now(), now(), %(user)s, %(user)s, 1, false, '{{}}'::jsonb, h.code,
                   h.location_id, h.head_id
            FROM {h} h WHERE h.batch = %(batch)s AND h.existing_id IS NULL AND NOT h.rejected
            RETURNING location_id, is_deleted){_PER_LOCATION}""", params)
        groups = cursor.fetchall()
        tally.add("individual_group", "location_id", ((key, live) for key, live, _ in groups))
        # Changes neither location_id nor is_deleted: no counter moves (its trigger is skipped).
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
        marker = ImportBatch.objects.create(job_id=job_id, batch=batch,
                                            individuals=sum(written for *_, written in people),
                                            households=sum(written for *_, written in groups),
                                            memberships=cursor.rowcount)
    return marker


def _announce_later(job_id: Any, staging: Staging, batch: int) -> None:
    """Fire ``individual_after_created`` for a committed batch once the current transaction
    commits (at once in a worker, where there is none). At least once: a crash between the
    call and the ``announced`` mark makes the re-run announce the batch again."""
    transaction.on_commit(partial(_announce, job_id, staging, batch))


def _announce(job_id: Any, staging: Staging, batch: int) -> None:
    """The people are registered whatever a listener does with the news; a listener that fails
    gets the batch again from a ``core.event_delivery`` job (``core.events.announce``), so the
    batch is marked announced only once every listener heard it or has a delivery queued. If
    even that fails (the database gone), the mark is not written and the re-run announces."""
    if hook().individual_after_created.get_hookimpls():
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {staging.id_sql('s.row', Staging.INDIVIDUAL)} FROM {staging.rows} s "
                           f"WHERE s.batch = %s AND {OK} ORDER BY s.row", [batch])
            ids = [str(row[0]) for row in cursor.fetchall()]
        events.announce("individual_after_created", individual_ids=ids, source=f"import:{job_id}")
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
