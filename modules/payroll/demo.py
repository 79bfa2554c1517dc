"""Demo payments for ``make run``: a payment cycle, a payment point (the file adaptor), a payment
plan on the demo group plan and one payroll awaiting approval — an open task for the checkers
when the deployment routes ``payroll.approve`` to a task group."""

from __future__ import annotations

import datetime
from typing import Any

from core.approvals.services import needs_approval, request_approval
from modules.payroll import services
from modules.payroll.models import PaymentCycle, PaymentPlan, PaymentPoint, Payroll

RULE = {"fixed": 10000, "per_member": {"amount": 2000, "cap": 6000}}


def seed_demo_payroll(actor: Any) -> int:
    from modules.location.models import Location
    from modules.social_protection.models import BenefitPlan

    plan = BenefitPlan.objects.filter(code="DEMO-GRP").first()
    if plan is None or Payroll.all_objects.filter(name="Demo payroll, first cycle").exists():
        return 0
    cycle = PaymentCycle.all_objects.filter(code="DEMO-2026-01").first() or services.create_cycle(
        actor, code="DEMO-2026-01", start_date=datetime.date(2026, 1, 1), end_date=datetime.date(2026, 3, 31))
    # the bank serves the demo's province (openIMIS's payment point screen shows it as the location)
    province = Location.objects.filter(level=0, is_deleted=False).order_by("code").first()
    point = PaymentPoint.all_objects.filter(code="DEMO-BANK").first() or services.create_point(
        actor, code="DEMO-BANK", name="Demo bank (file)", adaptor="file",
        routing={"locations": [str(province.pk)]} if province else None)
    payment_plan = PaymentPlan.all_objects.filter(code="DEMO-PP").first() or services.create_plan(
        actor, code="DEMO-PP", name="Demo household transfer", benefit_plan_id=plan.pk, calculation_rule=RULE,
        currency="BIF", minor_unit=0)
    payroll, _ = services.create_payroll(actor, name="Demo payroll, first cycle", payment_plan_id=payment_plan.pk,
                                         payment_cycle_id=cycle.pk, payment_point_id=point.pk)
    if needs_approval("payroll.approve"):
        request_approval(actor, "payroll.approve", "Payroll", payroll.pk,
                         {"id": str(payroll.pk), "name": payroll.name, "count": payroll.control_count,
                          "sum": payroll.control_sum, "currency": payment_plan.currency})
    else:
        services.mark_approved(actor, payroll.pk)
    return 1
