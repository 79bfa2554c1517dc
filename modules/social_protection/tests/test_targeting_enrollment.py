"""Plans, targeting previews and enrollment, including the emergency top-up scenario."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from modules.social_protection.models import Beneficiary, BenefitPlan, GroupBeneficiary

pytestmark = pytest.mark.django_db

CREATE = """mutation($i: CreateBenefitPlanMutationInput!) { createBenefitPlan(input: $i) {
    errors { field code message } benefitPlan { uuid code type status criteria } } }"""


def test_emergency_top_up_selects_vulnerable_households_in_flooded_collines(
        gql, make_user, country, households, run_jobs, django_capture_on_commit_callbacks, create_plan, enroll, plan_officer_rights):
    client = gql(make_user(plan_officer_rights))
    flooded = [str(country["H1"].pk), str(country["H3"].pk)]
    criteria = {"combine": "AND", "conditions": [
        {"location": flooded},
        {"on": "head", "filter": "vulnerability_score__lt__integer=50"},
    ]}
    plan = create_plan(client, code="FLOOD-26", name="Flood top-up", type="GROUP", criteria=criteria)

    summary = client.ok("""query($p: UUID!) { groupEnrollmentSummary(benefitPlanId: $p) {
        totalNumberOfIndividuals numberToEnroll numberOfIndividualsAssignedToSelectedProgramme
        sampleGroups { code } } }""", {"p": plan["uuid"]})["groupEnrollmentSummary"]

    # the same answer, computed independently in SQL
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT count(*) FROM individual_group g
               JOIN individual_individual h ON h.id = g.head_id
               JOIN location_location l ON l.id = g.location_id
               WHERE NOT g.is_deleted AND l.code IN ('H1', 'H3')
                 AND (h.json_ext->>'vulnerability_score')::int < 50""")
        expected = cursor.fetchone()[0]
    assert expected > 0
    assert summary["totalNumberOfIndividuals"] == summary["numberToEnroll"] == expected
    assert summary["numberOfIndividualsAssignedToSelectedProgramme"] == 0
    assert len(summary["sampleGroups"]) == min(expected, 10)

    job = enroll(client, django_capture_on_commit_callbacks, run_jobs, plan)
    assert job["state"] == "SUCCEEDED" and json.loads(job["result"])["enrolled"] == expected
    enrolled = GroupBeneficiary.objects.filter(benefit_plan_id=plan["uuid"], status="ACTIVE")
    assert enrolled.count() == expected
    assert set(enrolled.values_list("group__location__code", flat=True)) <= {"H1", "H3"}

    # starting it again enrolls nobody twice
    again = enroll(client, django_capture_on_commit_callbacks, run_jobs, plan)
    assert json.loads(again["result"])["enrolled"] == 0
    assert GroupBeneficiary.objects.filter(benefit_plan_id=plan["uuid"]).count() == expected


def test_individual_plan_preview_respects_maximum_and_custom_filters(
        gql, make_user, households, run_jobs, django_capture_on_commit_callbacks, create_plan, enroll, plan_officer_rights):
    client = gql(make_user(plan_officer_rights))
    plan = create_plan(client, maxBeneficiaries=5)
    summary = client.ok("""query($p: UUID!, $f: [String]) { individualEnrollmentSummary(benefitPlanId: $p, customFilters: $f) {
        totalNumberOfIndividuals numberToEnroll capacityLeft } }""",
                        {"p": plan["uuid"], "f": ["vulnerability_score__gte__integer=50"]})["individualEnrollmentSummary"]
    matching = sum(3 for i in range(24) if (i * 7) % 100 >= 50)
    assert summary == {"totalNumberOfIndividuals": matching, "numberToEnroll": 5, "capacityLeft": 5}
    job = enroll(client, django_capture_on_commit_callbacks, run_jobs, plan, kind="Individual", status="POTENTIAL",
                 customFilters=["vulnerability_score__gte__integer=50"])
    assert json.loads(job["result"])["enrolled"] == 5
    assert Beneficiary.objects.filter(benefit_plan_id=plan["uuid"]).count() == 5


def test_invalid_criteria_are_refused_with_their_path(gql, make_user, plan_officer_rights):
    client = gql(make_user(plan_officer_rights))
    bad = {"combine": "AND", "conditions": [{"filter": "score__lt__integer=abc"}, {"field": "height", "value": 2},
                                            {"on": "head", "filter": "x__exact__string=1"}]}
    data = client.ok(CREATE, {"i": {"code": "B", "name": "B", "type": "INDIVIDUAL", "dateValidFrom": "2026-01-01",
                                    "dateValidTo": "2026-12-31", "criteria": json.dumps(bad)}})["createBenefitPlan"]
    fields = [e["field"] for e in data["errors"]]
    assert fields == ["criteria.conditions[0].filter", "criteria.conditions[1].field", "criteria.conditions[2].on"]
    assert BenefitPlan.objects.count() == 0


def test_status_transitions_and_close(gql, make_user, households, run_jobs, django_capture_on_commit_callbacks, create_plan, enroll, plan_officer_rights):
    client = gql(make_user(plan_officer_rights))
    plan = create_plan(client)
    enroll(client, django_capture_on_commit_callbacks, run_jobs, plan, kind="Individual", status="POTENTIAL",
           customFilters=["vulnerability_score__lt__integer=20"])
    rows = list(Beneficiary.objects.filter(benefit_plan_id=plan["uuid"]))
    assert rows
    update = """mutation($i: UpdateBeneficiaryMutationInput!) { updateBeneficiary(input: $i) {
        errors { field code message } beneficiary { status version } } }"""
    ok = client.ok(update, {"i": {"id": str(rows[0].pk), "status": "ACTIVE"}})["updateBeneficiary"]
    assert ok == {"errors": [], "beneficiary": {"status": "ACTIVE", "version": 2}}
    graduated = client.ok(update, {"i": {"id": str(rows[0].pk), "status": "GRADUATED"}})["updateBeneficiary"]
    assert graduated["beneficiary"]["status"] == "GRADUATED"
    refused = client.ok(update, {"i": {"id": str(rows[0].pk), "status": "ACTIVE"}})["updateBeneficiary"]
    assert refused["beneficiary"] is None and refused["errors"][0]["code"] == "INVALID_TRANSITION"
    assert "GRADUATED beneficiary cannot become ACTIVE" in refused["errors"][0]["message"]

    closed = client.ok('mutation { closeBenefitPlan(input: {id: "%s"}) { errors { code } graduated benefitPlan { status } } }' % plan["uuid"])
    assert closed["closeBenefitPlan"]["benefitPlan"]["status"] == "CLOSED"
    assert closed["closeBenefitPlan"]["graduated"] == len(rows) - 1
    assert set(Beneficiary.objects.filter(benefit_plan_id=plan["uuid"]).values_list("status", flat=True)) == {"GRADUATED"}


def test_bulk_status_change_by_filter(gql, make_user, households, run_jobs, django_capture_on_commit_callbacks, create_plan, enroll, plan_officer_rights):
    client = gql(make_user(plan_officer_rights))
    plan = create_plan(client)
    enroll(client, django_capture_on_commit_callbacks, run_jobs, plan, kind="Individual", status="POTENTIAL")
    with django_capture_on_commit_callbacks(execute=True):
        client.ok("""mutation { bulkUpdateBeneficiaryStatus(input: {benefitPlanId: "%s", status: "ACTIVE",
            currentStatus: "POTENTIAL", customFilters: ["vulnerability_score__lt__integer=30"]}) { errors { code } job { uuid } } }""" % plan["uuid"])
    run_jobs()
    active = Beneficiary.objects.filter(benefit_plan_id=plan["uuid"], status="ACTIVE").count()
    assert active == sum(3 for i in range(24) if (i * 7) % 100 < 30)


def test_beneficiary_list_in_openimis_shape_and_is_eligible(gql, make_user, households, run_jobs,
                                                            django_capture_on_commit_callbacks, create_plan, enroll, plan_officer_rights):
    client = gql(make_user(plan_officer_rights))
    plan = create_plan(client, criteria={"filter": "vulnerability_score__lt__integer=40"})
    enroll(client, django_capture_on_commit_callbacks, run_jobs, plan, kind="Individual", status="ACTIVE",
           criteria=json.dumps({}))  # enroll everyone regardless of the plan's criteria
    data = client.ok("""query($p: UUID) { beneficiary(benefitPlan_Id: $p, status: "ACTIVE", first: 5,
        orderBy: ["individual_LastName"]) { totalCount edges { node { uuid status individual { lastName } benefitPlan { code } } } } }""",
                     {"p": plan["uuid"]})["beneficiary"]
    assert data["totalCount"] == 72
    assert [e["node"]["individual"]["lastName"] for e in data["edges"]] == sorted(
        e["node"]["individual"]["lastName"] for e in data["edges"])
    eligible = client.ok("""query($p: UUID) { beneficiary(benefitPlan_Id: $p, isEligible: true) { totalCount } }""",
                         {"p": plan["uuid"]})["beneficiary"]["totalCount"]
    assert eligible == sum(3 for i in range(24) if (i * 7) % 100 < 40)


def test_is_eligible_is_read_for_the_whole_page_against_each_rows_own_plan(
        gql, make_user, households, run_jobs, django_capture_on_commit_callbacks, create_plan, enroll,
        plan_officer_rights):
    from django.test.utils import CaptureQueriesContext

    client = gql(make_user(plan_officer_rights))
    plans = [create_plan(client, code=f"CT-{limit}", name=f"Transfer under {limit}",
                         criteria={"filter": f"vulnerability_score__lt__integer={limit}"}) for limit in (40, 15)]
    for plan in plans:
        enroll(client, django_capture_on_commit_callbacks, run_jobs, plan, kind="Individual", status="ACTIVE",
               criteria=json.dumps({}))
    page = """query($n: Int) { beneficiary(first: $n, orderBy: ["individual_LastName"]) {
        edges { node { uuid isEligible benefitPlan { uuid } } } } }"""
    statements = {}
    for first in (1, 100):
        with CaptureQueriesContext(connection) as captured:
            edges = client.ok(page, {"n": first})["beneficiary"]["edges"]
        statements[first] = len(captured.captured_queries)
    assert len(edges) == 100 and statements[1] == statements[100]
    assert {e["node"]["benefitPlan"]["uuid"] for e in edges} == {p["uuid"] for p in plans}
    flagged = {e["node"]["uuid"] for e in edges if e["node"]["isEligible"]}
    filtered = set()
    for plan in plans:  # the isEligible filter: the criteria as an EXISTS in the list's own query
        filtered |= {e["node"]["uuid"] for e in client.ok(
            """query($p: UUID) { beneficiary(benefitPlan_Id: $p, isEligible: true, first: 100) {
                edges { node { uuid } } } }""", {"p": plan["uuid"]})["beneficiary"]["edges"]}
    on_page = {e["node"]["uuid"] for e in edges}
    assert flagged == filtered & on_page
    assert 0 < len(flagged) < len(on_page)


def test_plan_validity_queries(gql, make_user, create_plan, plan_officer_rights):
    client = gql(make_user(plan_officer_rights))
    create_plan(client)
    data = client.ok("""{ taken: bfCodeValidity(bfCode: "CT-1") { isValid errorCode }
        free: bfCodeValidity(bfCode: "CT-2") { isValid }
        name: bfNameValidity(bfName: "Cash transfer") { isValid }
        schema: bfSchemaValidity(bfSchema: "{\\"type\\": \\"nonsense\\"}") { isValid errorMessage } }""")
    assert data["taken"] == {"isValid": False, "errorCode": "PLAN_CODE_TAKEN"}
    assert data["free"] == {"isValid": True} and data["name"]["isValid"] is False
    assert data["schema"]["isValid"] is False and "JSON Schema" in data["schema"]["errorMessage"]


def test_individual_list_offers_people_not_yet_in_a_plan(gql, make_user, households, run_jobs,
                                                          django_capture_on_commit_callbacks, create_plan, enroll, plan_officer_rights):
    client = gql(make_user(plan_officer_rights))
    plan = create_plan(client)
    enroll(client, django_capture_on_commit_callbacks, run_jobs, plan, kind="Individual", status="POTENTIAL",
           customFilters=["vulnerability_score__lt__integer=30"])
    enrolled = Beneficiary.objects.filter(benefit_plan_id=plan["uuid"]).count()
    data = client.ok('query($p: UUID) { individual(benefitPlanToEnroll: $p) { totalCount } }', {"p": plan["uuid"]})
    assert enrolled > 0 and data["individual"]["totalCount"] == 72 - enrolled


def test_enrollment_and_bulk_status_jobs_run_again_change_nothing(gql, make_user, households, run_jobs, run_again,
                                                                  django_capture_on_commit_callbacks, create_plan, enroll, plan_officer_rights):
    from core.models import Job

    client = gql(make_user(plan_officer_rights))
    plan = create_plan(client)
    enroll(client, django_capture_on_commit_callbacks, run_jobs, plan, kind="Individual", status="POTENTIAL")
    enrolled = Job.objects.get(kind="social_protection.enroll")
    assert enrolled.message == "Enrolled 72 of 72 eligible as POTENTIAL in CT-1."
    again = run_again(enrolled)
    assert (again.state, again.result["enrolled"]) == ("SUCCEEDED", 0)
    assert Beneficiary.objects.filter(benefit_plan_id=plan["uuid"]).count() == 72

    with django_capture_on_commit_callbacks(execute=True):
        client.ok("""mutation { bulkUpdateBeneficiaryStatus(input: {benefitPlanId: "%s", status: "ACTIVE",
            currentStatus: "POTENTIAL"}) { errors { code } job { uuid } } }""" % plan["uuid"])
    run_jobs()
    changed = Job.objects.get(kind="social_protection.bulk_status")
    assert changed.message == "72 of 72 matching beneficiaries of CT-1 are now ACTIVE."
    history = Beneficiary.objects.filter(benefit_plan_id=plan["uuid"]).values_list("version", flat=True)
    versions = sorted(history)
    again = run_again(changed)
    assert again.state == "SUCCEEDED" and again.result["changed"] == 0
    assert sorted(Beneficiary.objects.filter(benefit_plan_id=plan["uuid"]).values_list("version", flat=True)) == versions


def test_criteria_about_the_head_alone_read_as_criteria_on_a_person():
    from modules.social_protection.targeting import as_head

    leaf = {"on": "head", "field": "sex", "lookup": "exact", "value": "F"}
    assert as_head(leaf) == {"field": "sex", "lookup": "exact", "value": "F"}
    nested = {"combine": "OR", "conditions": [leaf, {"combine": "AND", "conditions": [
        {"on": "head", "filter": "disability__exact__boolean=true"}]}]}
    assert as_head(nested) == {"combine": "OR", "conditions": [
        {"field": "sex", "lookup": "exact", "value": "F"},
        {"combine": "AND", "conditions": [{"filter": "disability__exact__boolean=true"}]}]}
    # anything about the household itself, an empty document (everyone) or a malformed one: no
    for other in ({"combine": "AND", "conditions": [leaf, {"field": "code", "value": "HH-1"}]},
                  {"on": "self", "filter": "x__exact__integer=1"}, {}, {"combine": "AND", "conditions": []},
                  {"conditions": "nope"}, [leaf], None):
        assert as_head(other) is None


CUSTOM_FILTERS = """query($id: String, $params: String) { customFilters(moduleName: "social_protection",
    objectTypeName: "BenefitPlan", uuidOfObject: $id, additionalParams: $params) {
    type code possibleFilters { field filter type } } }"""


def test_a_plans_custom_filters_are_what_its_beneficiary_lists_filter_on(gql, make_user, create_plan, plan_officer_rights):
    """openIMIS's benefit plan screens ask which json_ext properties the plan's beneficiaries
    can be filtered on: the registry's for the plan's type, and the plan's own data schema."""
    from graphql_relay import to_global_id

    client = gql(make_user(plan_officer_rights))
    schema = {"type": "object", "properties": {"school_grade": {"type": "integer"}}}
    plan = create_plan(client, code="CT-S", type="GROUP", beneficiaryDataSchema=json.dumps(schema))
    for ident in (plan["uuid"], to_global_id("BenefitPlanGQLType", plan["uuid"])):
        found = client.ok(CUSTOM_FILTERS, {"id": ident, "params": '{"type":"GROUP"}'})["customFilters"]
        codes = {f["code"]: f for f in found}
        assert {"livelihood", "house_type", "school_grade"} <= set(codes)
        assert codes["school_grade"]["type"] == "integer"
        assert {"field": "school_grade", "filter": "gte", "type": "integer"} in codes["school_grade"]["possibleFilters"]
    person_plan = create_plan(client, code="CT-P", name="Cash transfer to people")
    codes = {f["code"] for f in client.ok(CUSTOM_FILTERS, {"id": person_plan["uuid"]})["customFilters"]}
    assert "vulnerability_score" in codes and "livelihood" not in codes
    # a missing, malformed or unknown plan is a specific error; a caller without the right is refused
    for ident, code in ((None, "REQUIRED"), ("nope", "INVALID_ID"),
                        ("00000000-0000-0000-0000-000000000000", "NOT_FOUND")):
        answer = client.execute(CUSTOM_FILTERS, {"id": ident})
        assert answer["data"]["customFilters"] is None
        assert answer["errors"][0]["extensions"]["code"] == code, answer
    stranger = gql(make_user([])).execute(CUSTOM_FILTERS, {"id": plan["uuid"]})
    assert stranger["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"
