"""Calculation rules of payment plans, turned into one SQL expression per payroll.

A rule is a JSON document; amounts are in the currency's major unit (numbers or decimal
strings) and must be whole in its minor unit::

    {
      "fixed": 5000,                                   # per beneficiary
      "per_member": {"amount": 2000, "cap": 10000},    # GROUP plans: per household member, capped
      "top_ups": [                                     # added when the criteria match
        {"criteria": {"on": "head", "filter": "disability__exact__boolean=true"}, "amount": 3000}
      ]
    }

Top-up criteria are the targeting language of ``social_protection`` (see its targeting.py),
applied to the beneficiary's person or household. Every part is optional; the sum of the
parts is the amount.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    Exists,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)
from django.db.models.expressions import Expression
from django.db.models.functions import Coalesce, Least

from core.errors import FieldError, ValidationFailed
from modules.individual.models import Group, GroupIndividual, Individual
from modules.social_protection import targeting
from modules.social_protection.models import PlanType

KEYS = {"fixed", "per_member", "top_ups"}


def to_minor(value: Any, minor_unit: int, path: str, errors: list[FieldError]) -> int:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        errors.append(FieldError(path, "INVALID_AMOUNT", f"{path}: '{value}' is not a number."))
        return 0
    scaled = amount.scaleb(minor_unit)
    if amount < 0 or scaled != scaled.to_integral_value():
        errors.append(FieldError(
            path, "INVALID_AMOUNT",
            f"{path}: {value} must be positive and have at most {minor_unit} decimal places.",
        ))
        return 0
    return int(scaled)


def compile_rule(rule: Any, plan_type: str, minor_unit: int) -> dict[str, Any]:
    """Validate ``rule`` and return it in minor units; raises ValidationFailed naming each problem."""
    errors: list[FieldError] = []
    if not isinstance(rule, dict) or not rule:
        raise ValidationFailed([FieldError("calculationRule", "INVALID_RULE",
                                           "The calculation rule needs at least one of fixed, per_member, top_ups.")])
    extra = set(rule) - KEYS
    if extra:
        errors.append(FieldError("calculationRule", "INVALID_RULE", f"Unknown keys: {', '.join(sorted(extra))}."))
    compiled: dict[str, Any] = {"fixed": 0, "per_member": None, "top_ups": []}
    if "fixed" in rule:
        compiled["fixed"] = to_minor(rule["fixed"], minor_unit, "calculationRule.fixed", errors)
    if "per_member" in rule:
        per = rule["per_member"]
        if plan_type != PlanType.GROUP:
            errors.append(FieldError("calculationRule.per_member", "INVALID_RULE",
                                     "per_member applies to GROUP plans only."))
        elif not isinstance(per, dict) or "amount" not in per:
            errors.append(FieldError("calculationRule.per_member", "INVALID_RULE",
                                     "per_member is {\"amount\": ..., \"cap\": ...}."))
        else:
            amount = to_minor(per["amount"], minor_unit, "calculationRule.per_member.amount", errors)
            cap = None if per.get("cap") is None else to_minor(per["cap"], minor_unit, "calculationRule.per_member.cap", errors)
            compiled["per_member"] = {"amount": amount, "cap": cap}
    for index, top_up in enumerate(rule.get("top_ups") or []):
        path = f"calculationRule.top_ups[{index}]"
        if not isinstance(top_up, dict) or "amount" not in top_up or "criteria" not in top_up:
            errors.append(FieldError(path, "INVALID_RULE", f"{path}: needs criteria and amount."))
            continue
        amount = to_minor(top_up["amount"], minor_unit, f"{path}.amount", errors)
        for problem in targeting.validate(plan_type, top_up["criteria"]):
            errors.append(FieldError(path, problem.code, f"{path}: {problem.message}"))
        compiled["top_ups"].append({"criteria": top_up["criteria"], "amount": amount})
    if errors:
        raise ValidationFailed(errors)
    return compiled


def amount_expression(compiled: dict[str, Any], plan_type: str) -> Expression:
    """The amount of one beneficiary row, in minor units, as an expression over
    Beneficiary/GroupBeneficiary rows."""
    integer = BigIntegerField()
    total: Expression = Value(compiled["fixed"], output_field=integer)
    per = compiled.get("per_member")
    if per and plan_type == PlanType.GROUP:
        members = Coalesce(Subquery(
            GroupIndividual.objects.filter(group_id=OuterRef("group_id"))
            .values("group_id").annotate(n=Count("*", output_field=integer)).values("n"),
            output_field=integer,
        ), Value(0, output_field=integer))
        part: Expression = members * Value(per["amount"], output_field=integer)
        if per.get("cap") is not None:
            part = Least(part, Value(per["cap"], output_field=integer), output_field=integer)
        total = total + part
    for top_up in compiled.get("top_ups", []):
        condition = targeting.build(plan_type, top_up["criteria"])
        total = total + Case(
            When(_matches(condition, plan_type), then=Value(top_up["amount"], output_field=integer)),
            default=Value(0, output_field=integer), output_field=integer,
        )
    return total


def _matches(condition: Q, plan_type: str) -> Exists:
    if plan_type == PlanType.GROUP:
        return Exists(Group.objects.filter(condition, pk=OuterRef("group_id")))
    return Exists(Individual.objects.filter(condition, pk=OuterRef("individual_id")))
