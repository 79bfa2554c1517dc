"""Enrollment and status changes behind maker-checker approval; duplicate review tasks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from core.approvals.services import create_task_group
from core.loader import module_config
from modules.social_protection.models import Beneficiary, GroupBeneficiary

pytestmark = pytest.mark.django_db

RESOLVE = """mutation($i: ResolveTaskMutationInput!) { resolveTask(input: $i) { errors { code message } } }"""


@pytest.fixture
def checkers(make_user, admin_user, monkeypatch) -> list[Any]:
    people = [make_user(["core.task.view", "core.task.resolve", "location.scope.national"]) for _ in range(2)]
    create_task_group(admin_user, code="SP-CHECK", completion_policy="ANY", name="Programme checkers",
                      checker_ids=[p.pk for p in people])
    routes = module_config("social_protection")["approvals"]
    for action in ("social_protection.enroll", "social_protection.change_status"):
        monkeypatch.setitem(routes, action, "SP-CHECK")
    return people


def test_enrollment_waits_for_a_checker_then_runs_once(gql, make_user, households, checkers, run_jobs,
                                                        django_capture_on_commit_callbacks, create_plan, plan_officer_rights):
    maker = make_user(plan_officer_rights + ["core.task.view", "core.task.resolve"])
    client = gql(maker)
    plan = create_plan(client, type="GROUP", code="G-1", name="Group plan")
    with django_capture_on_commit_callbacks(execute=True):
        proposed = client.ok("""mutation { confirmGroupEnrollment(input: {benefitPlanId: "%s", status: "ACTIVE"}) {
            errors { code } job { uuid } task { uuid status } } }""" % plan["uuid"])["confirmGroupEnrollment"]
    assert proposed["job"] is None and proposed["task"]["status"] == "ACCEPTED"
    run_jobs()
    assert GroupBeneficiary.objects.count() == 0  # nothing happens before approval

    own = client.ok(RESOLVE, {"i": {"id": proposed["task"]["uuid"], "businessStatus": "APPROVED"}})
    assert own["resolveTask"]["errors"][0]["code"] in ("SELF_APPROVAL", "NOT_A_CHECKER")

    checker = gql(checkers[0])
    with django_capture_on_commit_callbacks(execute=True):
        decided = checker.ok(RESOLVE, {"i": {"id": proposed["task"]["uuid"],
                                             "businessStatus": json.dumps({str(checkers[0].pk): "APPROVED"})}})
    assert decided["resolveTask"]["errors"] == []
    run_jobs()
    assert GroupBeneficiary.objects.filter(status="ACTIVE").count() == 24
    again = gql(checkers[1]).ok(RESOLVE, {"i": {"id": proposed["task"]["uuid"], "businessStatus": "APPROVED"}})
    assert again["resolveTask"]["errors"][0]["code"] == "TASK_CLOSED"
    run_jobs()
    assert GroupBeneficiary.objects.count() == 24


def test_invalid_status_change_is_refused_before_it_reaches_a_checker(gql, make_user, households, checkers,
                                                                      run_jobs, django_capture_on_commit_callbacks, create_plan, plan_officer_rights):
    client = gql(make_user(plan_officer_rights))
    plan = create_plan(client)
    module_config("social_protection")["approvals"].pop("social_protection.enroll")
    with django_capture_on_commit_callbacks(execute=True):
        client.ok('mutation { confirmIndividualEnrollment(input: {benefitPlanId: "%s", status: "POTENTIAL"}) { errors { code } } }' % plan["uuid"])
    run_jobs()
    row = Beneficiary.objects.filter(benefit_plan_id=plan["uuid"]).first()
    update = """mutation($i: UpdateBeneficiaryMutationInput!) { updateBeneficiary(input: $i) {
        errors { code } task { uuid } beneficiary { status } } }"""
    refused = client.ok(update, {"i": {"id": str(row.pk), "status": "SUSPENDED"}})["updateBeneficiary"]
    assert refused["errors"] == [{"code": "INVALID_TRANSITION"}] and refused["task"] is None
    proposed = client.ok(update, {"i": {"id": str(row.pk), "status": "ACTIVE"}})["updateBeneficiary"]
    assert proposed["task"] is not None and proposed["beneficiary"]["status"] == "POTENTIAL"
    gql(checkers[1]).ok(RESOLVE, {"i": {"id": proposed["task"]["uuid"], "businessStatus": "APPROVED"}})
    row.refresh_from_db()
    assert row.status == "ACTIVE"


def test_duplicate_summary_and_review_tasks(gql, make_user, admin_user, country, checkers, run_jobs,
                                             django_capture_on_commit_callbacks, create_plan, plan_officer_rights):
    import datetime

    from modules.individual import services as registry

    for i, (first, last) in enumerate([("Ana", "Niyonzima"), ("Ana", "Niyonzima"), ("Ana", "Niyonzima"),
                                       ("Eric", "Hakizimana"), ("Eric", "Hakizimana"), ("Jean", "Bosco")]):
        registry.create_individual(admin_user, first_name=first, last_name=last, dob=datetime.date(1980, 1, 1),
                                   location_id=country["H1"].pk, json_ext={"national_id": f"DUP-{i:03d}"})
    client = gql(make_user(plan_officer_rights + ["core.task.view"]))
    plan = create_plan(client)
    module_config("social_protection")["approvals"].pop("social_protection.enroll")
    with django_capture_on_commit_callbacks(execute=True):
        client.ok('mutation { confirmIndividualEnrollment(input: {benefitPlanId: "%s", status: "ACTIVE"}) { errors { code } } }' % plan["uuid"])
    run_jobs()
    summary = client.ok("""query($p: UUID!) { beneficiaryDuplicatesSummary(benefitPlanId: $p,
        fields: ["first_name", "last_name", "dob"]) { values count beneficiaryIds } }""", {"p": plan["uuid"]})
    groups = summary["beneficiaryDuplicatesSummary"]
    assert [g["count"] for g in groups] == [3, 2]
    assert json.loads(groups[0]["values"])["first_name"] == "Ana"

    made = client.ok("""mutation($p: UUID!) { createDuplicateReviewTasks(input: {benefitPlanId: $p,
        fields: ["first_name", "last_name", "dob"], taskGroup: "SP-CHECK"}) { errors { code } tasks { uuid } } }""",
                     {"p": plan["uuid"]})["createDuplicateReviewTasks"]
    assert made["errors"] == [] and len(made["tasks"]) == 2
    gql(checkers[0]).ok(RESOLVE, {"i": {"id": made["tasks"][0]["uuid"], "businessStatus": "APPROVED"}})
    suspended = Beneficiary.objects.filter(benefit_plan_id=plan["uuid"], status="SUSPENDED")
    assert suspended.count() == 2
    assert str(groups[0]["beneficiaryIds"][0]) not in {str(b.pk) for b in suspended}

    bad = client.execute("""query($p: UUID!) { beneficiaryDuplicatesSummary(benefitPlanId: $p, fields: ["password"]) { count } }""",
                         {"p": plan["uuid"]})
    assert "not one of" in bad["errors"][0]["message"]


def test_a_status_change_task_is_seen_and_decided_only_where_the_beneficiary_lives(
        gql, make_user, admin_user, country, households, checkers, run_jobs, django_capture_on_commit_callbacks,
        create_plan, plan_officer_rights):
    from core.models import ApprovalTask, TaskGroup, TaskGroupChecker
    from modules.location.services import set_user_locations

    client = gql(make_user(plan_officer_rights))
    plan = create_plan(client)
    module_config("social_protection")["approvals"].pop("social_protection.enroll")
    with django_capture_on_commit_callbacks(execute=True):
        client.ok('mutation { confirmIndividualEnrollment(input: {benefitPlanId: "%s", status: "POTENTIAL"}) { errors { code } } }' % plan["uuid"])
    run_jobs()
    row = Beneficiary.objects.filter(benefit_plan_id=plan["uuid"], individual__location=country["H1"]).first()
    update = """mutation($i: UpdateBeneficiaryMutationInput!) { updateBeneficiary(input: $i) { errors { code } task { uuid } } }"""
    task = client.ok(update, {"i": {"id": str(row.pk), "status": "ACTIVE"}})["updateBeneficiary"]["task"]["uuid"]

    near, far = (make_user(["core.task.view", "core.task.resolve"]) for _ in range(2))
    set_user_locations(admin_user, near, [country["C1"].pk])
    set_user_locations(admin_user, far, [country["C2"].pk])
    group = TaskGroup.objects.get(code="SP-CHECK")
    TaskGroupChecker.objects.bulk_create([TaskGroupChecker(task_group=group, user=u) for u in (near, far)])
    tasks = "{ task { edges { node { uuid } } } }"
    assert [e["node"]["uuid"] for e in gql(near).ok(tasks)["task"]["edges"]] == [task]
    assert gql(far).ok(tasks)["task"]["edges"] == []
    refused = gql(far).ok(RESOLVE, {"i": {"id": task, "businessStatus": "APPROVED"}})["resolveTask"]
    assert [e["code"] for e in refused["errors"]] == ["NOT_FOUND"]
    assert ApprovalTask.objects.get(pk=task).status == "ACCEPTED"
    assert gql(near).ok(RESOLVE, {"i": {"id": task, "businessStatus": "APPROVED"}})["resolveTask"]["errors"] == []
    row.refresh_from_db()
    assert row.status == "ACTIVE"
