"""The ledger and the matching: statements are staged with ``COPY``, stored once by one
``INSERT … SELECT … ON CONFLICT DO NOTHING``, and matched against the payments by a handful of
set-based statements over what that insert added. Running it again over the same statements
adds nothing and detects nothing (idempotent); a crash leaves either nothing or everything of
one chunk (resumable: the next run stores the rest).

Mismatch classes and how each is seen:
- one line shows it (key: the report): ``UNKNOWN_REFERENCE`` (a paid line for no payment of
  ours), ``AMOUNT_DIFFERS``, ``CURRENCY_DIFFERS``, ``WRONG_RECIPIENT`` (the account or phone
  differs from the recipient's);
- several lines, or the payment, show it (key: the payment): ``PAID_TWICE`` (two provider
  transactions paid it), ``PAID_AFTER_FAILED`` / ``FAILED_AFTER_PAID`` (the provider's final
  word changed), ``NOT_REPORTED`` (no word by the point's deadline; see :func:`flag_unreported`).
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Iterable, Iterator
from queue import Full, Queue
from typing import Any

from django.db import connection, transaction

from core.loader import module_config
from modules.reconciliation.models import Source
from modules.reconciliation.reading import Row

LEDGER = "reconciliation_providerreport"
MISMATCH = "reconciliation_mismatch"
EVENT = "reconciliation_mismatchevent"
PAYMENT = "payroll_benefitconsumption"
STAGED = ("seq", "line", "reference", "provider_transaction_id", "amount", "currency", "status", "value_date", "account",
          "message", "raw")
# A line's checksum: the statement as the provider meant it, whichever file or line number it
# came in (source, point, reference, transaction id, status, amount without trailing zeros,
# currency, ISO date, account, joined by "|"), as the first 128 bits of its SHA-256 spelled as a
# uuid. Computed by PostgreSQL over the staged lines rather than per row in Python: at 315,000
# lines the per-row hashing was a third of the Python time of reading a CSV (1.1 of 3.4 s of
# CPU). The two parameters are the source and the point's id (text, empty without one).
CHECKSUM = ("encode(substr(sha256(convert_to(concat_ws('|', %s::text, %s::text, coalesce(s.reference, ''), "
            "coalesce(s.provider_transaction_id, ''), coalesce(s.status, ''), coalesce(trim_scale(s.amount)::text, ''), "
            "coalesce(s.currency, ''), coalesce(to_char(s.value_date, 'YYYY-MM-DD'), ''), coalesce(s.account, '')), "
            "'UTF8')), 1, 16), 'hex')::uuid")
# The columns of the lines a run added that matching reads (``recon_new``).
NEW = (("id", "bigint"), ("reference", "text"), ("payment_point_id", "uuid"), ("amount", "numeric"),
       ("currency", "text"), ("account", "text"), ("payment_id", "uuid"), ("status", "text"),
       ("provider_transaction_id", "text"), ("message", "text"))
# Sources whose outcomes payroll has already applied itself (its callback route and polls).
APPLIED_BY_PAYROLL = (Source.CALLBACK, Source.POLL)
# For the ingestion's transaction: a national file joins, sorts and hashes 315,000 staged lines
# against the payments, and payroll's outcome UPDATE and the history trigger it fires hold as
# many rows in their transition tables; with the server's default (4 MB) each of those spills
# to temporary files (hundreds of MB written and read back at national scale).
MATCH_WORK_MEM = "256MB"


def store(rows: Iterable[Row], *, source: str, point_id: Any, file_id: Any, user: Any,
          received_at: datetime.datetime | None = None, payroll_id: Any = None,
          scope: list[str] | None = None, chunk: int | None = None) -> dict[str, Any]:
    """Stage ``rows``, store the new ones in the ledger and match them; returns counts and the
    ``issues`` of rows refused or worth a word: ``(line, code, message)``.

    ``rows`` is consumed once, streamed into the staging table. With ``chunk`` it is read by a
    thread of its own (so it must not touch the database) in lists of ``chunk`` rows, and each
    list is staged and stored while the next one is read: a slow reader (Python) and
    PostgreSQL then work at the same time. The chunks are stored in file order in one
    transaction, so the ledger ends as one statement over the whole file would leave it. With
    ``payroll_id``, a row for a payment of another payroll is refused; with ``scope`` (location
    path prefixes), a row for a payment outside it is."""
    uid = getattr(user, "pk", None)
    clock = _Clock()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '{MATCH_WORK_MEM}'")
        cursor.execute("CREATE TEMP TABLE recon_stage (seq int, line int, reference text, provider_transaction_id text, "
                       "amount numeric, currency text, status text, value_date date, account text, message text, "
                       "raw text) ON COMMIT DROP")
        # The lines this run added, with what matching reads of them: the statements below read
        # this table alone instead of joining it back to the whole ledger (which they scanned).
        cursor.execute(f"CREATE TEMP TABLE recon_new ({', '.join(f'{name} {kind}' for name, kind in NEW)}) "
                       "ON COMMIT DROP")
        window = _rule_window(point_id)
        staged = stored = 0
        issues: list[tuple[int, str, str]] = []
        unknown: list[tuple[int, str]] = []
        for part in read_ahead(rows, chunk) if chunk else [rows]:
            if staged:
                cursor.execute("TRUNCATE recon_stage")
            with cursor.copy(f"COPY recon_stage ({', '.join(STAGED)}) FROM STDIN") as copy:
                for row in part:
                    copy.write_row((staged, row.line, row.reference, row.provider_transaction_id, row.amount,
                                    row.currency, row.status, row.value_date, row.account, row.message, row.raw))
                    staged += 1
            clock.lap("read_and_stage")
            added, refused, missing = _store_staged(cursor, source=source, point_id=point_id, file_id=file_id,
                                                    received_at=received_at, payroll_id=payroll_id, scope=scope,
                                                    window=window)
            stored += added
            issues += refused
            unknown += missing
            clock.lap("store")
        refused_count = len(issues)
        unknown.sort()
        issues += [(line, "UNKNOWN_REFERENCE", f"Line {line}: no payment has the reference {ref} (a paid line "
                    "opens an UNKNOWN_REFERENCE mismatch).") for line, ref in unknown[:1000]]
        cursor.execute("ANALYZE recon_new")
        clock.lap("store")
        detected = _match(cursor, uid, apply=source not in APPLIED_BY_PAYROLL, user=user, clock=clock)
        cursor.execute("DROP TABLE recon_stage; DROP TABLE recon_new")
    return {"staged": staged, "stored": stored, "mismatches": detected, "refused": refused_count + len(unknown),
            "unknown_references": len(unknown), "issues": sorted(issues), "seconds": clock.laps}


# Rows staged and stored per step of a statement (``store(chunk=…)``). The first chunk is
# stored before anything overlaps it and the last one after the reading is done, so smaller is
# better until each step's fixed costs show: every chunk's join reads the payments again (a
# hash of all 315,000 at national scale, 0.2 s), which is why a result file, read faster than
# it is stored, is not chunked (its store took 11.0 s whole and 16.2 s in chunks).
STAGE_CHUNK = 25_000


def read_ahead(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    """``rows`` in lists of ``size``, read by a thread while the caller works on the previous
    list: a reader is Python on one core, and while the caller waits for PostgreSQL (which
    releases the GIL) the next list is being read. At most two lists are held at once besides
    the caller's. An error of the reader is raised here, in the caller's thread."""
    queue: Queue[Any] = Queue(maxsize=1)
    stop = threading.Event()
    done = object()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                queue.put(item, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def read() -> None:
        try:
            chunk: list[Row] = []
            for row in rows:
                chunk.append(row)
                if len(chunk) >= size:
                    if not put(chunk):
                        return
                    chunk = []
            if chunk and not put(chunk):
                return
            put(done)
        except BaseException as exc:  # handed to the caller, who raises it
            put(exc)

    reader = threading.Thread(target=read, name="reconciliation-reader", daemon=True)
    reader.start()
    try:
        while True:
            item = queue.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()  # (the caller stopped early or failed: the reader stops at its next list)
        reader.join()


def _store_staged(cursor: Any, *, source: str, point_id: Any, file_id: Any, received_at: Any, payroll_id: Any,
                  scope: list[str] | None, window: int | None) -> tuple[int, list[tuple[int, str, str]],
                                                                    list[tuple[int, str]]]:
    """The staged chunk into the ledger: how many lines were new, the lines refused, and the
    (line, reference) of those no payment has."""
    # (autovacuum never sees a temporary table: without this the joins below are planned
    # for a guess of its size)
    cursor.execute("ANALYZE recon_stage")
    if window is not None:
        match_by_rule(cursor, point_id, window)
    issues = _refuse(cursor, payroll_id, scope)
    # One join of the staged lines with the payments serves both the insert (which payment
    # each line names) and the report of the references nobody ordered; the first row
    # answered carries how many lines were stored.
    cursor.execute(f"""
        WITH matched AS MATERIALIZED (
            SELECT s.seq, s.line, s.reference, s.provider_transaction_id, s.amount, s.currency, s.status,
                   s.value_date, s.account, s.message, s.raw, {CHECKSUM} AS checksum, b.id AS payment_id,
                   b.payroll_id
            FROM recon_stage s LEFT JOIN {PAYMENT} b ON b.code = s.reference AND NOT b.is_deleted),
        added AS (
            INSERT INTO {LEDGER} (source, payment_point_id, file_id, line, received_at, reference,
                                  provider_transaction_id, amount, currency, status, value_date, account,
                                  message, raw, checksum, payment_id, payroll_id)
            SELECT %s, %s, %s, m.line, coalesce(%s, now()), m.reference, m.provider_transaction_id, m.amount,
                   m.currency, m.status, m.value_date, m.account, m.message, m.raw, m.checksum, m.payment_id,
                   m.payroll_id
            FROM matched m
            ORDER BY m.seq
            ON CONFLICT DO NOTHING
            RETURNING {', '.join(name for name, _ in NEW)}),
        kept AS (INSERT INTO recon_new SELECT * FROM added RETURNING id)
        SELECT NULL::int, NULL::text, (SELECT count(*) FROM kept)
        UNION ALL
        SELECT line, reference, NULL FROM matched WHERE payment_id IS NULL""",
                   [source, str(point_id or ""), source, point_id, file_id, received_at])
    answered = cursor.fetchall()
    stored = int(next(count for line, _, count in answered if line is None))
    return stored, issues, [(line, ref) for line, ref, _ in answered if line is not None]


class _Clock:
    """Where an ingestion spent its time (in the job's result, for operators and the bench)."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(self.laps.get(name, 0.0) + now - self.last, 3)
        self.last = now


NORM = "regexp_replace(upper(coalesce({0}, '')), '[^0-9A-Z]', '', 'g')"


def _rule_window(point_id: Any) -> int | None:
    """The days before a line's date in which :func:`match_by_rule` looks for its payment, or
    ``None`` when the point matches no line by rule (or there is no point)."""
    from modules.payroll.models import PaymentPoint

    if point_id is None:
        return None
    code = PaymentPoint.all_objects.filter(pk=point_id).values_list("code", flat=True).first()
    conf = (module_config("reconciliation").get("points") or {}).get(code or "", {})
    return int(conf.get("date_window_days", 7)) if conf.get("rule_match", True) else None


def match_by_rule(cursor: Any, point_id: Any, window: int) -> int:
    """Staged lines without a reference get the one payment of the point with the same amount,
    paid to the same account (or phone), sent within ``window`` days before the line's date;
    with none or several candidates the line stays without (and a paid one is
    UNKNOWN_REFERENCE)."""
    paid_to = NORM.format("s.account")
    same = " OR ".join(f"({k} <> '' AND {k} = {paid_to})" for k in
                       (NORM.format("i.json_ext->>'phone'"), NORM.format("i.json_ext->>'account'")))
    cursor.execute(f"""
        UPDATE recon_stage s SET reference = m.code FROM (
            SELECT s.seq, min(b.code) AS code
            FROM recon_stage s JOIN {PAYMENT} b ON b.payment_point_id = %s AND NOT b.is_deleted
            JOIN payroll_payroll p ON p.id = b.payroll_id JOIN payroll_paymentplan pp ON pp.id = p.payment_plan_id
            JOIN individual_individual i ON i.id = b.individual_id
            WHERE s.reference = '' AND s.amount IS NOT NULL AND {paid_to} <> ''
              AND round(s.amount * power(10::numeric, pp.minor_unit)) = b.amount AND ({same})
              AND b.dispatched_at IS NOT NULL
              AND (s.value_date IS NULL OR b.dispatched_at::date BETWEEN s.value_date - %s AND s.value_date)
            GROUP BY s.seq HAVING count(*) = 1) m
        WHERE s.seq = m.seq AND s.reference = ''""", [point_id, window])
    return cursor.rowcount


def _refuse(cursor: Any, payroll_id: Any, scope: list[str] | None) -> list[tuple[int, str, str]]:
    from core.errors import CoreErrorCode
    from modules.reconciliation.errors import ReconciliationErrorCode as E

    issues: list[tuple[int, str, str]] = []
    if payroll_id is not None:
        cursor.execute(f"DELETE FROM recon_stage s USING {PAYMENT} b WHERE b.code = s.reference AND NOT b.is_deleted "
                       "AND b.payroll_id <> %s RETURNING s.line, s.reference", [str(payroll_id)])
        issues += [(line, E.OTHER_PAYROLL, f"Line {line}: {ref} is a payment of another payroll; upload it for that "
                    "payroll.") for line, ref in cursor.fetchall()]
    if scope is not None:
        cursor.execute(f"DELETE FROM recon_stage s USING {PAYMENT} b, individual_individual i, location_location l "
                       "WHERE b.code = s.reference AND NOT b.is_deleted AND i.id = b.individual_id "
                       "AND l.id = i.location_id AND NOT (l.path LIKE ANY(%s)) RETURNING s.line",
                       [[p + "%" for p in scope]])
        issues += [(line, CoreErrorCode.OUT_OF_SCOPE, f"Line {line}: the payment is outside your locations.")
                   for (line,) in cursor.fetchall()]
    return issues


def _insert_mismatches(cursor: Any, uid: Any, select: str, params: list[Any] | None = None) -> int:
    """``select`` yields (klass, key, payment_id, payroll_id, point_id, report_id, reference,
    detail); new cases are stored with their DETECTED event, known ones are left as they are."""
    cursor.execute(f"""
        WITH found(klass, key, payment_id, payroll_id, payment_point_id, report_id, reference, detail) AS ({select}),
        added AS (
            INSERT INTO {MISMATCH} (id, date_created, date_updated, user_created_id, user_updated_id, version,
                                    is_deleted, klass, key, payment_id, payroll_id, payment_point_id, report_id,
                                    reference, detail, status, resolution, comment)
            SELECT gen_random_uuid(), now(), now(), %s, %s, 1, false, klass, key, payment_id, payroll_id,
                   payment_point_id, report_id, left(reference, 100), left(detail, 255), 'OPEN', '', ''
            FROM found ON CONFLICT DO NOTHING RETURNING id)
        INSERT INTO {EVENT} (mismatch_id, at, actor_id, action, comment, resolution)
        SELECT id, now(), %s, 'DETECTED', '', '' FROM added""", [*(params or []), uid, uid, uid])
    return cursor.rowcount


def _match(cursor: Any, uid: Any, *, apply: bool, user: Any, clock: _Clock) -> int:
    detected = 0
    new = "FROM recon_new r "
    # What one paid line shows, in one pass over the new lines (each class a branch of one
    # UNION ALL over them, read once). An account or phone the provider paid to is compared
    # with the recipient's (letters and digits only; a country code in front of one of them is
    # tolerated). An account written exactly as the recipient's phone or account is the same
    # one whatever its spelling, so only the other lines are normalised (a regular expression
    # per value: three per line over a national file, 0.9 of the pass's 3.3 s, when nearly
    # every provider writes the number as it was sent). Each value is normalised once, in a
    # materialised pass: PostgreSQL does not share a repeated expression.
    norm = "regexp_replace(upper(coalesce({0}, '')), '[^0-9A-Z]', '', 'g')"
    same = " OR ".join(f"({k} <> '' AND ({k} = paid_to OR (length({k}) >= 8 AND length(paid_to) >= 8 AND "
                       f"(right({k}, length(paid_to)) = paid_to OR right(paid_to, length({k})) = {k}))))"
                       for k in ("phone", "account_of"))
    detected += _insert_mismatches(cursor, uid, f"""
        WITH line AS MATERIALIZED (
            SELECT r.id, r.reference, r.payment_point_id, r.amount, r.currency, r.account, r.payment_id AS named,
                   b.id AS payment_id,
                   b.payroll_id, b.amount AS ordered, b.currency AS ordered_currency,
                   round(r.amount * power(10::numeric, pp.minor_unit)) AS reported,
                   i.id AS recipient, i.json_ext->>'phone' AS phone_given, i.json_ext->>'account' AS account_given
            {new} LEFT JOIN {PAYMENT} b ON b.id = r.payment_id
            LEFT JOIN payroll_payroll p ON p.id = b.payroll_id LEFT JOIN payroll_paymentplan pp ON pp.id = p.payment_plan_id
            LEFT JOIN individual_individual i ON i.id = b.individual_id AND r.account <> ''
            WHERE r.status = 'PAID'),
        spelled_otherwise AS MATERIALIZED (
            SELECT id, payment_id, payroll_id, payment_point_id, reference, account,
                   {norm.format("account")} AS paid_to, {norm.format("phone_given")} AS phone,
                   {norm.format("account_given")} AS account_of
            FROM line WHERE payment_id IS NOT NULL AND recipient IS NOT NULL
              AND account IS DISTINCT FROM phone_given AND account IS DISTINCT FROM account_given)
        SELECT 'UNKNOWN_REFERENCE', id::text, NULL::uuid, NULL::uuid, payment_point_id, id, reference,
               'no payment has the reference ' || reference
        FROM line WHERE named IS NULL
        UNION ALL
        SELECT 'AMOUNT_DIFFERS', id::text, payment_id, payroll_id, payment_point_id, id, reference,
               format('ordered %%s, reported %%s (minor units)', ordered, reported)
        FROM line WHERE payment_id IS NOT NULL AND amount IS NOT NULL AND reported <> ordered
        UNION ALL
        SELECT 'CURRENCY_DIFFERS', id::text, payment_id, payroll_id, payment_point_id, id, reference,
               format('ordered in %%s, reported in %%s', ordered_currency, currency)
        FROM line WHERE payment_id IS NOT NULL AND currency <> '' AND currency <> ordered_currency
        UNION ALL
        SELECT 'WRONG_RECIPIENT', id::text, payment_id, payroll_id, payment_point_id, id, reference,
               'paid to ' || account
        FROM spelled_otherwise WHERE paid_to <> '' AND NOT ({same})""")
    # Per payment, over everything the ledger holds about the payments this run touched.
    cursor.execute("CREATE TEMP TABLE recon_touched ON COMMIT DROP AS "
                   f"SELECT DISTINCT r.payment_id AS id {new} WHERE r.payment_id IS NOT NULL")
    cursor.execute("ANALYZE recon_touched")
    # What the ledger says of each touched payment, in one aggregate over its lines: which
    # transaction ids paid it, and whether anyone ever said FAILED. Only the payments it flags
    # are read again (two transaction ids; a failed word, or a payment payroll holds FAILED).
    cursor.execute(f"""
        CREATE TEMP TABLE recon_said ON COMMIT DROP AS
        SELECT r.payment_id AS id,
               min(r.provider_transaction_id) FILTER (WHERE r.status = 'PAID' AND r.provider_transaction_id <> '')
                   AS first_txn,
               max(r.provider_transaction_id) FILTER (WHERE r.status = 'PAID' AND r.provider_transaction_id <> '')
                   AS last_txn,
               bool_or(r.status = 'FAILED') AS failed_said
        FROM recon_touched t JOIN {LEDGER} r ON r.payment_id = t.id GROUP BY r.payment_id""")
    detected += _insert_mismatches(cursor, uid, f"""
        SELECT 'PAID_TWICE', b.id::text, b.id, b.payroll_id, b.payment_point_id, max(r.id), b.code,
               'paid by ' || string_agg(DISTINCT r.provider_transaction_id, ', ')
        FROM recon_said s JOIN {PAYMENT} b ON b.id = s.id JOIN {LEDGER} r ON r.payment_id = b.id
        WHERE s.first_txn <> s.last_txn AND r.status = 'PAID' AND r.provider_transaction_id <> ''
        GROUP BY b.id""")
    # The provider's final word, in the order it was given (its value date, then arrival), for
    # the payments where one word can contradict another or payroll's status.
    cursor.execute(f"""
        CREATE TEMP TABLE recon_words ON COMMIT DROP AS
        SELECT r.payment_id, r.id, r.status,
               first_value(r.status) OVER w AS first_status
        FROM recon_said s JOIN {PAYMENT} b ON b.id = s.id JOIN {LEDGER} r ON r.payment_id = s.id
        WHERE (s.failed_said OR b.status = 'FAILED') AND r.status IN ('PAID', 'FAILED')
        WINDOW w AS (PARTITION BY r.payment_id ORDER BY coalesce(r.value_date, r.received_at::date), r.received_at,
                                                      r.id)""")
    detected += _insert_mismatches(cursor, uid, f"""
        SELECT 'PAID_AFTER_FAILED', b.id::text, b.id, b.payroll_id, b.payment_point_id, max(w.id), b.code,
               'reported paid after it was reported failed'
        FROM {PAYMENT} b JOIN recon_words w ON w.payment_id = b.id
        WHERE w.status = 'PAID' AND (w.first_status = 'FAILED' OR b.status = 'FAILED')
        GROUP BY b.id""")
    detected += _insert_mismatches(cursor, uid, f"""
        SELECT 'FAILED_AFTER_PAID', b.id::text, b.id, b.payroll_id, b.payment_point_id, max(w.id), b.code,
               'reported failed after it was reported paid'
        FROM {PAYMENT} b JOIN recon_words w ON w.payment_id = b.id
        WHERE w.status = 'FAILED' AND (w.first_status = 'PAID' OR b.status IN ('PAID', 'RECONCILED'))
        GROUP BY b.id""")
    # A word arrived: the silence is over.
    cursor.execute(f"""
        WITH closed AS (
            UPDATE {MISMATCH} m SET status = 'RESOLVED', resolution = 'PROVIDER_CORRECTED', version = version + 1,
                   date_updated = now(), user_updated_id = %s
            FROM recon_touched t WHERE m.payment_id = t.id AND m.klass = 'NOT_REPORTED' AND m.status = 'OPEN'
            RETURNING m.id)
        INSERT INTO {EVENT} (mismatch_id, at, actor_id, action, comment, resolution)
        SELECT id, now(), %s, 'RESOLVED', 'the provider reported the payment', 'PROVIDER_CORRECTED' FROM closed""",
                   [uid, uid])
    clock.lap("detect")
    if apply:
        _apply_outcomes(cursor, user)
        clock.lap("apply")
    cursor.execute("DROP TABLE recon_words; DROP TABLE recon_said; DROP TABLE recon_touched")
    return detected


def _apply_outcomes(cursor: Any, user: Any) -> None:
    """What the new lines say, for payments without an open mismatch, goes to payroll as
    outcomes (forward only: a final payment does not move again); the provider's transaction id
    becomes the payment's receipt. A payment's final word (PAID, FAILED) comes before an
    acknowledgement of the same run.

    Only lines of payments that can still move are picked and sorted: a second source, or a
    re-delivered word, about payments already final (the camt.053 after the result file: 315,000
    lines) would otherwise be sorted in full for an UPDATE that changes nothing. payroll checks
    the forward rules again on the rows it updates."""
    from modules.payroll.sending import FORWARD, record_outcomes_from

    movable = sorted({str(status) for sources in FORWARD.values() for status in sources})
    record_outcomes_from(f"""
        SELECT DISTINCT ON (r.reference) r.reference, CASE r.status WHEN 'ACCEPTED' THEN 'SENT' ELSE r.status END,
               r.provider_transaction_id, r.message
        FROM recon_new r
        JOIN {PAYMENT} b ON b.id = r.payment_id AND b.status = ANY(%s)
        WHERE NOT EXISTS (SELECT 1 FROM {MISMATCH} m WHERE m.payment_id = r.payment_id AND m.status = 'OPEN')
        ORDER BY r.reference, r.status = 'ACCEPTED', r.id DESC""", [movable], user)


def flag_unreported(user: Any, now: datetime.datetime | None = None) -> int:
    """``NOT_REPORTED`` for every payment sent longer ago than its point's deadline that no
    provider statement names yet and that is not final."""
    conf = module_config("reconciliation")
    default = int(conf.get("default_deadline_days", 14))
    deadlines = {code: int(point.get("deadline_days", default)) for code, point in (conf.get("points") or {}).items()}
    uid = getattr(user, "pk", None)
    cases = ", ".join(["(%s, %s)"] * len(deadlines)) or "(NULL, NULL)"
    params: list[Any] = [v for item in deadlines.items() for v in item]
    with transaction.atomic(), connection.cursor() as cursor:
        return _insert_mismatches(cursor, uid, f"""
            SELECT 'NOT_REPORTED', b.id::text, b.id, b.payroll_id, b.payment_point_id, NULL::bigint, b.code,
                   format('no word from the provider %%s days after sending', coalesce(d.days::int, %s))
            FROM {PAYMENT} b JOIN payroll_paymentpoint pt ON pt.id = b.payment_point_id
            LEFT JOIN (VALUES {cases}) d(code, days) ON d.code = pt.code
            WHERE b.status IN ('CREATED', 'SENT') AND NOT b.is_deleted AND b.dispatched_at IS NOT NULL
              AND b.dispatched_at < coalesce(%s, now()) - make_interval(days => coalesce(d.days::int, %s))
              AND NOT EXISTS (SELECT 1 FROM {LEDGER} r WHERE r.payment_id = b.id)""",
                                   [default, *params, now, default])
