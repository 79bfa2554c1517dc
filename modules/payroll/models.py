"""Payment cycles, plans, points, payrolls and the payment instructions they contain.

Amounts of instructions are integers in the currency's minor unit (cents, or whole francs
for BIF), so sums and control totals are exact.
"""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q

from core.models import CoreModel
from modules.individual.models import Group, Individual
from modules.location.models import Location
from modules.social_protection.models import BenefitPlan


class CycleStatus(models.TextChoices):
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    CLOSED = "CLOSED"


class PaymentCycle(CoreModel):
    code = models.CharField(max_length=50)
    start_date = models.DateField()
    end_date = models.DateField()
    status = models.CharField(max_length=10, choices=CycleStatus.choices, default=CycleStatus.ACTIVE)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["code"], condition=Q(is_deleted=False), name="payroll_cycle_code_unique"),
            models.CheckConstraint(condition=Q(end_date__gte=models.F("start_date")), name="payroll_cycle_dates"),
        ]

    def __str__(self) -> str:
        return self.code


class PaymentPlan(CoreModel):
    """How much a benefit plan pays per cycle; ``calculation_rule`` is described in rules.py."""

    code = models.CharField(max_length=50)
    name = models.CharField(max_length=255)
    benefit_plan = models.ForeignKey(BenefitPlan, on_delete=models.PROTECT, related_name="+")
    calculation_rule = models.JSONField(default=dict)
    currency = models.CharField(max_length=3)
    minor_unit = models.PositiveSmallIntegerField(default=2, help_text="digits after the decimal point (0 for BIF)")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["code"], condition=Q(is_deleted=False), name="payroll_plan_code_unique"),
        ]

    def __str__(self) -> str:
        return self.code


class PaymentPoint(CoreModel):
    """A payment service provider (or one account with it).

    ``config`` holds adaptor settings; credentials appear in it only as ``{"env": "NAME"}``
    references and no query returns it. ``routing`` says whom the point serves:
    ``{"locations": [<location uuid>, ...], "priority": 0}`` (the locations and everything
    under them; a lower priority wins where two points overlap).
    """

    code = models.CharField(max_length=50)
    name = models.CharField(max_length=255)
    adaptor = models.CharField(max_length=50)
    config = models.JSONField(default=dict, blank=True)
    routing = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["code"], condition=Q(is_deleted=False), name="payroll_point_code_unique"),
        ]

    def __str__(self) -> str:
        return self.code


class PayrollStatus(models.TextChoices):
    PENDING_APPROVAL = "PENDING_APPROVAL"
    APPROVED = "APPROVED"
    SENDING = "SENDING"
    SENT = "SENT"
    PARTIALLY_PAID = "PARTIALLY_PAID"
    PAID = "PAID"
    RECONCILED = "RECONCILED"
    REJECTED = "REJECTED"


class Payroll(CoreModel):
    name = models.CharField(max_length=255)
    payment_plan = models.ForeignKey(PaymentPlan, on_delete=models.PROTECT, related_name="payrolls")
    payment_cycle = models.ForeignKey(PaymentCycle, on_delete=models.PROTECT, related_name="payrolls")
    payment_point = models.ForeignKey(
        PaymentPoint, null=True, blank=True, on_delete=models.PROTECT, related_name="payrolls",
        help_text="every instruction goes to this point; when empty each is routed by location",
    )
    location_ids = models.JSONField(default=list, blank=True, help_text="only beneficiaries under these locations")
    follows = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="follow_ups",
        help_text="the payroll whose failed payments this one re-issues",
    )
    status = models.CharField(max_length=20, choices=PayrollStatus.choices, default=PayrollStatus.PENDING_APPROVAL)
    control_count = models.PositiveIntegerField(default=0)
    control_sum = models.BigIntegerField(default=0, help_text="minor units")
    job = models.OneToOneField(
        "core.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="the generation job that made it: a job rerun after a crash finds its payroll here",
    )
    generation_report = models.JSONField(
        default=dict, blank=True,
        help_text="who generation left out and why (recipients no payment point could pay); in the job's result",
    )

    class Meta:
        indexes = [models.Index(fields=["payment_cycle", "status"], name="payroll_cycle_status")]

    def __str__(self) -> str:
        return self.name


class InstructionStatus(models.TextChoices):
    CREATED = "CREATED"
    APPROVED = "APPROVED"
    SENT = "SENT"
    PAID = "PAID"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    RECONCILED = "RECONCILED"


# Instructions in these statuses no longer hold a beneficiary's payment for the cycle, so a
# follow-up payroll may pay them again.
RELEASED_STATUSES = (InstructionStatus.FAILED, InstructionStatus.CANCELLED)

# Approval is a fact of the payroll, not of each payment: approving a national payroll writes
# one payroll row (and its history version, naming the checker and the control totals), not
# 315,000 instructions. A stored instruction stays CREATED until it is sent; clients see it as
# APPROVED once its payroll has been approved (``effective_status``), so ``APPROVED`` is never
# stored any more (migration 0006 moved the rows that had it back to CREATED).
UNSENT: str = InstructionStatus.CREATED.value
APPROVED_PAYROLL_STATUSES = (
    PayrollStatus.APPROVED, PayrollStatus.SENDING, PayrollStatus.SENT, PayrollStatus.PARTIALLY_PAID,
    PayrollStatus.PAID, PayrollStatus.RECONCILED,
)


def effective_status(stored: str, payroll_status: str) -> str:
    """The status a client sees: an unsent payment of an approved payroll is APPROVED."""
    if stored == UNSENT and payroll_status in APPROVED_PAYROLL_STATUSES:
        return InstructionStatus.APPROVED
    return stored


def effective_status_q(statuses: list[str] | tuple[str, ...], payroll: str = "payroll__") -> Q:
    """Instructions whose :func:`effective_status` is one of ``statuses``, as a filter
    (``payroll`` is the lookup path of the instruction's payroll)."""
    wanted = set(statuses)
    condition = Q(status__in=sorted(wanted - {InstructionStatus.CREATED, InstructionStatus.APPROVED}))
    if InstructionStatus.CREATED in wanted:
        condition |= Q(status=UNSENT) & ~Q(**{f"{payroll}status__in": APPROVED_PAYROLL_STATUSES})
    if InstructionStatus.APPROVED in wanted:
        condition |= Q(status=UNSENT, **{f"{payroll}status__in": APPROVED_PAYROLL_STATUSES})
    return condition


class BenefitConsumption(CoreModel):
    """One payment instruction: one beneficiary, one cycle.

    ``code`` is the reference sent to the provider and its idempotency key; a resend always
    reuses it. ``dispatched_at`` is written (and committed) before a batch goes out, so after a
    crash an instruction with ``dispatched_at`` but no acknowledgement is an unknown outcome,
    resolved by a status query before anything is sent again.
    """

    # Indexes and key checks here are few on purpose: a national payroll inserts and then
    # updates 315,000 rows at once, and each index or per-row key check costs every one of
    # them (a key check is a locked lookup, which rewrites the referenced row). The payroll,
    # payment point, recipient and household are checked once per INSERT statement instead
    # (migration 0004: one anti-join each); these rows are never deleted, only marked deleted,
    # and no code changes those columns after the insert. The cycle is a copy of the payroll's
    # and the audit users are, like core_history's user_id, not checked. Columns read only
    # together with ``payroll`` (the (payroll, status) index) have no index of their own.
    user_created = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="+", db_index=False, db_constraint=False)
    user_updated = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="+", db_index=False, db_constraint=False)
    code = models.CharField(max_length=40)
    payroll = models.ForeignKey(Payroll, on_delete=models.PROTECT, related_name="instructions", db_index=False,
                                db_constraint=False)
    # live payments per payroll kept by triggers (core.row_counts): a payroll's totalCount is one row
    counted_by: ClassVar[tuple[str, ...]] = ("payroll",)
    payment_cycle = models.ForeignKey(PaymentCycle, on_delete=models.PROTECT, related_name="+", db_index=False,
                                      db_constraint=False)
    beneficiary_id = models.UUIDField(help_text="the Beneficiary or GroupBeneficiary row paid")
    individual = models.ForeignKey(Individual, on_delete=models.PROTECT, related_name="+", help_text="the recipient",
                                   db_constraint=False)
    group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                              db_constraint=False, db_index=False)
    payment_point = models.ForeignKey(PaymentPoint, on_delete=models.PROTECT, related_name="+", db_index=False,
                                      db_constraint=False)
    # Written by generation, never changed: the place the payment was generated for, so a
    # per-location report of a payroll reads 3,000 locations instead of joining a million
    # people. NULL for rows made another way (the report then reads the recipient's place).
    # Scope is not this: it always follows where the recipient lives now.
    place = models.ForeignKey(Location, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                              db_index=False, db_constraint=False,
                              help_text="where the recipient lived when the payment was generated")
    amount = models.BigIntegerField(help_text="minor units")
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=10, choices=InstructionStatus.choices, default=InstructionStatus.CREATED)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    send_attempts = models.PositiveIntegerField(default=0)
    provider_transaction_id = models.CharField(max_length=100, blank=True, default="")
    status_message = models.CharField(max_length=255, blank=True, default="")
    date_paid = models.DateTimeField(null=True, blank=True)
    reissue_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                   db_index=False)

    class Meta:
        constraints = [
            # (a unique constraint rather than unique=True: no second, LIKE-pattern index)
            models.UniqueConstraint(fields=["code"], name="payroll_instruction_code_unique"),
            models.UniqueConstraint(
                fields=["payment_cycle", "beneficiary_id"],
                condition=Q(is_deleted=False) & ~Q(status__in=["FAILED", "CANCELLED"]),
                name="payroll_one_payment_per_cycle",
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="payroll_amount_not_negative"),
        ]
        indexes = [
            models.Index(fields=["payroll", "status"], name="payroll_instruction_status"),
            # the payments without a place (made before it was recorded): empty for generated
            # ones, so generation never writes to it, and the report finds the others at once
            models.Index(fields=["payroll"], condition=Q(place__isnull=True), name="payroll_instruction_no_place"),
        ]
