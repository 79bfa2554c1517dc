"""Sending a payroll to its providers, and recording what they answer — never paying twice.

The rules that make a payment happen at most once:

1. An instruction's reference (``code``) is fixed at generation; every resend reuses it, so a
   provider that deduplicates by reference never pays it twice.
2. Before a batch goes out, its instructions get ``dispatched_at`` in a committed
   transaction. If the process dies after that, or the provider's answer is lost, they are
   *unknown*: only a status query may release them (``NOT_FOUND``) for another send.
3. Outcomes only move forward (unsent, stored CREATED and read as APPROVED, → SENT → PAID | FAILED); a duplicate or late
   callback for an instruction already final changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from core.errors import ServiceError
from core.history import acting_as
from core.loader import module_config
from core.models import User
from modules.payroll import adaptors
from modules.payroll.adaptors.base import (
    ACCEPTED,
    FAILED,
    NOT_FOUND,
    PAID,
    Instruction,
    Outcome,
    ProviderUnavailable,
)
from modules.payroll.models import (
    UNSENT,
    BenefitConsumption,
    InstructionStatus,
    PaymentPoint,
    Payroll,
    PayrollStatus,
)

log = logging.getLogger("coremis.payroll")

# Which statuses an outcome may move an instruction from.
# Unsent instructions are stored CREATED (approval is the payroll's status, see models.UNSENT);
# an outcome moves one only once it was dispatched, which only a sending (approved) payroll does.
FORWARD: dict[str, tuple[str, ...]] = {
    ACCEPTED: (UNSENT,),
    PAID: (UNSENT, InstructionStatus.SENT),
    FAILED: (UNSENT, InstructionStatus.SENT),
}


def record_outcomes(outcomes: Iterable[Outcome], user: User) -> int:
    """Apply provider outcomes by reference; returns how many instructions changed.

    One ``UPDATE … FROM (VALUES …)`` per outcome kind. Payrolls touched are re-evaluated.
    """
    by_status: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        if outcome.status in FORWARD:
            by_status.setdefault(outcome.status, []).append(outcome)
        elif outcome.status == NOT_FOUND:
            by_status.setdefault(NOT_FOUND, []).append(outcome)
    changed = 0
    table = BenefitConsumption._meta.db_table
    uid = user.pk
    payroll_ids: set[str] = set()
    with transaction.atomic(), connection.cursor() as cursor:
        for status, group in by_status.items():
            values = ", ".join(["(%s, %s, %s)"] * len(group))
            params: list[Any] = []
            for o in group:
                params += [o.reference, o.provider_transaction_id[:100], o.message[:255]]
            if status == NOT_FOUND:
                # The provider never got it: the instruction may go out again (same reference).
                sql = (f"UPDATE {table} b SET dispatched_at = NULL, version = version + 1, date_updated = now() "
                       f"FROM (VALUES {values}) v(code, txn, msg) "
                       f"WHERE b.code = v.code AND b.status = '{UNSENT}' AND b.dispatched_at IS NOT NULL "
                       "RETURNING b.payroll_id")
                cursor.execute(sql, params)
            else:
                sources = ", ".join(f"'{s}'" for s in FORWARD[status])
                paid = "now()" if status == PAID else "b.date_paid"
                sql = (f"UPDATE {table} b SET status = %s, version = version + 1, date_updated = now(), "
                       "user_updated_id = %s, "
                       "provider_transaction_id = CASE WHEN v.txn <> '' THEN v.txn ELSE b.provider_transaction_id END, "
                       f"status_message = v.msg, date_paid = {paid} "
                       f"FROM (VALUES {values}) v(code, txn, msg) "
                       f"WHERE b.code = v.code AND b.status IN ({sources}) "
                       f"AND (b.status <> '{UNSENT}' OR b.dispatched_at IS NOT NULL) RETURNING b.payroll_id")
                cursor.execute(sql, [status, uid, *params])
            rows = cursor.fetchall()
            changed += len(rows) if status != NOT_FOUND else 0
            payroll_ids.update(str(r[0]) for r in rows)
        for payroll_id in payroll_ids:
            settle(payroll_id, user)
    return changed


def record_outcomes_from(select: str, params: list[Any], user: User) -> int:
    """:func:`record_outcomes` for outcomes another module holds in a table: ``select`` yields
    ``(code, status, provider_transaction_id, message)`` rows, with ``status`` one of SENT,
    PAID, FAILED, at most one row per code (the caller picks which word counts). The same forward
    rules, in one ``UPDATE … FROM (select)`` instead of one per batch of values; payrolls
    touched are re-evaluated. Returns how many payments changed."""
    table = BenefitConsumption._meta.db_table
    rules = " OR ".join(f"(v.status = '{status}' AND b.status IN ({', '.join(repr(str(s)) for s in sources)}))"
                        for status, sources in FORWARD.items())
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} b SET status = v.status, version = b.version + 1, date_updated = now(), "
            "user_updated_id = %s, "
            "provider_transaction_id = CASE WHEN v.txn <> '' THEN left(v.txn, 100) ELSE b.provider_transaction_id END, "
            "status_message = left(v.msg, 255), "
            f"date_paid = CASE WHEN v.status = '{PAID}' THEN now() ELSE b.date_paid END "
            f"FROM ({select}) v(code, status, txn, msg) "
            f"WHERE b.code = v.code AND ({rules}) RETURNING b.payroll_id",
            [user.pk, *params])
        rows = cursor.fetchall()
        for payroll_id in {str(r[0]) for r in rows}:
            settle(payroll_id, user)
    return len(rows)


def settle(payroll_id: Any, user: User) -> None:
    """Move a sent payroll to PAID (every payment paid) or PARTIALLY_PAID (all final, some
    failed) once nothing is pending.

    An APPROVED payroll whose payments get a provider's word was paid outside coremis's sending
    (openIMIS's offline payment: the officer takes the payment list, the provider pays, the
    filled reconciliation file comes back; or a pull-API provider fetched it): it is SENT from
    then on, and settles as any sent payroll."""
    payroll = Payroll.objects.select_for_update().get(pk=payroll_id)
    rows = BenefitConsumption.objects.filter(payroll=payroll)
    if payroll.status == PayrollStatus.APPROVED and rows.exclude(status=UNSENT).exists():
        Payroll.objects.filter(pk=payroll.pk).update(status=PayrollStatus.SENT, version=F("version") + 1,
                                                     date_updated=timezone.now(), user_updated_id=user.pk)
        payroll.status = PayrollStatus.SENT
    if payroll.status not in (PayrollStatus.SENT, PayrollStatus.PARTIALLY_PAID):
        return
    if rows.filter(status__in=(UNSENT, InstructionStatus.SENT)).exists():
        return
    target = PayrollStatus.PARTIALLY_PAID if rows.filter(status=InstructionStatus.FAILED).exists() else PayrollStatus.PAID
    if target != payroll.status:
        Payroll.objects.filter(pk=payroll.pk).update(status=target, version=F("version") + 1,
                                                     date_updated=timezone.now(), user_updated_id=user.pk)


def _instructions(rows: list[BenefitConsumption], minor_unit: int) -> list[Instruction]:
    result = []
    for row in rows:
        person = row.individual
        ext = person.json_ext or {}
        result.append(Instruction(
            reference=row.code, amount=row.amount, currency=row.currency, minor_unit=minor_unit,
            recipient_id=str(person.pk), first_name=person.first_name, last_name=person.last_name,
            phone=str(ext.get("phone", "")), account=str(ext.get("account", ext.get("phone", ""))),
        ))
    return result


def resolve_unknown(payroll: Payroll, user: User) -> int:
    """Ask providers about instructions dispatched without a recorded answer; returns how many
    are still unknown afterwards."""
    pending = BenefitConsumption.objects.filter(payroll=payroll, status=UNSENT,
                                                dispatched_at__isnull=False)
    for point_id in set(pending.values_list("payment_point_id", flat=True)):
        point = PaymentPoint.all_objects.get(pk=point_id)
        references = list(pending.filter(payment_point_id=point_id).values_list("code", flat=True))
        for start in range(0, len(references), _batch_size(point)):
            chunk = references[start:start + _batch_size(point)]
            try:
                outcomes = adaptors.query_status(point, chunk)
            except (ProviderUnavailable, ServiceError) as exc:
                log.warning("status query failed", extra={"point": point.code, "error": str(exc)})
                continue
            with acting_as(user, status_query=point.code):
                record_outcomes(outcomes, user)
    return pending.count()


def _batch_size(point: PaymentPoint) -> int:
    return int((point.config or {}).get("batch_size") or module_config("payroll")["send_batch_size"])


ANOTHER_RUN = "another run is sending this payroll"


def send_payroll(payroll_id: Any, user: User, progress: Callable[..., None] | None = None) -> dict[str, Any]:
    """Send every approved, not yet dispatched instruction of a SENDING payroll, batch by batch.

    Restartable: run again after a crash, it first resolves unknown outcomes, then continues.
    """
    payroll = Payroll.objects.select_related("payment_plan").get(pk=payroll_id)
    if payroll.status != PayrollStatus.SENDING:
        return {"skipped": f"payroll is {payroll.status}"}
    with _sole_sender(payroll) as alone:
        if not alone:
            return {"skipped": ANOTHER_RUN}
        return _send(payroll, user, progress)


@contextmanager
def _sole_sender(payroll: Payroll) -> Iterator[bool]:
    """One sending run per payroll at a time (a session advisory lock, so across workers):
    a second run's status query could otherwise see the first run's batch in flight as
    "never received" and send it again."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [f"payroll.send:{payroll.pk}"])
        acquired = bool(cursor.fetchone()[0])
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [f"payroll.send:{payroll.pk}"])


# A provider that fails this many batches in a row is left alone for the rest of the run:
# its batches stay unknown until a status query settles them, and ``makePaymentForPayroll``
# resumes later, instead of dispatching (and timing out on) every remaining batch.
MAX_UNAVAILABLE_BATCHES = 3


def _send(payroll: Payroll, user: User, progress: Callable[..., None] | None) -> dict[str, Any]:
    minor_unit = payroll.payment_plan.minor_unit
    resolve_unknown(payroll, user)
    total = payroll.control_count
    sent = 0
    error = ""
    stop_run = False
    for point_id in _points_to_send(payroll):
        if stop_run:
            break
        unavailable = 0
        while True:
            with transaction.atomic(), acting_as(user, payroll=str(payroll.pk)):
                batch = _claim_batch(payroll, point_id)
            if not batch:
                break
            point = batch[0].payment_point
            try:
                outcomes = adaptors.send_batch(point, _instructions(batch, minor_unit))
            except ProviderUnavailable as exc:
                # The provider may or may not have the batch: its instructions stay dispatched
                # (unknown) and are resolved by a status query, never by a blind resend.
                log.warning("batch outcome unknown", extra={"point": point.code, "error": str(exc)})
                unavailable += 1
                if unavailable >= MAX_UNAVAILABLE_BATCHES:
                    error = f"Payment point {point.code} did not answer {unavailable} batches in a row: {exc}"
                    break
                continue
            except ServiceError as exc:
                # Credentials refused, misconfiguration: every further batch would fail the same
                # way. The batch stays unknown until a later run's status query settles it.
                log.warning("sending stopped", extra={"point": point.code, "error": exc.message})
                error = exc.message
                stop_run = True
                break
            unavailable = 0
            with acting_as(user, payroll=str(payroll.pk)):
                record_outcomes(outcomes, user)
            sent += len(batch)
            if progress is not None:
                progress(sent, total, "sending")
    unknown = resolve_unknown(payroll, user)
    with transaction.atomic():
        left = BenefitConsumption.objects.filter(payroll=payroll, status=UNSENT).count()
        if left == 0:
            Payroll.objects.filter(pk=payroll.pk, status=PayrollStatus.SENDING).update(
                status=PayrollStatus.SENT, version=F("version") + 1, date_updated=timezone.now())
            settle(payroll.pk, user)
    result: dict[str, Any] = {"sent": sent, "unknown": unknown, "pending": left}
    if error:
        result["error"] = error
        result["stopped"] = "refused" if stop_run else "unavailable"
    return result


# A run that left payments unsent waits this long (doubling per run that stops short, up to
# RESUME_MAX_SECONDS) before it tries again by itself: first the status query that settles the
# unknown ones, then the rest.
RESUME_MAX_SECONDS = 900
# Another run holds the payroll: look again soon, it may be a run that was lost a moment ago.
BUSY_RETRY_SECONDS = 15


def send_outcome(payroll_id: Any, outcome: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    """What a ``payroll.send`` run ended as, for its job: SUCCEEDED once every payment reached
    its provider; WAITING (resuming by itself) while a provider is silent or outcomes are
    unknown; FAILED when a provider refuses us (credentials, signature), which only a changed
    configuration and a retry can fix. The message has the counts."""
    if "skipped" in outcome:
        if outcome["skipped"] == ANOTHER_RUN:
            return {**outcome, "state": "WAITING", "resume_after": BUSY_RETRY_SECONDS,
                    "message": f"Another run is sending this payroll; this one looks again in {BUSY_RETRY_SECONDS} s."}
        return {**outcome, "message": f"Nothing to send: {outcome['skipped']}."}
    payroll = Payroll.all_objects.get(pk=payroll_id)
    total, left, unknown, sent = payroll.control_count, outcome["pending"], outcome["unknown"], outcome["sent"]
    reached = total - left
    counts = (f"{reached:,} of {total:,} payments reached their provider ({sent:,} in this run); "
              f"{left:,} not yet, {unknown:,} of which with an unknown outcome")
    if left == 0:
        return {**outcome, "waits": 0,
                "message": f"Sent: all {total:,} payments reached their provider ({sent:,} in this run); "
                           f"the payroll is {payroll.status}."}
    if outcome.get("stopped") == "refused":
        return {**outcome, "state": "FAILED",
                "message": f"Stopped: {outcome['error']} {counts}. Fix the payment point's configuration, "
                           "then retry the job; nothing is sent twice."}
    waits = int((previous or {}).get("waits") or 0) + 1
    delay = min(RESUME_MAX_SECONDS, int(module_config("payroll")["send_resume_seconds"]) * 2 ** (waits - 1))
    why = f" {outcome['error']}." if outcome.get("error") else ""
    return {**outcome, "state": "WAITING", "resume_after": delay, "waits": waits,
            "message": f"Stopped short: {counts}.{why} It resumes by itself in {delay:,} s: a status query "
                       "settles the unknown ones before anything is sent again."}


def _undispatched(payroll: Payroll) -> Any:
    return BenefitConsumption.objects.filter(payroll=payroll, status=UNSENT,
                                             dispatched_at__isnull=True)


def _points_to_send(payroll: Payroll) -> list[Any]:
    return list(_undispatched(payroll).order_by("payment_point_id").values_list("payment_point_id", flat=True)
                .distinct())


def _claim_batch(payroll: Payroll, point_id: Any = None) -> list[BenefitConsumption]:
    """The next batch for one payment point (the first with work, if not given), marked
    dispatched (one UPDATE) before it leaves.

    No ORDER BY in the claim: the (payroll, status) index hands out undispatched unsent rows
    without sorting what remains, so each claim costs a batch, not the rest of the payroll.
    """
    if point_id is None:
        points = _points_to_send(payroll)
        if not points:
            return []
        point_id = points[0]
    point = PaymentPoint.all_objects.get(pk=point_id)
    table = BenefitConsumption._meta.db_table
    with connection.cursor() as cursor:
        # The batch is picked once, in a materialized CTE: as ``id IN (SELECT … LIMIT n)`` the
        # planner may re-run the subquery per row and dispatch more than a batch.
        cursor.execute(
            f"WITH batch AS MATERIALIZED (SELECT id FROM {table} WHERE payroll_id = %s AND status = '{UNSENT}' "
            "AND dispatched_at IS NULL AND payment_point_id = %s AND NOT is_deleted LIMIT %s "
            f"FOR UPDATE SKIP LOCKED) UPDATE {table} b SET dispatched_at = now(), "
            "send_attempts = b.send_attempts + 1, version = b.version + 1 FROM batch WHERE b.id = batch.id "
            "RETURNING b.id",
            [payroll.pk, point_id, _batch_size(point)],
        )
        ids = [row[0] for row in cursor.fetchall()]
    return list(BenefitConsumption.objects.filter(pk__in=ids).select_related("individual", "payment_point")
                .order_by("code"))


def poll_sent(user: User) -> dict[str, int]:
    """Ask providers for the final status of every instruction still SENT (for providers whose
    callbacks were lost or that have none)."""
    rows = BenefitConsumption.objects.filter(status=InstructionStatus.SENT,
                                             payroll__status__in=(PayrollStatus.SENT, PayrollStatus.SENDING))
    asked = changed = 0
    for point_id in set(rows.values_list("payment_point_id", flat=True)):
        point = PaymentPoint.all_objects.get(pk=point_id)
        references = list(rows.filter(payment_point_id=point_id).order_by("code").values_list("code", flat=True))
        size = _batch_size(point)
        for start in range(0, len(references), size):
            try:
                outcomes = adaptors.query_status(point, references[start:start + size])
            except (ProviderUnavailable, ServiceError) as exc:
                log.warning("status poll failed", extra={"point": point.code, "error": str(exc)})
                continue
            asked += len(outcomes)
            with acting_as(user, poll=point.code):
                changed += record_outcomes(outcomes, user)
            adaptors.outcomes_received(point, "POLL", outcomes)
    return {"asked": asked, "changed": changed}
