"""Maker-checker on money is on as shipped, can be routed or unrouted at run time, and /health
says when money moves without approval (issue 9.8)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.approvals.services import configured_task_group, create_task_group
from core.history import history_of
from core.hooks import hook
from core.models import ApprovalRoute, Job
from modules.payroll.models import Payroll

pytestmark = pytest.mark.django_db

SHIPPED = Path(__file__).resolve().parents[3] / "modules_config.json"
RESOLVE = "mutation($i: ResolveTaskMutationInput!) { resolveTask(input: $i) { errors { code message } } }"
SET_ROUTE = """mutation($i: SetApprovalRouteMutationInput!) { setApprovalRoute(input: $i) {
    errors { code message } route { needsApproval source } } }"""


@pytest.fixture
def as_shipped() -> None:
    """Forget the tests' own route: the deployment's configuration decides again."""
    ApprovalRoute.all_objects.filter(action="payroll.approve").delete()


def health() -> tuple[bool, str]:
    checks = {name: check for found in hook().coremis_health_checks() for name, check in found.items()}
    return checks["payroll_approval"]()


def test_the_shipped_configuration_needs_a_checker_for_every_payroll(gql, make_user, admin_user, group_plan,
                                                                    as_shipped, create_payroll, mutate, payroll_rights, setup_payments):
    shipped = json.loads(SHIPPED.read_text())["payroll"]["approvals"]
    assert shipped == {"payroll.approve": "PAYROLL-CHECKERS", "payroll.reconcile": "PAYROLL-CHECKERS"}
    assert configured_task_group("payroll.approve") == "PAYROLL-CHECKERS"
    maker = gql(make_user(payroll_rights))
    ids = setup_payments(maker, group_plan)

    # no checker group yet: refused at once, no job started, nothing to send
    refused = mutate(maker, "createPayroll", {"name": "January", "paymentPlanId": ids["plan"],
                                              "paymentCycleId": ids["cycle"], "paymentPointId": ids["point"]},
                     "job { uuid }")
    assert [e["code"] for e in refused["errors"]] == ["TASK_GROUP_MISSING"]
    assert "PAYROLL-CHECKERS" in refused["errors"][0]["message"] and not Job.objects.exists()

    checker = make_user(["core.task.view", "core.task.resolve", "payroll.payroll.approve", "location.scope.national"])
    create_task_group(admin_user, code="PAYROLL-CHECKERS", completion_policy="ANY", checker_ids=[checker.pk])
    created = create_payroll(maker, ids)
    assert created["payroll"]["status"] == "PENDING_APPROVAL" and created["task"]["status"] == "ACCEPTED"
    early = mutate(maker, "makePaymentForPayroll", {"id": created["payroll"]["uuid"]}, "job { uuid }")
    assert [e["code"] for e in early["errors"]] == ["INVALID_PAYROLL_STATUS"]
    assert gql(checker).ok(RESOLVE, {"i": {"id": created["task"]["uuid"], "businessStatus": "APPROVED"}})[
        "resolveTask"]["errors"] == []
    assert Payroll.objects.get(pk=created["payroll"]["uuid"]).status == "APPROVED"
    assert health()[0] is True


def test_unrouting_at_run_time_moves_money_without_a_checker_and_health_says_so(
        gql, make_user, admin_user, group_plan, as_shipped, create_payroll, ok, payroll_rights, setup_payments):
    checker = make_user(["core.task.view", "core.task.resolve", "payroll.payroll.approve", "location.scope.national"])
    create_task_group(admin_user, code="PAYROLL-CHECKERS", completion_policy="ANY", checker_ids=[checker.pk])
    assert health() == (True, "payrolls are approved by task group 'PAYROLL-CHECKERS' (1 checker(s))")
    manager = gql(make_user(["core.approval_route.manage"]))
    unrouted = manager.ok(SET_ROUTE, {"i": {"action": "payroll.approve", "taskGroupCode": None,
                                            "reason": "one-person pilot office"}})["setApprovalRoute"]
    assert unrouted == {"errors": [], "route": {"needsApproval": False, "source": "RUNTIME"}}

    ok_, detail = health()
    assert not ok_ and "money moves without approval" in detail
    maker = gql(make_user(payroll_rights))
    approved = ok(create_payroll(maker, setup_payments(maker, group_plan)))
    assert approved["payroll"]["status"] == "APPROVED" and approved["task"] is None

    manager.ok(SET_ROUTE, {"i": {"action": "payroll.approve", "taskGroupCode": "PAYROLL-CHECKERS",
                                 "reason": "the pilot is over"}})
    assert health()[0] is True
    route = ApprovalRoute.objects.get(action="payroll.approve")
    assert [(h["operation"], h["data"]["reason"]) for h in history_of("core_approvalroute", route.pk)] == [
        ("I", "one-person pilot office"), ("U", "the pilot is over")]


def test_a_checker_group_without_active_checkers_is_reported(make_user, admin_user, as_shipped):
    checker = make_user(["core.task.resolve"])
    create_task_group(admin_user, code="PAYROLL-CHECKERS", completion_policy="ANY", checker_ids=[checker.pk])
    type(checker).objects.filter(pk=checker.pk).update(is_active=False)
    assert health() == (False, "payroll.approve is routed to task group 'PAYROLL-CHECKERS', which has no active "
                               "checker")
