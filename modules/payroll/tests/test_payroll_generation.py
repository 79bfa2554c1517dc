"""Payroll generation, control totals, approval, rejection and deletion, through GraphQL."""

from __future__ import annotations

import datetime
import json
import threading
import uuid
from typing import Any

import pytest
from django.db import IntegrityError, connection, connections, transaction

from core.approvals.services import create_task_group
from core.history import acting_as
from core.models import ApprovalTask, HistoryEntry
from modules.payroll.adaptors.base import config_problems
from modules.payroll.models import BenefitConsumption, Payroll
from modules.payroll.services import configuration, generation
from modules.social_protection.models import GroupBeneficiary

pytestmark = pytest.mark.django_db


PAYMENTS_BY_STATUS = """query($p: UUID!, $s: String) { benefitConsumptionByPayroll(payrollUuid: $p, status: $s) {
    totalCount edges { node { status } } } }"""


def test_generation_applies_the_rule_pays_the_primary_recipient_and_records_control_totals(
        gql, make_user, group_plan, create_payroll, expected_amounts, ok, payroll_rights, setup_payments):
    client = gql(make_user(payroll_rights))
    ids = setup_payments(client, group_plan)
    payroll = ok(create_payroll(client, ids))["payroll"]
    assert payroll["status"] == "APPROVED"  # no checker configured: approved at once
    assert payroll["controlCount"] == 8 and payroll["controlSum"] == sum(expected_amounts.values())
    assert payroll["paymentMethod"] == "file"

    page = client.ok("""query($p: UUID!) { benefitConsumptionByPayroll(payrollUuid: $p, orderBy: ["code"]) {
        totalCount edges { node { code amount currency status group { code } individual { firstName } } } } }""",
                     {"p": payroll["uuid"]})["benefitConsumptionByPayroll"]
    assert page["totalCount"] == 8
    nodes = [e["node"] for e in page["edges"]]
    assert {n["group"]["code"]: n["amount"] for n in nodes} == expected_amounts
    for node in nodes:
        i = int(node["group"]["code"][3:])
        assert node["individual"]["firstName"] == (f"P{i}-0" if i % 4 == 0 else f"P{i}-1")
        assert node["status"] == "APPROVED" and node["currency"] == "BIF" and node["code"].startswith("PAY-")
    assert len({n["code"] for n in nodes}) == 8


def test_a_beneficiary_is_instructed_once_per_cycle(gql, make_user, group_plan, create_payroll, expected_amounts, ok, payroll_rights, setup_payments):
    client = gql(make_user(payroll_rights))
    ids = setup_payments(client, group_plan)
    GroupBeneficiary.objects.filter(group__code="HH-007").update(status="SUSPENDED")
    first = ok(create_payroll(client, ids, locationIds=[]))["payroll"]
    assert first["controlCount"] == 7  # the suspended household is not paid

    again = create_payroll(client, ids)
    assert again["errors"][0]["code"] == "NOTHING_TO_PAY" and Payroll.objects.count() == 1

    # once the household is active again, a second payroll in the cycle pays only it
    GroupBeneficiary.objects.filter(group__code="HH-007").update(status="ACTIVE")
    second = ok(create_payroll(client, ids, name="January, late"))["payroll"]
    assert (second["controlCount"], second["controlSum"]) == (1, expected_amounts["HH-007"])

    # the database itself refuses a second live instruction for the same beneficiary and cycle
    row = BenefitConsumption.objects.filter(payroll_id=second["uuid"]).get()
    with pytest.raises(IntegrityError), transaction.atomic():
        BenefitConsumption.objects.create(
            code="PAY-DUPLICATE", payroll_id=first["uuid"], payment_cycle_id=row.payment_cycle_id,
            beneficiary_id=row.beneficiary_id, individual_id=row.individual_id, payment_point_id=row.payment_point_id,
            amount=1, currency="BIF")
    # and an instruction whose payroll, point, recipient or household does not exist (checked
    # once per statement, not per row)
    import uuid

    for missing in ({"payroll_id": uuid.uuid4()}, {"payment_point_id": uuid.uuid4()},
                    {"individual_id": uuid.uuid4()}, {"group_id": uuid.uuid4()}):
        what = next(iter(missing)).removesuffix("_id").replace("_", " ")
        with pytest.raises(IntegrityError, match=f"missing {what}"), transaction.atomic():
            BenefitConsumption.objects.create(**{
                "code": "PAY-ORPHAN", "payroll_id": first["uuid"], "payment_cycle_id": row.payment_cycle_id,
                "beneficiary_id": uuid.uuid4(), "individual_id": row.individual_id,
                "payment_point_id": row.payment_point_id, "amount": 1, "currency": "BIF", **missing})


def test_payroll_limited_to_locations_and_routed_by_location(gql, make_user, group_plan, country, create_payroll, mutate, ok, payroll_rights, setup_payments):
    client = gql(make_user(payroll_rights))
    ids = setup_payments(client, group_plan, routing={"locations": [str(country["C1"].pk)]})
    other = ok(mutate(client, "createPaymentPoint", {
        "code": "MOBILE", "adaptor": "file", "routing": {"locations": [str(country["C2"].pk)], "priority": 1}},
        "paymentPoint { uuid }"))["paymentPoint"]["uuid"]
    only_h1 = ok(create_payroll(client, ids, paymentPointId=None, locationIds=[str(country["H1"].pk)]))["payroll"]
    assert only_h1["controlCount"] == 2  # HH-000 and HH-004 live in H1

    rest = ok(create_payroll(client, ids, name="rest", paymentPointId=None))["payroll"]
    routed = dict(BenefitConsumption.objects.filter(payroll_id=rest["uuid"])
                  .values_list("group__code", "payment_point_id"))
    assert {str(v) for k, v in routed.items() if k in ("HH-001", "HH-005")} == {ids["point"]}
    assert {str(v) for k, v in routed.items() if k in ("HH-002", "HH-003", "HH-006", "HH-007")} == {other}

    found = client.ok('query($c: UUID) { payroll(paymentCycle_Id: $c, status: "APPROVED") { totalCount } }',
                      {"c": ids["cycle"]})["payroll"]["totalCount"]
    assert found == 2


def test_unrouted_beneficiaries_are_refused(gql, make_user, group_plan, country, create_payroll, payroll_rights, setup_payments):
    client = gql(make_user(payroll_rights))
    ids = setup_payments(client, group_plan, routing={"locations": [str(country["C1"].pk)]})
    refused = create_payroll(client, ids, paymentPointId=None)
    assert refused["errors"][0]["code"] == "NO_PAYMENT_POINT"
    assert "4 beneficiaries" in refused["errors"][0]["message"] and Payroll.objects.count() == 0


def test_routing_narrowed_before_the_job_runs_fails_the_job_and_writes_nothing(gql, make_user, group_plan, country, mutate, ok, payroll_rights, setup_payments):
    from core.jobs import run_job
    from core.models import Job
    from modules.payroll.models import PaymentPoint

    client = gql(make_user(payroll_rights))
    ids = setup_payments(client, group_plan, routing={"locations": [str(country["P1"].pk)]})
    started = ok(mutate(client, "createPayroll", {"name": "January", "paymentPlanId": ids["plan"],
                                                  "paymentCycleId": ids["cycle"]}, "job { uuid }"))
    PaymentPoint.objects.filter(pk=ids["point"]).update(routing={"locations": [str(country["C1"].pk)]})
    run_job(started["job"]["uuid"])
    job = Job.objects.get(pk=started["job"]["uuid"])
    assert job.state == "FAILED" and "4 beneficiaries are in no payment point" in job.message
    assert not Payroll.all_objects.exists() and not BenefitConsumption.all_objects.exists()


def test_calculation_rule_and_secrets_are_validated(gql, make_user, group_plan, mutate, ok, payroll_rights):
    client = gql(make_user(payroll_rights))
    bad = mutate(client, "createPaymentPlan", {
        "code": "X", "name": "X", "benefitPlanId": str(group_plan.pk), "currency": "USD", "minorUnit": 2,
        "calculationRule": {"fixed": "10.005", "top_ups": [{"criteria": {"on": "nobody"}, "amount": 1}]}},
        "paymentPlan { uuid }")
    assert {e["code"] for e in bad["errors"]} == {"INVALID_AMOUNT", "INVALID_CRITERIA"}

    literal = mutate(client, "createPaymentPoint", {"code": "MM", "adaptor": "file",
                                                     "config": {"api_key": "s3cr3t"}}, "paymentPoint { uuid }")
    assert literal["errors"][0]["code"] == "LITERAL_SECRET"
    made = ok(mutate(client, "createPaymentPoint", {"code": "MM", "adaptor": "file",
                                                     "config": {"api_key": {"env": "COREMIS_PSP_MM_KEY"}}},
                     "paymentPoint { uuid configuredKeys }"))
    assert made["paymentPoint"]["configuredKeys"] == ["api_key"]
    # no query can read the configuration itself
    refused = client.execute("{ paymentPoint { edges { node { config } } } }")
    assert refused.get("errors")
    methods = client.ok("{ paymentMethods { paymentMethods { name } } }")["paymentMethods"]["paymentMethods"]
    assert {"name": "file"} in methods


def test_a_public_key_may_be_literal_in_a_point_config():
    config = {"provider_public_key": "-----BEGIN PUBLIC KEY-----", "signing_key": "-----BEGIN PRIVATE KEY-----"}
    assert config_problems(config) == ['config.signing_key must be a reference like {"env": "NAME"}, not a value']


@pytest.fixture
def checkers(make_user, admin_user, route_approvals) -> list[Any]:
    people = [make_user(["core.task.view", "core.task.resolve", "payroll.payroll.approve", "location.scope.national"])
              for _ in range(2)]
    create_task_group(admin_user, code="PAY-CHECK", completion_policy="ANY", checker_ids=[p.pk for p in people])
    route_approvals("PAY-CHECK")
    return people


RESOLVE = "mutation($i: ResolveTaskMutationInput!) { resolveTask(input: $i) { errors { code message } } }"


def test_maker_checker_approval_and_control_totals(gql, make_user, group_plan, checkers, create_payroll, mutate, ok, payroll_rights, setup_payments):
    maker = gql(make_user(payroll_rights))
    ids = setup_payments(maker, group_plan)
    created = ok(create_payroll(maker, ids))
    assert created["payroll"]["status"] == "PENDING_APPROVAL" and created["task"]["status"] == "ACCEPTED"
    cannot_pay = mutate(maker, "makePaymentForPayroll", {"id": created["payroll"]["uuid"]}, "job { uuid }")
    assert cannot_pay["errors"][0]["code"] == "INVALID_PAYROLL_STATUS"

    # someone changes an amount behind the payroll's back: the checker's approval fails, nothing moves
    row = BenefitConsumption.objects.filter(payroll_id=created["payroll"]["uuid"]).first()
    BenefitConsumption.objects.filter(pk=row.pk).update(amount=row.amount + 1)
    gql(checkers[0]).ok(RESOLVE, {"i": {"id": created["task"]["uuid"], "businessStatus": "APPROVED"}})
    task = ApprovalTask.objects.get(pk=created["task"]["uuid"])
    assert task.status == "ERROR" and "control totals" in str(task.error)
    assert Payroll.objects.get(pk=created["payroll"]["uuid"]).status == "PENDING_APPROVAL"
    assert set(BenefitConsumption.objects.values_list("status", flat=True)) == {"CREATED"}


def test_checker_approval_approves_the_payroll(gql, make_user, group_plan, checkers, create_payroll, ok, payroll_rights, setup_payments):
    maker = gql(make_user(payroll_rights))
    ids = setup_payments(maker, group_plan)
    created = ok(create_payroll(maker, ids))
    decided = gql(checkers[1]).ok(RESOLVE, {"i": {"id": created["task"]["uuid"], "businessStatus": "APPROVED"}})
    assert decided["resolveTask"]["errors"] == []
    payroll = Payroll.objects.get(pk=created["payroll"]["uuid"])
    assert payroll.status == "APPROVED"
    # approval is the payroll's: its rows are untouched (no new version, no history row) and
    # clients see every unsent payment as APPROVED, in the list and through its filter
    assert set(payroll.instructions.values_list("status", "version")) == {("CREATED", 1)}
    instruction_history = HistoryEntry.objects.filter(table_name=BenefitConsumption._meta.db_table)
    assert not instruction_history.filter(operation="U").exists()
    listed = maker.ok(PAYMENTS_BY_STATUS, {"p": str(payroll.pk), "s": "APPROVED"})["benefitConsumptionByPayroll"]
    assert listed["totalCount"] == payroll.control_count
    assert {e["node"]["status"] for e in listed["edges"]} == {"APPROVED"}
    created_ones = maker.ok(PAYMENTS_BY_STATUS, {"p": str(payroll.pk), "s": "CREATED"})
    assert created_ones["benefitConsumptionByPayroll"]["totalCount"] == 0
    # who approved what: the payroll's history version (the maker's approved action) names the
    # checker and the totals approved
    approval = HistoryEntry.objects.filter(table_name=Payroll._meta.db_table, row_id=payroll.pk,
                                           data__status="APPROVED").get()
    assert approval.context["approved_by"] == str(checkers[1].pk)
    assert (approval.data["control_count"], approval.data["control_sum"]) == (payroll.control_count,
                                                                              payroll.control_sum)


def test_rejecting_releases_beneficiaries_and_deleting_removes_the_payroll(gql, make_user, group_plan, checkers, create_payroll, mutate, ok, payroll_rights, setup_payments):
    client = gql(make_user(payroll_rights))
    ids = setup_payments(client, group_plan)
    first = ok(create_payroll(client, ids))["payroll"]
    rejected = ok(mutate(client, "rejectPayroll", {"id": first["uuid"]}, "payroll { status }"))
    assert rejected["payroll"]["status"] == "REJECTED"
    assert set(BenefitConsumption.objects.filter(payroll_id=first["uuid"]).values_list("status", flat=True)) == {"CANCELLED"}

    second = ok(create_payroll(client, ids, name="January, corrected"))["payroll"]
    assert second["controlCount"] == 8

    ok(mutate(client, "deletePayroll", {"id": first["uuid"]}, "payroll { uuid }"))
    listed = client.ok("{ payroll { totalCount edges { node { name } } } }")["payroll"]
    assert listed["totalCount"] == 1 and listed["edges"][0]["node"]["name"] == "January, corrected"


def test_generation_runs_in_a_background_job_through_the_queue(gql, make_user, group_plan, run_jobs,
                                                               django_capture_on_commit_callbacks, expected_amounts, mutate, ok, payroll_rights, setup_payments):
    client = gql(make_user(payroll_rights))
    ids = setup_payments(client, group_plan)
    payload = {"name": "January", "paymentPlanId": ids["plan"], "paymentCycleId": ids["cycle"],
               "paymentPointId": ids["point"]}
    with django_capture_on_commit_callbacks(execute=True):
        started = ok(mutate(client, "createPayroll", payload, "job { uuid state }"))
    assert started["job"]["state"] == "QUEUED"
    assert not Payroll.objects.exists()  # nothing is written before the job runs
    assert run_jobs() == 1
    job = client.ok('query($k: String) { jobs(kind: $k) { edges { node { uuid state result } } } }',
                    {"k": "payroll.generate"})["jobs"]["edges"][0]["node"]
    assert job["state"] == "SUCCEEDED"
    result = json.loads(job["result"]) if isinstance(job["result"], str) else job["result"]
    payroll = Payroll.objects.get(pk=result["payroll_id"])
    assert (result["count"], result["sum"]) == (payroll.control_count, payroll.control_sum) == (8, sum(expected_amounts.values()))
    assert result["status"] == payroll.status == "APPROVED" and result["task_id"] is None


def test_a_generation_job_rerun_after_it_committed_reports_the_same_payroll(gql, make_user, group_plan, create_payroll, ok, payroll_rights, setup_payments):
    from core.jobs import run_job
    from core.models import Job

    client = gql(make_user(payroll_rights))
    ids = setup_payments(client, group_plan)
    first = ok(create_payroll(client, ids))
    # the worker died after the commit, before the job was marked finished: it runs again
    job = Job.objects.get(kind="payroll.generate")
    Job.objects.filter(pk=job.pk).update(state=Job.QUEUED)
    run_job(str(job.pk))
    job.refresh_from_db()
    assert job.state == "SUCCEEDED" and job.result["payroll_id"] == first["payroll"]["uuid"]
    assert Payroll.objects.count() == 1 and BenefitConsumption.objects.count() == 8


def test_refusals_come_from_the_mutation_and_start_nothing(gql, make_user, group_plan, mutate, payroll_rights, setup_payments):
    from core.models import Job

    client = gql(make_user(payroll_rights))
    ids = setup_payments(client, group_plan)
    missing_plan = mutate(client, "createPayroll", {"name": "x", "paymentPlanId": ids["cycle"],
                                                    "paymentCycleId": ids["cycle"]}, "job { uuid }")
    assert missing_plan["errors"][0]["code"] == "NOT_FOUND" and missing_plan["job"] is None
    no_name = mutate(client, "createPayroll", {"name": " ", "paymentPlanId": ids["plan"],
                                               "paymentCycleId": ids["cycle"]}, "job { uuid }")
    assert no_name["errors"][0]["code"] == "REQUIRED"
    assert not Job.objects.filter(kind="payroll.generate").exists() and not Payroll.objects.exists()


# --- what generation trusts, and what it never gives up ---------------------------------------


def _payment_setup(user: Any, rule: dict[str, Any], group_plan: Any) -> dict[str, Any]:
    with acting_as(user):
        cycle = configuration.create_cycle(user, code="2026-01", start_date=datetime.date(2026, 1, 1),
                                           end_date=datetime.date(2026, 1, 31))
        plan = configuration.create_plan(user, code="PP-1", name="Monthly", benefit_plan_id=group_plan.pk,
                                         calculation_rule=rule, currency="BIF", minor_unit=0)
        point = configuration.create_point(user, code="BANK", adaptor="file")
    return {"payment_plan_id": plan.pk, "payment_cycle_id": cycle.pk, "payment_point_id": point.pk}


def test_writes_after_a_generation_get_the_full_reference_check(make_user, group_plan, generation_rule, payroll_rights):
    """Generation skips the reference trigger for its own statement only: later in the same
    transaction, an orphan or a second live payment for a beneficiary is still refused."""
    user = make_user(payroll_rights)
    ids = _payment_setup(user, generation_rule, group_plan)
    with transaction.atomic(), acting_as(user):
        payroll, totals = generation.create_payroll(user, name="January", **ids)
        assert totals["count"] == 8
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('coremis.payroll_generation', true)")
            assert cursor.fetchone()[0] == ""
        row = BenefitConsumption.objects.filter(payroll=payroll).first()
        fields = {"payroll_id": payroll.pk, "payment_cycle_id": row.payment_cycle_id, "amount": 1, "currency": "BIF",
                  "individual_id": row.individual_id, "payment_point_id": row.payment_point_id}
        with pytest.raises(IntegrityError, match="missing individual"), transaction.atomic():
            BenefitConsumption.objects.create(**{**fields, "code": "PAY-ORPHAN", "beneficiary_id": uuid.uuid4(),
                                                 "individual_id": uuid.uuid4()})
        with pytest.raises(IntegrityError, match="payroll_one_payment_per_cycle"), transaction.atomic():
            BenefitConsumption.objects.create(**{**fields, "code": "PAY-TWICE", "beneficiary_id": row.beneficiary_id})
    assert BenefitConsumption.objects.filter(payroll=payroll).count() == 8


@pytest.mark.django_db(transaction=True)
def test_two_generations_of_one_cycle_never_both_pay(make_user, group_plan, blocked_by, generation_rule, payroll_rights):
    """A second generation in a cycle waits for the first one's advisory lock, then finds
    everyone paid: NOTHING_TO_PAY, and every beneficiary holds one payment."""
    user = make_user(payroll_rights)
    ids = _payment_setup(user, generation_rule, group_plan)
    generated, release = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def first() -> None:
        try:
            with transaction.atomic(), acting_as(user):
                outcome["first"] = generation.create_payroll(user, name="January", **ids)
                holder = connections["default"]  # this thread's session (not the proxy)
                holder.inc_thread_sharing()  # the test asks who waits on it
                outcome["holder"] = holder
                generated.set()
                release.wait(30)
        except Exception as exc:  # pragma: no cover - reported by the assertions below
            outcome["first_error"] = exc
        finally:
            generated.set()
            if "holder" in outcome:
                outcome["holder"].dec_thread_sharing()
            connection.close()

    def second() -> None:
        try:
            with acting_as(user):
                outcome["second"] = generation.create_payroll(user, name="January again", **ids)
        except Exception as exc:
            outcome["second_error"] = exc
        finally:
            connection.close()

    workers = [threading.Thread(target=first), threading.Thread(target=second)]
    workers[0].start()
    assert generated.wait(30) and "first_error" not in outcome, outcome
    try:
        workers[1].start()
        assert blocked_by(outcome["holder"]), outcome  # the second generation waits for the first
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            assert cursor.fetchone()[0] == 1  # on the cycle's advisory lock
        assert workers[1].is_alive(), outcome
    finally:
        release.set()
        for worker in workers:
            worker.join(30)
    assert outcome["first"][1]["count"] == 8
    assert getattr(outcome.get("second_error"), "code", None) == "NOTHING_TO_PAY", outcome
    assert Payroll.objects.count() == 1
    paid = list(BenefitConsumption.objects.filter(payment_cycle_id=ids["payment_cycle_id"])
                .values_list("beneficiary_id", flat=True))
    assert len(paid) == len(set(paid)) == 8
