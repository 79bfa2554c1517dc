"""A payment point pays only recipients with the identifier its provider pays to: generation
routes the others to a point that can pay them or refuses them, listed in the job's result;
the adaptor never sends a payment without it (issue 9.9)."""

from __future__ import annotations

import uuid

import pytest

from modules.individual.models import Individual
from modules.payroll.models import BenefitConsumption
from modules.payroll.sending import send_payroll
from modules.payroll.services import selectors

pytestmark = pytest.mark.django_db

MOBILE = {"base_url": "https://mm.example", "client_secret": {"env": "COREMIS_PSP_MM"}}


def without_phone(*codes: str) -> list[str]:
    """Clear the phone number of these households' recipients (the second member, or the only one)."""
    people = []
    for code in codes:
        i = int(code[3:])
        person = Individual.objects.get(first_name=f"P{i}-{1 if i % 4 else 0}")
        person.json_ext = {k: v for k, v in person.json_ext.items() if k != "phone"}
        if code == codes[0]:
            person.json_ext["phone"] = "  "  # blank is as good as missing
        Individual.objects.filter(pk=person.pk).update(json_ext=person.json_ext)
        people.append(str(person.pk))
    return people


def test_recipients_without_a_phone_are_refused_by_a_mobile_money_payroll_and_listed(
        gql, make_user, group_plan, monkeypatch, allow_outbound, create_payroll, expected_amounts, mutate, ok, payroll_rights, setup_payments):
    allow_outbound(monkeypatch, "https://mm.example")
    client = gql(make_user(payroll_rights))
    ids = setup_payments(client, group_plan)
    mobile = ok(mutate(client, "createPaymentPoint", {"code": "MM", "adaptor": "mobile_money", "config": MOBILE},
                       "paymentPoint { uuid }"))["paymentPoint"]["uuid"]
    unreachable = without_phone("HH-001", "HH-002")
    created = create_payroll(client, {**ids, "point": mobile})
    payroll, job = created["payroll"], created["job"]
    assert (payroll["controlCount"], payroll["controlSum"]) == (
        6, sum(v for k, v in expected_amounts.items() if k not in ("HH-001", "HH-002")))
    refused = job["refused_no_identifier"]
    assert refused["count"] == 2
    assert sorted(r["recipient_id"] for r in refused["recipients"]) == sorted(unreachable)
    assert {(r["payment_point"], r["missing"]) for r in refused["recipients"]} == {("MM", "phone")}
    assert not BenefitConsumption.objects.filter(individual_id__in=unreachable).exists()

    # the two left out are still to be paid this cycle, and a file point (which pays by name) can
    by_file = create_payroll(client, ids, name="By file")["payroll"]
    assert by_file["controlCount"] == 2
    assert sorted(map(str, BenefitConsumption.objects.filter(payroll_id=by_file["uuid"])
                      .values_list("individual_id", flat=True))) == sorted(unreachable)


def test_routed_recipients_without_a_phone_go_to_a_point_that_can_pay_them(
        gql, make_user, group_plan, country, monkeypatch, allow_outbound, create_payroll, mutate, ok, payroll_rights, setup_payments):
    allow_outbound(monkeypatch, "https://mm.example")
    client = gql(make_user(payroll_rights))
    province = [str(country["P1"].pk)]
    ids = setup_payments(client, group_plan, routing={"locations": province, "priority": 2})  # the file point
    mobile = ok(mutate(client, "createPaymentPoint", {
        "code": "MM", "adaptor": "mobile_money", "config": MOBILE, "routing": {"locations": province, "priority": 1}},
        "paymentPoint { uuid }"))["paymentPoint"]["uuid"]
    unreachable = without_phone("HH-001", "HH-002")
    created = create_payroll(client, ids, paymentPointId=None)
    assert created["payroll"]["controlCount"] == 8 and created["job"]["refused_no_identifier"]["count"] == 0
    points = dict(BenefitConsumption.objects.values_list("individual_id", "payment_point_id"))
    assert {str(points[uuid.UUID(p)]) for p in unreachable} == {ids["point"]}
    assert {str(v) for k, v in points.items() if str(k) not in unreachable} == {mobile}


def test_nobody_reachable_is_nothing_to_pay_and_says_why(gql, make_user, group_plan, monkeypatch, allow_outbound, expected_amounts, mutate, ok, payroll_rights, setup_payments):
    allow_outbound(monkeypatch, "https://mm.example")
    client = gql(make_user(payroll_rights))
    ids = setup_payments(client, group_plan)
    mobile = ok(mutate(client, "createPaymentPoint", {"code": "MM", "adaptor": "mobile_money", "config": MOBILE},
                       "paymentPoint { uuid }"))["paymentPoint"]["uuid"]
    without_phone(*expected_amounts)
    from core.jobs import run_job
    from core.models import Job

    started = ok(mutate(client, "createPayroll", {"name": "January", "paymentPlanId": ids["plan"],
                                                  "paymentCycleId": ids["cycle"], "paymentPointId": mobile},
                        "job { uuid }"))
    run_job(started["job"]["uuid"])
    job = Job.objects.get(pk=started["job"]["uuid"])
    assert job.state == "FAILED" and "8 recipients lack the identifier" in job.message


def test_the_adaptor_never_sends_a_payment_without_a_phone_number(admin_user, group_plan, provider, point_for, sending_payroll):
    simulated, url = provider
    point = point_for(admin_user, url)
    payroll = sending_payroll(admin_user, group_plan, point)
    # the phone is removed after generation (a correction in the registry)
    row = BenefitConsumption.objects.filter(payroll=payroll).order_by("code").first()
    Individual.objects.filter(pk=row.individual_id).update(json_ext={"phone": ""})
    send_payroll(payroll.pk, admin_user)
    assert "" not in {p.msisdn for p in simulated.payments.values()}
    assert row.code not in simulated.receipts
    failed = BenefitConsumption.objects.get(pk=row.pk)
    assert failed.status == "FAILED" and "phone" in failed.status_message
    assert selectors.actual_totals(payroll)[0] == 8
