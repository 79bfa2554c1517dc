"""What the social protection module asks of the modules built on it."""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("coremis")


@hookspec
def social_protection_plans_with_payment_plans() -> Any:
    """The ids of benefit plans a live payment plan pays (a queryset or a set of ids), for
    ``BenefitPlanGQLType.hasPaymentPlans``; implemented by the payroll module."""
