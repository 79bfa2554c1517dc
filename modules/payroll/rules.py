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

from django.db.models import F

from core.errors import FieldError, ValidationFailed
from modules.individual.models import Group, GroupIndividual, Individual
from modules.payroll.errors import PayrollErrorCode
from modules.social_protection import targeting
from modules.social_protection.models import PlanType

KEYS = {"fixed", "per_member", "top_ups"}
# Every amount of a rule is at most this many minor units, and a rule has at most MAX_TOP_UPS
# top-ups: so one payment, even for a household of a million members, and the control sum of a
# national payroll stay far inside PostgreSQL's bigint instead of failing a job hours later.
MAX_AMOUNT = 10**12
MAX_TOP_UPS = 20


def to_minor(value: Any, minor_unit: int, path: str, errors: list[FieldError]) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        errors.append(FieldError(path, PayrollErrorCode.INVALID_AMOUNT, f"{path}: an amount is a number or a decimal string."))
        return 0
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        amount = Decimal("NaN")
    if not amount.is_finite():
        errors.append(FieldError(path, PayrollErrorCode.INVALID_AMOUNT, f"{path}: '{str(value)[:40]}' is not a number."))
        return 0
    scaled = amount.scaleb(minor_unit)
    if amount < 0 or scaled != scaled.to_integral_value():
        errors.append(FieldError(
            path, PayrollErrorCode.INVALID_AMOUNT,
            f"{path}: {str(value)[:40]} must be positive and have at most {minor_unit} decimal places.",
        ))
        return 0
    if scaled > MAX_AMOUNT:
        largest = Decimal(MAX_AMOUNT).scaleb(-minor_unit)
        errors.append(FieldError(path, PayrollErrorCode.AMOUNT_TOO_LARGE,
                                 f"{path}: {str(value)[:40]} is more than the largest amount a rule may hold, {largest:,f}."))
        return 0
    return int(scaled)


def compile_rule(rule: Any, plan_type: str, minor_unit: int) -> dict[str, Any]:
    """Validate ``rule`` and return it in minor units; raises ValidationFailed naming each problem."""
    errors: list[FieldError] = []
    if not isinstance(rule, dict) or not rule:
        raise ValidationFailed([FieldError("calculationRule", PayrollErrorCode.INVALID_RULE,
                                           "The calculation rule needs at least one of fixed, per_member, top_ups.")])
    extra = set(rule) - KEYS
    if extra:
        errors.append(FieldError("calculationRule", PayrollErrorCode.INVALID_RULE, f"Unknown keys: {', '.join(sorted(extra))}."))
    compiled: dict[str, Any] = {"fixed": 0, "per_member": None, "top_ups": []}
    if "fixed" in rule:
        compiled["fixed"] = to_minor(rule["fixed"], minor_unit, "calculationRule.fixed", errors)
    if "per_member" in rule:
        per = rule["per_member"]
        if plan_type != PlanType.GROUP:
            errors.append(FieldError("calculationRule.per_member", PayrollErrorCode.INVALID_RULE,
                                     "per_member applies to GROUP plans only."))
        elif not isinstance(per, dict) or "amount" not in per:
            errors.append(FieldError("calculationRule.per_member", PayrollErrorCode.INVALID_RULE,
                                     "per_member is {\"amount\": ..., \"cap\": ...}."))
        else:
            amount = to_minor(per["amount"], minor_unit, "calculationRule.per_member.amount", errors)
            cap = None if per.get("cap") is None else to_minor(per["cap"], minor_unit, "calculationRule.per_member.cap", errors)
            compiled["per_member"] = {"amount": amount, "cap": cap}
    top_ups = rule.get("top_ups") or []
    if not isinstance(top_ups, list) or len(top_ups) > MAX_TOP_UPS:
        errors.append(FieldError("calculationRule.top_ups", PayrollErrorCode.INVALID_RULE,
                                 f"top_ups is a list of at most {MAX_TOP_UPS} top-ups."))
        top_ups = []
    for index, top_up in enumerate(top_ups):
        path = f"calculationRule.top_ups[{index}]"
        if not isinstance(top_up, dict) or "amount" not in top_up or "criteria" not in top_up:
            errors.append(FieldError(path, PayrollErrorCode.INVALID_RULE, f"{path}: needs criteria and amount."))
            continue
        amount = to_minor(top_up["amount"], minor_unit, f"{path}.amount", errors)
        for problem in targeting.validate(plan_type, top_up["criteria"]):
            errors.append(FieldError(path, problem.code, f"{path}: {problem.message}"))
        compiled["top_ups"].append({"criteria": top_up["criteria"], "amount": amount})
    if errors:
        raise ValidationFailed(errors)
    return compiled


def amount_sql(compiled: dict[str, Any], plan_type: str, subject: str,
               members: str | None = None, head: str | None = None) -> tuple[str, str, list[Any]]:
    """The amount of one beneficiary, in minor units, as SQL over ``subject`` (the column
    holding the household id for GROUP plans, the person id otherwise).

    Returns ``(joins, expression, params)``: each top-up is a ``LEFT JOIN`` to the set its
    criteria select, so PostgreSQL joins a national payroll by hashing instead of probing once
    per row and rule. The household size is ``members`` when the caller already has it (SQL:
    the live members of ``subject``, NULL for none; generation reads it from the same aggregate
    as the recipient), else a ``LATERAL`` count. ``params`` belong to ``joins`` (the expression
    itself has none). With ``head`` (SQL: the household's head, for GROUP plans), a top-up
    whose every condition is about the head selects those people and joins on the head's id,
    instead of joining every household to its head and then each household to the set.
    """
    joins: list[str] = []
    params: list[Any] = []
    parts = [str(int(compiled["fixed"]))]
    per = compiled.get("per_member")
    if per and plan_type == PlanType.GROUP:
        if members is None:
            table = GroupIndividual._meta.db_table
            joins.append(f"LEFT JOIN LATERAL (SELECT count(*) AS n FROM {table} m WHERE m.group_id = {subject} "
                         "AND NOT m.is_deleted) members ON true")
            members = "members.n"
        part = f"coalesce({members}, 0) * {int(per['amount'])}"
        if per.get("cap") is not None:
            part = f"least({part}, {int(per['cap'])})"
        parts.append(part)
    for index, top_up in enumerate(compiled.get("top_ups", [])):
        on_head = targeting.as_head(top_up["criteria"]) if head and plan_type == PlanType.GROUP else None
        if on_head is not None:
            # (every person, deleted or not: the household-side set joins its head regardless too)
            people = Individual.all_objects.filter(targeting.build(PlanType.INDIVIDUAL, on_head))
            matching, matching_params = people.values(matched=F("pk")).query.sql_with_params()
            key = head
        else:
            condition = targeting.build(plan_type, top_up["criteria"])
            model = Group if plan_type == PlanType.GROUP else Individual
            rows = model.objects.filter(condition).values(matched=F("pk")).distinct()
            matching, matching_params = rows.query.sql_with_params()
            key = subject
        joins.append(f"LEFT JOIN ({matching}) top_up_{index} ON top_up_{index}.matched = {key}")
        params += list(matching_params)
        parts.append(f"CASE WHEN top_up_{index}.matched IS NULL THEN 0 ELSE {int(top_up['amount'])} END")
    return " ".join(joins), " + ".join(parts), params
