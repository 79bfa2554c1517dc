"""Demo programmes for ``make run``: one individual and one group benefit plan, each with the
demo registry enrolled as active beneficiaries, so the plan and beneficiary screens show data."""

from __future__ import annotations

import datetime
from typing import Any

from modules.social_protection import services
from modules.social_protection.models import BenefitPlan

PLANS = [
    ("DEMO-IND", "Demo cash transfer (individuals)", "INDIVIDUAL"),
    ("DEMO-GRP", "Demo household support (groups)", "GROUP"),
]


def seed_demo_plans(actor: Any) -> int:
    created = 0
    for code, name, type_ in PLANS:
        plan = BenefitPlan.all_objects.filter(code=code).first()
        if plan is None:
            plan = services.create_plan(
                actor, code=code, name=name, type=type_, max_beneficiaries=1000,
                ceiling_per_beneficiary="50000.00", date_valid_from=datetime.date(2026, 1, 1),
                date_valid_to=datetime.date(2027, 12, 31), institution="Ministry of Solidarity",
                description="Created by make run's demo data.")
            created += 1
        services.enroll_chunk(plan, actor, "ACTIVE", None, 1000)
    return created
