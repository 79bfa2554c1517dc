"""Closing through maker-checker (payroll.reconcile), and the round rule per commune."""

from __future__ import annotations

import pytest

from modules.payroll.models import Payroll

pytestmark = pytest.mark.django_db

CLOSE = ('mutation($i: ClosePayrollMutationInput!) { closePayroll(input: $i) { errors { code message } '
         'payroll { status } task { uuid status } } }')


def pay_all(sent, provider_files, upload_result):
    rows = [[r, "PAID", f"T-{n}"] for n, r in enumerate(sent.references)]
    file = upload_result(sent.user, provider_files.csv(["reference", "status", "transaction_id"], rows), point="BANK")
    assert file.status == "SUCCESS", file.error


def test_closing_waits_for_a_checker_when_routed(sent_payroll, gql, make_user, provider_files, upload_result):
    from core.actors import system_actor
    from core.approvals.services import create_task_group, resolve_task, set_approval_route

    sent = sent_payroll
    checker = make_user(["payroll.payroll.close", "payroll.payroll.search", "location.scope.national", "core.task.resolve",
                         "core.task.view"])
    create_task_group(system_actor(), code="RECON-CHECKERS", name="Reconciliation checkers", completion_policy="ANY",
                      checker_ids=[checker.pk])
    set_approval_route(system_actor(), "payroll.reconcile", "RECON-CHECKERS", "tests: a checker closes")
    api = gql(sent.user)
    early = api.ok(CLOSE, {"i": {"id": str(sent.payroll.pk)}})["closePayroll"]
    assert early["errors"][0]["code"] == "INVALID_PAYROLL_STATUS" and early["task"] is None  # nothing paid yet
    pay_all(sent, provider_files, upload_result)
    asked = api.ok(CLOSE, {"i": {"id": str(sent.payroll.pk)}})["closePayroll"]
    assert asked["errors"] == [] and asked["task"]["status"] == "ACCEPTED" and asked["payroll"]["status"] == "PAID"
    assert Payroll.objects.get(pk=sent.payroll.pk).status == "PAID"
    # openIMIS's task screens file a closing under the source payroll_reconciliation, apart from
    # the payroll approvals (source payroll)
    sources = 'query ($s: String) { task(source: $s) { edges { node { uuid source businessEvent } } } }'
    assert gql(checker).ok(sources, {"s": "payroll_reconciliation"})["task"]["edges"] == [
        {"node": {"uuid": asked["task"]["uuid"], "source": "payroll_reconciliation",
                  "businessEvent": "payroll.reconcile"}}]
    assert gql(checker).ok(sources, {"s": "payroll"})["task"]["edges"] == []
    resolve_task(checker, asked["task"]["uuid"], "APPROVED")
    assert Payroll.objects.get(pk=sent.payroll.pk).status == "RECONCILED"


def test_a_new_round_in_a_commune_waits_for_the_previous_one(make_payroll, provider_files, upload_result, gql):
    from core.errors import ValidationFailed
    from modules.location.models import Location
    from modules.payroll.services import configuration, generation, lifecycle

    first = make_payroll(name="Round 1", cycle_code="2026-01", send=True)
    commune = Location.objects.get(code="C1")
    # the whole-plan payroll of the fixture is not a commune round; a commune round is
    round_one, _ = generation.create_payroll(first.user, name="C1 round 1", payment_plan_id=first.plan.pk,
                                      payment_cycle_id=configuration.create_cycle(first.user, code="2026-02",
                                                                        start_date=first.cycle.start_date,
                                                                        end_date=first.cycle.end_date).pk,
                                      payment_point_id=first.point.pk, location_ids=[str(commune.pk)])
    cycle3 = configuration.create_cycle(first.user, code="2026-03", start_date=first.cycle.start_date,
                              end_date=first.cycle.end_date)
    with pytest.raises(ValidationFailed) as refused:
        generation.check_payroll_request(first.user, name="C1 round 2", payment_plan_id=first.plan.pk,
                                  payment_cycle_id=cycle3.pk, payment_point_id=first.point.pk,
                                  location_ids=[str(commune.pk)])
    assert [e.code for e in refused.value.errors] == ["PREVIOUS_ROUND_OPEN"]
    assert "C1 round 1" in refused.value.errors[0].message
    # another commune is another round
    other = Location.objects.get(code="C2")
    generation.check_payroll_request(first.user, name="C2 round 1", payment_plan_id=first.plan.pk,
                              payment_cycle_id=cycle3.pk, payment_point_id=first.point.pk, location_ids=[str(other.pk)])
    # once the round is paid and reconciled, the next may start
    from modules.payroll.models import BenefitConsumption
    from modules.payroll.sending import send_payroll

    lifecycle.mark_approved(first.user, round_one.pk)
    lifecycle.start_sending(first.user, round_one.pk)
    send_payroll(round_one.pk, first.user)
    codes = list(BenefitConsumption.objects.filter(payroll=round_one).values_list("code", flat=True))
    rows = [[c, "PAID", f"R1-{n}"] for n, c in enumerate(codes)]
    upload_result(first.user, provider_files.csv(["reference", "status", "transaction_id"], rows), point="BANK")
    assert lifecycle.close_payroll(first.user, round_one.pk).status == "RECONCILED"
    generation.check_payroll_request(first.user, name="C1 round 2", payment_plan_id=first.plan.pk,
                              payment_cycle_id=cycle3.pk, payment_point_id=first.point.pk,
                              location_ids=[str(commune.pk)])
