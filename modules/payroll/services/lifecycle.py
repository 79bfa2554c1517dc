"""A payroll's life after generation: approving, rejecting, sending, closing, deleting.

Use cases: ``check_send_payroll`` / ``do_send_payroll`` (the send job) and
``check_close_payroll`` / ``do_close_payroll`` (an approval task when ``payroll.reconcile`` is
routed, else the close); rejecting and deleting are direct writes that check their rights
themselves. An approved task acts as its maker (``approvals.py``).

Locking: every status change of a payroll is a conditional ``UPDATE … WHERE status IN``, so
two requests (or a request and the sending job) racing on the same payroll cannot both move
it; the loser gets ``INVALID_PAYROLL_STATUS``.

Scope of payroll-wide actions: approving, rejecting, sending, closing and deleting act on every
payment of a payroll at once, so they need every one of them in the user's scope
(``OUT_OF_SCOPE`` otherwise); national users (and the system actor) may do them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core import services
from core.actors import system_actor
from core.approvals.services import needs_approval, request_approval
from core.errors import ServiceError
from core.jobs import start_job
from core.models import ApprovalTask, Job, User
from core.permissions import require
from modules.location.services import require_all_in_scope
from modules.payroll.approvals import RECONCILE
from modules.payroll.errors import PayrollErrorCode
from modules.payroll.models import BenefitConsumption, InstructionStatus, Payroll, PayrollStatus
from modules.payroll.permissions import PAYROLL_APPROVE, PAYROLL_CLOSE, PAYROLL_DELETE, PAYROLL_PAY
from modules.payroll.services.selectors import PAYMENT_LOCATION, actual_totals, get_payroll

# the job kind of sending
SEND = "payroll.send"
CLOSABLE = (PayrollStatus.PAID, PayrollStatus.PARTIALLY_PAID)


def check_control_totals(payroll: Payroll) -> None:
    """The instructions must still add up to what generation recorded: any row added, removed
    or changed since (by hand, by a bug) stops the payroll before money moves."""
    count, total = actual_totals(payroll)
    if (count, total) != (payroll.control_count, payroll.control_sum):
        raise ServiceError(
            PayrollErrorCode.CONTROL_TOTALS_MISMATCH,
            f"The payroll's instructions add up to {count} payments totalling {total}, but its control "
            f"totals say {payroll.control_count} totalling {payroll.control_sum}. Nothing was changed.",
        )


def _move(payroll: Payroll, user: User, sources: tuple[str, ...], target: str) -> Payroll:
    moved = Payroll.objects.filter(pk=payroll.pk, status__in=sources).update(
        status=target, version=F("version") + 1, date_updated=timezone.now(), user_updated_id=user.pk)
    if not moved:
        current = Payroll.all_objects.values_list("status", flat=True).get(pk=payroll.pk)
        raise ServiceError(PayrollErrorCode.INVALID_PAYROLL_STATUS,
                           f"The payroll is {current}; this needs it to be {' or '.join(sources)}.", "status")
    payroll.refresh_from_db()
    return payroll


def _move_instructions(payroll: Payroll, user: User, sources: tuple[str, ...], target: str) -> int:
    return BenefitConsumption.objects.filter(payroll=payroll, status__in=sources).update(
        status=target, version=F("version") + 1, date_updated=timezone.now(), user_updated_id=user.pk)


def require_whole_payroll(user: User, payroll: Payroll, action: str) -> None:
    """Refuse ``action`` ("Rejecting this payroll") unless every payment of the payroll is in
    the user's scope."""
    require_all_in_scope(user, BenefitConsumption.all_objects.filter(payroll=payroll), PAYMENT_LOCATION,
                         action, "payments")


# --- approving and rejecting ---------------------------------------------------------------------


def check_may_approve(user: User, payroll_id: Any) -> Payroll:
    """Whether ``user`` may approve the payroll (a checker deciding on its task, or a script)."""
    require(user, PAYROLL_APPROVE)
    payroll = get_payroll(user, payroll_id)
    require_whole_payroll(user, payroll, "Approving this payroll")
    return payroll


def approve_payroll(user: User, payroll_id: Any) -> Payroll:
    """PENDING_APPROVAL → APPROVED by ``user``, who needs the right and every payment in scope."""
    check_may_approve(user, payroll_id)
    return mark_approved(user, payroll_id)


def mark_approved(user: User, payroll_id: Any) -> Payroll:
    """The approval itself, once the control totals still hold: for a deployment where payrolls
    need no checker (generation approves, as the maker) and for an approved task (as the maker;
    the checker was checked when deciding). Who may approve is the caller's business."""
    with transaction.atomic():
        payroll = get_payroll(system_actor(), payroll_id, for_update=True)
        check_control_totals(payroll)
        # One row: the instructions stay CREATED and read as APPROVED through their payroll
        # (models.effective_status); the payroll's history version names who approved which totals.
        payroll = _move(payroll, user, (PayrollStatus.PENDING_APPROVAL,), PayrollStatus.APPROVED)
    return payroll


def reject_payroll(user: User, payroll_id: Any) -> Payroll:
    """A rejected payroll releases its beneficiaries: another payroll may pay them this cycle."""
    require(user, PAYROLL_APPROVE)
    with transaction.atomic():
        payroll = get_payroll(user, payroll_id, for_update=True)
        require_whole_payroll(user, payroll, "Rejecting this payroll")
        payroll = _move(payroll, user, (PayrollStatus.PENDING_APPROVAL, PayrollStatus.APPROVED),
                        PayrollStatus.REJECTED)
        _move_instructions(payroll, user, (InstructionStatus.CREATED,), InstructionStatus.CANCELLED)
    return payroll


def delete_payroll(user: User, payroll_id: Any, version: int | None = None) -> Payroll:
    """Only a payroll from which nothing was sent can be deleted."""
    require(user, PAYROLL_DELETE)
    with transaction.atomic():
        payroll = get_payroll(user, payroll_id, for_update=True)
        require_whole_payroll(user, payroll, "Deleting this payroll")
        if payroll.status not in (PayrollStatus.PENDING_APPROVAL, PayrollStatus.REJECTED):
            raise ServiceError(PayrollErrorCode.INVALID_PAYROLL_STATUS,
                               f"A {payroll.status} payroll cannot be deleted; only pending or rejected ones.", "status")
        _move_instructions(payroll, user, (InstructionStatus.CREATED,), InstructionStatus.CANCELLED)
        BenefitConsumption.objects.filter(payroll=payroll).update(is_deleted=True, version=F("version") + 1)
        return services.set_deleted(payroll, user, True, version)


# --- sending -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendRequest:
    actor: User
    payroll: Payroll


def check_send_payroll(actor: User, payroll_id: Any) -> SendRequest:
    """``makePaymentForPayroll``: the right, every payment in scope, and a payroll that is
    APPROVED (or SENDING: a run left short is restarted) and still adds up."""
    require(actor, PAYROLL_PAY)
    payroll = get_payroll(actor, payroll_id)
    require_whole_payroll(actor, payroll, "Sending this payroll")
    if payroll.status not in (PayrollStatus.APPROVED, PayrollStatus.SENDING):
        raise ServiceError(PayrollErrorCode.INVALID_PAYROLL_STATUS,
                           f"The payroll is {payroll.status}; this needs it to be APPROVED or SENDING.", "status")
    return SendRequest(actor, payroll)


def do_send_payroll(request: SendRequest) -> tuple[Payroll, Job]:
    """Move the payroll to SENDING (checked again under its lock) and start the send job."""
    payroll = start_sending(request.actor, request.payroll.pk)
    return payroll, start_job(SEND, {"payroll_id": str(payroll.pk)}, request.actor)


def start_sending(user: User, payroll_id: Any) -> Payroll:
    """APPROVED → SENDING; a payroll left SENDING (crash, unknown outcomes) may be restarted."""
    require(user, PAYROLL_PAY)
    with transaction.atomic():
        payroll = get_payroll(user, payroll_id, for_update=True)
        require_whole_payroll(user, payroll, "Sending this payroll")
        check_control_totals(payroll)
        if payroll.status != PayrollStatus.SENDING:
            payroll = _move(payroll, user, (PayrollStatus.APPROVED,), PayrollStatus.SENDING)
    return payroll


# --- closing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CloseRequest:
    actor: User
    payroll: Payroll


@dataclass(frozen=True)
class PayrollClosure:
    payroll: Payroll
    task: ApprovalTask | None = None  # set when closing waits for a checker


def check_close_problems(payroll: Payroll) -> None:
    """Refuse closing while a module (reconciliation) says the payroll does not add up yet."""
    from core.hooks import hook

    problems = [p for found in hook().payroll_close_problems(payroll=payroll) for p in found or []]
    if problems:
        raise ServiceError(PayrollErrorCode.NOT_RECONCILED, "The payroll cannot be closed yet: " +
                           "; ".join(problems[:20]) +
                           (f"; and {len(problems) - 20} more" if len(problems) > 20 else ""), "id")


def _closable(user: User, payroll: Payroll) -> None:
    require_whole_payroll(user, payroll, "Closing this payroll")
    if payroll.status not in CLOSABLE:
        raise ServiceError(PayrollErrorCode.INVALID_PAYROLL_STATUS, f"The payroll is {payroll.status}; this needs "
                           "it to be PAID or PARTIALLY_PAID.", "status")
    check_close_problems(payroll)


def check_close_payroll(actor: User, payroll_id: Any) -> CloseRequest:
    """``closePayroll``: the right, every payment in scope, a PAID or PARTIALLY_PAID payroll
    and nothing a module still objects to (``payroll_close_problems``)."""
    require(actor, PAYROLL_CLOSE)
    payroll = get_payroll(actor, payroll_id)
    _closable(actor, payroll)
    return CloseRequest(actor, payroll)


def do_close_payroll(request: CloseRequest) -> PayrollClosure:
    """An approval task when the deployment routes ``payroll.reconcile`` to checkers (the
    approved task closes it, as the maker), else the close now."""
    payroll = request.payroll
    if needs_approval(RECONCILE):
        task = request_approval(request.actor, RECONCILE, "Payroll", payroll.pk, {
            "id": str(payroll.pk), "name": payroll.name, "status": payroll.status,
            "count": payroll.control_count, "sum": payroll.control_sum})
        return PayrollClosure(payroll, task)
    return PayrollClosure(close_payroll(request.actor, payroll.pk))


def close_payroll(user: User, payroll_id: Any) -> Payroll:
    """PAID / PARTIALLY_PAID → RECONCILED; paid instructions become RECONCILED; the rules are
    checked again under the payroll's lock."""
    require(user, PAYROLL_CLOSE)
    with transaction.atomic():
        payroll = get_payroll(user, payroll_id, for_update=True)
        _closable(user, payroll)
        payroll = _move(payroll, user, CLOSABLE, PayrollStatus.RECONCILED)
        _move_instructions(payroll, user, (InstructionStatus.PAID,), InstructionStatus.RECONCILED)
    return payroll
