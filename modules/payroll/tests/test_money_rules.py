"""Amounts are bounded when a payment plan is saved; the benefit plan's ceiling and validity
are enforced when a payroll is generated (issue 9.7)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from core.jobs import run_job
from core.models import Job
from modules.payroll.models import BenefitConsumption, PaymentPlan, Payroll
from modules.social_protection.models import BenefitPlan

pytestmark = pytest.mark.django_db

PLAN = "paymentPlan { uuid }"


def plan_payload(group_plan: Any, rule: Any, **extra: Any) -> dict[str, Any]:
    return {"code": "PP-X", "name": "X", "benefitPlanId": str(group_plan.pk), "calculationRule": rule,
            "currency": "BIF", "minorUnit": 0, **extra}


@pytest.mark.parametrize("rule, code", [
    ({"fixed": 1e30}, "AMOUNT_TOO_LARGE"),                       # the rule
    ({"fixed": "1000000000001"}, "AMOUNT_TOO_LARGE"),
    ({"per_member": {"amount": 1, "cap": 1e19}}, "AMOUNT_TOO_LARGE"),
    ({"top_ups": [{"criteria": {"filter": "disability__exact__boolean=true"}, "amount": "9e99"}]},
     "AMOUNT_TOO_LARGE"),
    ({"fixed": "NaN"}, "INVALID_AMOUNT"),
    ({"fixed": "Infinity"}, "INVALID_AMOUNT"),
    ({"fixed": "-Infinity"}, "INVALID_AMOUNT"),
    ({"fixed": "12.5"}, "INVALID_AMOUNT"),                       # BIF has no minor unit
    ({"fixed": True}, "INVALID_AMOUNT"),
    ({"fixed": [1]}, "INVALID_AMOUNT"),
    ({"top_ups": {"amount": 1}}, "INVALID_RULE"),
    ({"top_ups": [{"criteria": {"filter": "disability__exact__boolean=true"}, "amount": 1}] * 21}, "INVALID_RULE"),
])
def test_unbounded_or_malformed_amounts_are_refused_when_a_plan_is_saved(gql, make_user, group_plan, rule, code, mutate, ok, payroll_rights):
    client = gql(make_user(payroll_rights))
    refused = mutate(client, "createPaymentPlan", plan_payload(group_plan, rule), PLAN)
    assert code in {e["code"] for e in refused["errors"]}, refused
    assert all("calculationRule" in e["field"] for e in refused["errors"])
    assert not PaymentPlan.all_objects.exists()

    made = ok(mutate(client, "createPaymentPlan", plan_payload(group_plan, {"fixed": 1000}), PLAN))["paymentPlan"]
    changed = mutate(client, "updatePaymentPlan", {"id": made["uuid"], "calculationRule": rule}, PLAN)
    assert code in {e["code"] for e in changed["errors"]}
    assert PaymentPlan.objects.get(pk=made["uuid"]).calculation_rule == {"fixed": 1000}


def test_the_largest_amount_is_accepted_and_its_payroll_adds_up(gql, make_user, group_plan, create_payroll, ok, payroll_rights, setup_payments):
    client = gql(make_user(payroll_rights))
    ids = setup_payments(client, group_plan)
    PaymentPlan.objects.filter(pk=ids["plan"]).update(calculation_rule={"fixed": 10**12})
    payroll = ok(create_payroll(client, ids))["payroll"]
    assert (payroll["controlCount"], payroll["controlSum"]) == (8, 8 * 10**12)


def start(client: Any, ids: dict[str, str], *, mutate, ok) -> Job:
    started = ok(mutate(client, "createPayroll", {"name": "January", "paymentPlanId": ids["plan"],
                                                  "paymentCycleId": ids["cycle"], "paymentPointId": ids["point"]},
                        "job { uuid }"))
    run_job(started["job"]["uuid"])
    return Job.objects.get(pk=started["job"]["uuid"])


def test_generation_refuses_amounts_above_the_benefit_plans_ceiling(gql, make_user, group_plan, expected_amounts, mutate, ok, payroll_rights, setup_payments):
    client = gql(make_user(payroll_rights))
    ids = setup_payments(client, group_plan)
    largest = max(expected_amounts.values())  # 21000 BIF: household 7
    BenefitPlan.objects.filter(pk=group_plan.pk).update(ceiling_per_beneficiary=largest - 1)
    job = start(client, ids, mutate=mutate, ok=ok)
    assert job.state == "FAILED", job.message
    assert "benefit plan CT-G" in job.message and "ceiling" in job.message and f"{largest} BIF" in job.message
    assert "2 beneficiaries" in job.message  # households 3 and 7 get 21000
    assert not Payroll.all_objects.exists() and not BenefitConsumption.all_objects.exists()

    BenefitPlan.objects.filter(pk=group_plan.pk).update(ceiling_per_beneficiary=largest)
    assert start(client, ids, mutate=mutate, ok=ok).state == "SUCCEEDED"
    assert Payroll.objects.get().control_sum == sum(expected_amounts.values())


def test_a_ceiling_in_a_currency_with_cents(gql, make_user, group_plan, mutate, ok, payroll_rights, setup_payments):
    client = gql(make_user(payroll_rights))
    ids = setup_payments(client, group_plan)
    PaymentPlan.objects.filter(pk=ids["plan"]).update(calculation_rule={"fixed": "12.50"}, currency="USD",
                                                      minor_unit=2)
    BenefitPlan.objects.filter(pk=group_plan.pk).update(ceiling_per_beneficiary="12.49")
    job = start(client, ids, mutate=mutate, ok=ok)
    assert job.state == "FAILED" and "12.50 USD" in job.message
    BenefitPlan.objects.filter(pk=group_plan.pk).update(ceiling_per_beneficiary="12.50")
    assert start(client, ids, mutate=mutate, ok=ok).state == "SUCCEEDED" and Payroll.objects.get().control_sum == 8 * 1250


def test_a_cycle_outside_the_plans_validity_pays_nobody(gql, make_user, group_plan, create_payroll, mutate, ok, payroll_rights, setup_payments):
    client = gql(make_user(payroll_rights))
    ids = setup_payments(client, group_plan)  # the cycle is January 2026; the plan is valid 2026-2027
    BenefitPlan.objects.filter(pk=group_plan.pk).update(date_valid_from=datetime.date(2026, 1, 15))
    refused = create_payroll(client, ids)
    assert [(e["field"], e["code"]) for e in refused["errors"]] == [("paymentCycleId", "OUTSIDE_PLAN_VALIDITY")]
    assert "benefit plan CT-G (2026-01-15 to 2027-12-31)" in refused["errors"][0]["message"]

    # and the job checks again: the plan may have changed after the mutation
    BenefitPlan.objects.filter(pk=group_plan.pk).update(date_valid_from=datetime.date(2026, 1, 1))
    started = ok(mutate(client, "createPayroll", {"name": "January", "paymentPlanId": ids["plan"],
                                                  "paymentCycleId": ids["cycle"], "paymentPointId": ids["point"]},
                        "job { uuid }"))
    BenefitPlan.objects.filter(pk=group_plan.pk).update(date_valid_to=datetime.date(2026, 1, 30))
    run_job(started["job"]["uuid"])
    job = Job.objects.get(pk=started["job"]["uuid"])
    assert job.state == "FAILED" and "not within the validity of benefit plan CT-G" in job.message
    assert not Payroll.all_objects.exists()


# Top-ups about the head alone are selected among people and joined on the head's id
# (``rules.amount_sql(head=…)``); every other criteria document joins households to their head.
# Both must pay the same households: here each document is evaluated both ways.
HEAD_CRITERIA = [
    {"on": "head", "filter": "disability__exact__boolean=true"},
    {"combine": "OR", "conditions": [{"on": "head", "field": "first_name", "lookup": "exact", "value": "P2-0"},
                                     {"on": "head", "filter": "disability__exact__boolean=true"}]},
    {"combine": "AND", "conditions": [{"on": "head", "location": ["{H2}", "{H4}"]},
                                      {"combine": "OR", "conditions": [
                                          {"on": "head", "field": "dob", "lookup": "lt", "value": "1990-01-01"}]}]},
]
MIXED_CRITERIA = [
    {"combine": "AND", "conditions": [{"on": "head", "filter": "disability__exact__boolean=true"},
                                      {"field": "code", "lookup": "in", "value": ["HH-001", "HH-002"]}]},
    {"location": ["{C1}"]},
    {"combine": "AND", "conditions": []},
]


def _amounts(group_plan: Any, criteria: Any, head: str | None) -> dict[str, int]:
    from django.db import connection

    from modules.individual.models import Group
    from modules.payroll import rules

    compiled = rules.compile_rule({"top_ups": [{"criteria": criteria, "amount": 7}]}, "GROUP", 0)
    joins, amount, params = rules.amount_sql(compiled, "GROUP", "g.id", members="1", head=head)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT g.code, {amount} FROM {Group._meta.db_table} g {joins} WHERE NOT g.is_deleted "
                       "ORDER BY g.code", params)
        return dict(cursor.fetchall())


def _placed(criteria: Any, country: dict[str, Any]) -> Any:
    import json

    text = json.dumps(criteria)
    for code, location in country.items():
        text = text.replace("{" + code + "}", str(location.pk))
    return json.loads(text)


@pytest.mark.parametrize("criteria", HEAD_CRITERIA + MIXED_CRITERIA)
def test_a_top_up_about_the_head_pays_the_same_households_joined_either_way(group_plan, households, country, criteria):
    from modules.individual.models import Individual
    from modules.social_protection import targeting

    criteria = _placed(criteria, country)
    assert (targeting.as_head(criteria) is not None) == (criteria in [_placed(c, country) for c in HEAD_CRITERIA])
    # a head marked deleted in a live household still counts, as it does through the household
    Individual.all_objects.filter(first_name="P3-0").update(is_deleted=True)
    by_head, by_household = _amounts(group_plan, criteria, "g.head_id"), _amounts(group_plan, criteria, None)
    assert by_head == by_household
    assert len(by_head) == 8
    # each document but the empty one (everyone) pays some households and not others
    assert set(by_head.values()) == ({7} if criteria == MIXED_CRITERIA[-1] else {0, 7})
