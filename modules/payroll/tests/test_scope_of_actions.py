"""Payroll-wide actions need every payment of the payroll in the user's scope; generation acts
within it; the totals a scoped user sees are over their scope (issue 9.4)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.approvals.services import create_task_group
from core.models import ApprovalDecision, ApprovalTask
from modules.location.services import set_user_locations
from modules.payroll.models import BenefitConsumption, Payroll

pytestmark = pytest.mark.django_db

@pytest.fixture
def local_rights(payroll_rights: list[str]) -> list[str]:
    """Every right of the module, without national scope."""
    return [p for p in payroll_rights if p != "location.scope.national"]
# commune C1 holds collines H1 and H2: households 0, 1, 4 and 5
IN_C1 = ("HH-000", "HH-001", "HH-004", "HH-005")
PAYROLL = "payroll { uuid status controlCount controlSum }"


@pytest.fixture
def officer(make_user: Any, admin_user: Any, country: dict[str, Any], local_rights) -> Any:
    user = make_user(local_rights)
    set_user_locations(admin_user, user, [country["C1"].pk])
    return user


def everything() -> dict[str, Any]:
    return {str(p.pk): (p.status, p.is_deleted, sorted(p.instructions.values_list("status", flat=True)))
            for p in Payroll.all_objects.all()}


def test_a_payroll_paying_elsewhere_cannot_be_rejected_sent_deleted_or_closed_by_a_local_user(
        gql, make_user, group_plan, officer, create_payroll, expected_amounts, mutate, payroll_rights, setup_payments):
    national = gql(make_user(payroll_rights))
    ids = setup_payments(national, group_plan)
    payroll = create_payroll(national, ids)["payroll"]
    local = gql(officer)

    # the officer sees the payroll, with the totals of their own commune only
    seen = local.ok("{ payroll { edges { node { uuid controlCount controlSum } } } }")["payroll"]["edges"]
    assert [e["node"] for e in seen] == [{"uuid": payroll["uuid"], "controlCount": 4,
                                         "controlSum": sum(expected_amounts[c] for c in IN_C1)}]
    assert (payroll["controlCount"], payroll["controlSum"]) == (8, sum(expected_amounts.values()))
    # ... wherever the payroll is reached from, at a cost that does not grow with the page
    payments = """query($p: UUID!, $n: Int) { benefitConsumptionByPayroll(payrollUuid: $p, first: $n) {
        edges { node { payroll { controlCount controlSum } } } } }"""
    with CaptureQueriesContext(connection) as one:
        local.ok(payments, {"p": payroll["uuid"], "n": 1})
    with CaptureQueriesContext(connection) as four:
        nodes = local.ok(payments, {"p": payroll["uuid"], "n": 4})["benefitConsumptionByPayroll"]["edges"]
    assert len(one) == len(four) and {n["node"]["payroll"]["controlCount"] for n in nodes} == {4}

    before = everything()
    for name, extra in (("rejectPayroll", {}), ("makePaymentForPayroll", {}), ("deletePayroll", {})):
        result = mutate(local, name, {"id": payroll["uuid"], **extra}, "errors { code }")
        assert [e["code"] for e in result["errors"]] == ["OUT_OF_SCOPE"], name
        assert "4 payments outside your locations" in result["errors"][0]["message"]
    assert everything() == before

    BenefitConsumption.objects.filter(payroll_id=payroll["uuid"]).update(status="PAID")
    Payroll.objects.filter(pk=payroll["uuid"]).update(status="PAID")
    closed = mutate(local, "closePayroll", {"id": payroll["uuid"]}, "errors { code }")
    assert [e["code"] for e in closed["errors"]] == ["OUT_OF_SCOPE"]
    assert Payroll.objects.get(pk=payroll["uuid"]).status == "PAID"

    # a national user may
    assert mutate(national, "closePayroll", {"id": payroll["uuid"]}, PAYROLL)["errors"] == []


def test_a_local_user_generates_within_their_scope_and_may_act_on_that_payroll(
        gql, make_user, group_plan, officer, country, create_payroll, expected_amounts, mutate, payroll_rights, setup_payments):
    ids = setup_payments(gql(make_user(payroll_rights)), group_plan)
    local = gql(officer)
    elsewhere = create_payroll(local, ids, locationIds=[str(country["C2"].pk)])
    assert [e["code"] for e in elsewhere["errors"]] == ["OUT_OF_SCOPE"] and not Payroll.objects.exists()

    own = create_payroll(local, ids)["payroll"]
    assert (own["controlCount"], own["controlSum"]) == (4, sum(expected_amounts[c] for c in IN_C1))
    assert set(BenefitConsumption.objects.values_list("group__code", flat=True)) == set(IN_C1)
    rejected = mutate(local, "rejectPayroll", {"id": own["uuid"]}, PAYROLL)
    assert rejected["errors"] == [] and rejected["payroll"]["status"] == "REJECTED"
    assert mutate(local, "deletePayroll", {"id": own["uuid"]}, PAYROLL)["errors"] == []


def test_a_reissue_pays_again_only_the_failures_in_scope(gql, make_user, group_plan, officer, create_payroll, expected_amounts, payroll_rights, setup_payments):
    national = gql(make_user(payroll_rights))
    ids = setup_payments(national, group_plan)
    payroll = create_payroll(national, ids)["payroll"]
    BenefitConsumption.objects.filter(payroll_id=payroll["uuid"]).update(status="FAILED")
    Payroll.objects.filter(pk=payroll["uuid"]).update(status="PARTIALLY_PAID")

    again = create_payroll(gql(officer), ids, fromFailedInvoicesPayrollId=payroll["uuid"])["payroll"]
    assert (again["controlCount"], again["controlSum"]) == (4, sum(expected_amounts[c] for c in IN_C1))
    assert set(BenefitConsumption.objects.filter(payroll_id=again["uuid"])
               .values_list("group__code", flat=True)) == set(IN_C1)


def test_a_checker_approves_only_a_payroll_wholly_in_their_scope(
        gql, make_user, admin_user, group_plan, country, create_payroll, payroll_rights, route_approvals, setup_payments):
    deciders = {}
    for scope in ("C1", None):
        checker = make_user(["core.task.view", "core.task.resolve", "payroll.payroll.approve", "payroll.payroll.search",
                             *([] if scope else ["location.scope.national"])])
        if scope:
            set_user_locations(admin_user, checker, [country[scope].pk])
        deciders[scope] = checker
    create_task_group(admin_user, code="PAY-CHECK", completion_policy="ANY",
                      checker_ids=[c.pk for c in deciders.values()])
    route_approvals("PAY-CHECK")
    maker = gql(make_user(payroll_rights))
    created = create_payroll(maker, setup_payments(maker, group_plan))
    task = created["task"]["uuid"]

    resolve = "mutation($i: ResolveTaskMutationInput!) { resolveTask(input: $i) { errors { code message } } }"
    refused = gql(deciders["C1"]).ok(resolve, {"i": {"id": task, "businessStatus": "APPROVED"}})["resolveTask"]
    assert [e["code"] for e in refused["errors"]] == ["OUT_OF_SCOPE"]
    assert ApprovalTask.objects.get(pk=task).status == "ACCEPTED" and not ApprovalDecision.objects.exists()
    assert Payroll.objects.get(pk=created["payroll"]["uuid"]).status == "PENDING_APPROVAL"

    approved = gql(deciders[None]).ok(resolve, {"i": {"id": task, "businessStatus": "APPROVED"}})["resolveTask"]
    assert approved["errors"] == []
    assert Payroll.objects.get(pk=created["payroll"]["uuid"]).status == "APPROVED"


def test_a_checker_does_not_see_the_task_of_a_payroll_paying_only_elsewhere(
        gql, make_user, admin_user, group_plan, country, create_payroll, payroll_rights, route_approvals, setup_payments):
    checker = make_user(["core.task.view", "core.task.resolve", "payroll.payroll.approve", "payroll.payroll.search"])
    set_user_locations(admin_user, checker, [country["C1"].pk])
    national_checker = make_user(["core.task.view", "core.task.resolve", "payroll.payroll.approve",
                                  "payroll.payroll.search", "location.scope.national"])
    create_task_group(admin_user, code="PAY-CHECK", completion_policy="ANY", checker_ids=[checker.pk, national_checker.pk])
    route_approvals("PAY-CHECK")
    maker = gql(make_user(payroll_rights))
    ids = setup_payments(maker, group_plan)
    elsewhere = create_payroll(maker, ids, locationIds=[str(country["C2"].pk)])["task"]["uuid"]
    spanning = create_payroll(maker, ids)["task"]["uuid"]

    tasks = "{ task { edges { node { uuid businessData } } } }"
    seen = {e["node"]["uuid"] for e in gql(checker).ok(tasks)["task"]["edges"]}
    assert seen == {spanning}  # a payroll with payments in C1 is theirs to see (not to approve alone)
    assert {e["node"]["uuid"] for e in gql(national_checker).ok(tasks)["task"]["edges"]} == {elsewhere, spanning}
    resolve = "mutation($i: ResolveTaskMutationInput!) { resolveTask(input: $i) { errors { code } } }"
    refused = gql(checker).ok(resolve, {"i": {"id": elsewhere, "businessStatus": "APPROVED"}})["resolveTask"]
    assert [e["code"] for e in refused["errors"]] == ["NOT_FOUND"]
    assert ApprovalTask.objects.get(pk=elsewhere).status == "ACCEPTED" and not ApprovalDecision.objects.exists()


def test_cycles_and_payment_plans_are_configured_nationally(gql, officer, group_plan, mutate):
    result = mutate(gql(officer), "createPaymentCycle", {"code": "LOCAL", "startDate": "2026-01-01",
                                                         "endDate": "2026-01-31"}, "paymentCycle { uuid }")
    assert [e["code"] for e in result["errors"]] == ["OUT_OF_SCOPE"]
    plan = mutate(gql(officer), "createPaymentPlan", {
        "code": "LOCAL", "name": "Local", "benefitPlanId": str(group_plan.pk), "calculationRule": {"fixed": 1},
        "currency": "BIF", "minorUnit": 0}, "paymentPlan { uuid }")
    assert [e["code"] for e in plan["errors"]] == ["OUT_OF_SCOPE"]
