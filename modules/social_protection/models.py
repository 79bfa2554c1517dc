"""Benefit plans and who benefits from them."""

from __future__ import annotations

from typing import ClassVar

from django.db import models
from django.db.models import Q

from core.models import CoreModel
from modules.individual.models import Group, Individual


class PlanType(models.TextChoices):
    INDIVIDUAL = "INDIVIDUAL"
    GROUP = "GROUP"


class PlanStatus(models.TextChoices):
    ACTIVE = "ACTIVE"
    CLOSED = "CLOSED"


class BenefitPlan(CoreModel):
    code = models.CharField(max_length=50)
    name = models.CharField(max_length=255)
    type = models.CharField(max_length=10, choices=PlanType.choices, default=PlanType.INDIVIDUAL)
    description = models.TextField(blank=True, default="")
    institution = models.CharField(max_length=255, blank=True, default="")
    max_beneficiaries = models.PositiveIntegerField(null=True, blank=True)
    ceiling_per_beneficiary = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    date_valid_from = models.DateField()
    date_valid_to = models.DateField()
    beneficiary_data_schema = models.JSONField(default=dict, blank=True)
    criteria = models.JSONField(default=dict, blank=True, help_text="eligibility, see targeting.py")
    status = models.CharField(max_length=10, choices=PlanStatus.choices, default=PlanStatus.ACTIVE)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["code"], condition=Q(is_deleted=False), name="sp_plan_code_unique"),
            models.CheckConstraint(condition=Q(date_valid_to__gte=models.F("date_valid_from")), name="sp_plan_dates"),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class BeneficiaryStatus(models.TextChoices):
    POTENTIAL = "POTENTIAL"
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    GRADUATED = "GRADUATED"


# Which status may follow which; GRADUATED is final.
TRANSITIONS: dict[str, frozenset[str]] = {
    BeneficiaryStatus.POTENTIAL: frozenset({BeneficiaryStatus.ACTIVE, BeneficiaryStatus.GRADUATED}),
    BeneficiaryStatus.ACTIVE: frozenset({BeneficiaryStatus.SUSPENDED, BeneficiaryStatus.GRADUATED}),
    BeneficiaryStatus.SUSPENDED: frozenset({BeneficiaryStatus.ACTIVE, BeneficiaryStatus.GRADUATED}),
    BeneficiaryStatus.GRADUATED: frozenset(),
}


class Beneficiary(CoreModel):
    """An individual in an INDIVIDUAL plan; at most one live row per (plan, individual)."""

    benefit_plan = models.ForeignKey(BenefitPlan, on_delete=models.PROTECT, related_name="beneficiaries")
    individual = models.ForeignKey(Individual, on_delete=models.PROTECT, related_name="+")
    # live rows per plan kept by triggers (core.row_counts): a plan's totalCount is one row
    counted_by: ClassVar[tuple[str, ...]] = ("benefit_plan",)
    status = models.CharField(max_length=10, choices=BeneficiaryStatus.choices, default=BeneficiaryStatus.POTENTIAL)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["benefit_plan", "individual"], condition=Q(is_deleted=False), name="sp_beneficiary_once"
            ),
        ]
        indexes = [
            models.Index(fields=["benefit_plan", "status"], name="sp_beneficiary_plan_status"),
            models.Index(fields=["individual"], name="sp_beneficiary_individual"),
        ]


class GroupBeneficiary(CoreModel):
    """A household in a GROUP plan; at most one live row per (plan, group)."""

    benefit_plan = models.ForeignKey(BenefitPlan, on_delete=models.PROTECT, related_name="group_beneficiaries")
    group = models.ForeignKey(Group, on_delete=models.PROTECT, related_name="+")
    # live rows per plan kept by triggers (core.row_counts): a plan's totalCount is one row
    counted_by: ClassVar[tuple[str, ...]] = ("benefit_plan",)
    status = models.CharField(max_length=10, choices=BeneficiaryStatus.choices, default=BeneficiaryStatus.POTENTIAL)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["benefit_plan", "group"], condition=Q(is_deleted=False), name="sp_group_beneficiary_once"
            ),
        ]
        indexes = [
            models.Index(fields=["benefit_plan", "status"], name="sp_groupben_plan_status"),
            models.Index(fields=["group"], name="sp_groupben_group"),
        ]
