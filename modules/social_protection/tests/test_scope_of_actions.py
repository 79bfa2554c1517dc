"""Plan-wide actions need national scope; actions on beneficiaries act only within the user's
scope (issue 9.3 and 9.4)."""

from __future__ import annotations

from typing import Any

import pytest

from core.approvals.services import create_task_group
from core.loader import module_config
from core.models import ApprovalDecision, ApprovalTask
from modules.location.services import set_user_locations
from modules.social_protection import services
from modules.social_protection.models import BenefitPlan, GroupBeneficiary

pytestmark = pytest.mark.django_db

RESOLVE = "mutation($i: ResolveTaskMutationInput!) { resolveTask(input: $i) { errors { code message } } }"
CLOSE = """mutation($i: CloseBenefitPlanMutationInput!) { closeBenefitPlan(input: $i) {
    errors { code message } graduated task { uuid } benefitPlan { status } } }"""


@pytest.fixture
def plan(admin_user: Any, households: list[Any]) -> BenefitPlan:
    """A GROUP plan with the 24 households (H1..H4, 6 in each) enrolled ACTIVE."""
    import datetime

    made = services.create_plan(admin_user, code="G-ALL", name="Everyone", type="GROUP",
                                date_valid_from=datetime.date(2026, 1, 1), date_valid_to=datetime.date(2027, 12, 31))
    services.enroll_chunk(made, admin_user, "ACTIVE", None, 1000)
    return made


@pytest.fixture
def officer(make_user: Any, admin_user: Any, country: dict[str, Any], local_rights: list[str]) -> Any:
    """Scoped to commune C1 (collines H1 and H2: 12 of the 24 households)."""
    user = make_user(local_rights)
    set_user_locations(admin_user, user, [country["C1"].pk])
    return user


@pytest.fixture
def local_rights(plan_officer_rights: list[str]) -> list[str]:
    """A plan officer's rights without national scope, with deleting plans."""
    return [p for p in plan_officer_rights if p != "location.scope.national"] + ["social_protection.plan.delete"]


def statuses() -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in GroupBeneficiary.objects.values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    return counts


def test_a_province_officer_cannot_close_a_plan_graduating_beneficiaries_elsewhere(gql, officer, plan):
    result = gql(officer).ok(CLOSE, {"i": {"id": str(plan.pk)}})["closeBenefitPlan"]
    assert [e["code"] for e in result["errors"]] == ["OUT_OF_SCOPE"]
    assert "national scope" in result["errors"][0]["message"]
    assert statuses() == {"ACTIVE": 24} and BenefitPlan.objects.get(pk=plan.pk).status == "ACTIVE"


def test_nor_ask_a_checker_to_close_it_and_a_scoped_checker_cannot_approve_it(
        gql, make_user, admin_user, officer, plan, country, monkeypatch, django_capture_on_commit_callbacks, plan_officer_rights):
    local_checker = make_user(["core.task.view", "core.task.resolve"])
    set_user_locations(admin_user, local_checker, [country["C1"].pk])
    create_task_group(admin_user, code="CLOSERS", completion_policy="ANY", checker_ids=[local_checker.pk])
    monkeypatch.setitem(module_config("social_protection")["approvals"], "social_protection.close_plan", "CLOSERS")

    refused = gql(officer).ok(CLOSE, {"i": {"id": str(plan.pk)}})["closeBenefitPlan"]
    assert [e["code"] for e in refused["errors"]] == ["OUT_OF_SCOPE"] and not ApprovalTask.objects.exists()

    # a national maker may ask, but the checker deciding must be national too
    proposed = gql(make_user(plan_officer_rights)).ok(CLOSE, {"i": {"id": str(plan.pk)}})["closeBenefitPlan"]
    task = proposed["task"]["uuid"]
    with django_capture_on_commit_callbacks(execute=True):
        decided = gql(local_checker).ok(RESOLVE, {"i": {"id": task, "businessStatus": "APPROVED"}})["resolveTask"]
    assert [e["code"] for e in decided["errors"]] == ["OUT_OF_SCOPE"]
    assert ApprovalTask.objects.get(pk=task).status == "ACCEPTED" and not ApprovalDecision.objects.exists()
    assert statuses() == {"ACTIVE": 24}


def test_plan_definitions_are_national(gql, officer, plan):
    client = gql(officer)
    update = client.ok("""mutation($i: UpdateBenefitPlanMutationInput!) { updateBenefitPlan(input: $i) {
        errors { code } } }""", {"i": {"id": str(plan.pk), "maxBeneficiaries": 1}})["updateBenefitPlan"]
    delete = client.ok("""mutation($i: DeleteBenefitPlanMutationInput!) { deleteBenefitPlan(input: $i) {
        errors { code } } }""", {"i": {"id": str(plan.pk)}})["deleteBenefitPlan"]
    create = client.execute("""mutation { createBenefitPlan(input: {code: "LOCAL", name: "Local", type: "GROUP",
        dateValidFrom: "2026-01-01", dateValidTo: "2026-12-31"}) { errors { code } } }""")["data"]["createBenefitPlan"]
    assert [update["errors"], delete["errors"], create["errors"]] == [[{"code": "OUT_OF_SCOPE"}]] * 3
    assert BenefitPlan.objects.get(pk=plan.pk).max_beneficiaries is None
    assert BenefitPlan.objects.count() == 1


def test_bulk_status_changes_and_enrollment_act_only_within_scope(gql, officer, plan, admin_user, run_jobs,
                                                                  django_capture_on_commit_callbacks):
    client = gql(officer)
    with django_capture_on_commit_callbacks(execute=True):
        started = client.ok("""mutation { bulkUpdateBeneficiaryStatus(input: {benefitPlanId: "%s",
            status: "SUSPENDED"}) { errors { code } job { uuid } } }""" % plan.pk)["bulkUpdateBeneficiaryStatus"]
    assert started["errors"] == []
    run_jobs()
    suspended = set(GroupBeneficiary.objects.filter(status="SUSPENDED").values_list("group__location__code", flat=True))
    assert statuses() == {"ACTIVE": 12, "SUSPENDED": 12} and suspended == {"H1", "H2"}

    import datetime

    other = services.create_plan(admin_user, code="G-2", name="Second", type="GROUP",
                                 date_valid_from=datetime.date(2026, 1, 1), date_valid_to=datetime.date(2027, 12, 31))
    with django_capture_on_commit_callbacks(execute=True):
        client.ok("""mutation { confirmGroupEnrollment(input: {benefitPlanId: "%s", status: "ACTIVE"}) {
            errors { code } } }""" % other.pk)
    run_jobs()
    enrolled = set(GroupBeneficiary.objects.filter(benefit_plan=other).values_list("group__location__code", flat=True))
    assert enrolled == {"H1", "H2"} and GroupBeneficiary.objects.filter(benefit_plan=other).count() == 12
