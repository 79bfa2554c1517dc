"""``beneficiaryDuplicatesSummary`` answers for every field its description names, on both
kinds of plan, and agrees with the groups computed here from the rows themselves."""

from __future__ import annotations

import datetime
from collections import defaultdict
from typing import Any

import pytest

from modules.individual import services as registry
from modules.individual.models import Group
from modules.social_protection.models import Beneficiary, GroupBeneficiary

pytestmark = pytest.mark.django_db

SUMMARY = """query($p: UUID!, $f: [String!]!) { beneficiaryDuplicatesSummary(benefitPlanId: $p, fields: $f) {
    values count beneficiaryIds } }"""

INDIVIDUAL_FIELDS = ["first_name", "last_name", "dob", "sex", "location", "json_ext.national_id",
                     "json_ext.phone", "json_ext.vulnerability_score"]
GROUP_FIELDS = ["code", "location", "json_ext.livelihood"]


def expected_groups(rows: list[tuple[Any, Any]]) -> set[frozenset[str]]:
    """Sets of beneficiary ids sharing a (non-null) value."""
    by_value: dict[Any, set[str]] = defaultdict(set)
    for pk, value in rows:
        if value is not None:
            by_value[value].add(str(pk))
    return {frozenset(ids) for ids in by_value.values() if len(ids) > 1}


def answered(client: Any, plan: dict[str, Any], field: str) -> set[frozenset[str]]:
    result = client.ok(SUMMARY, {"p": plan["uuid"], "f": [field]})["beneficiaryDuplicatesSummary"]
    assert all(g["count"] == len(g["beneficiaryIds"]) for g in result)
    return {frozenset(g["beneficiaryIds"]) for g in result}


@pytest.fixture
def two_with_one_phone(admin_user, country):
    for index, first in enumerate(("Ana", "Anne")):
        registry.create_individual(admin_user, first_name=first, last_name="Twice", dob=datetime.date(1990, 1, 1),
                                   location_id=country["H1"].pk,
                                   json_ext={"national_id": f"TWICE-{index}", "phone": "+257 111 111"})


@pytest.mark.parametrize("field", INDIVIDUAL_FIELDS)
def test_every_documented_field_of_an_individual_plan(gql, make_user, households, two_with_one_phone,
                                                      run_jobs, django_capture_on_commit_callbacks, field, create_plan, enroll, plan_officer_rights):
    client = gql(make_user(plan_officer_rights))
    plan = create_plan(client)
    enroll(client, django_capture_on_commit_callbacks, run_jobs, plan, kind="Individual")
    rows = Beneficiary.objects.filter(benefit_plan_id=plan["uuid"]).select_related("individual")
    assert rows.count() == 74

    def value(b: Beneficiary) -> Any:
        person = b.individual
        if field.startswith("json_ext."):
            found = person.json_ext.get(field[9:])
            return None if found is None else str(found)
        return person.location_id if field == "location" else getattr(person, field) or None

    expected = expected_groups([(b.pk, value(b)) for b in rows])
    assert answered(client, plan, field) == expected
    if field == "json_ext.phone":
        assert len(expected) == 1  # the two people sharing a phone


@pytest.mark.parametrize("field", GROUP_FIELDS)
def test_every_documented_field_of_a_group_plan(gql, make_user, households, run_jobs,
                                                django_capture_on_commit_callbacks, field, create_plan, enroll, plan_officer_rights):
    for index, group in enumerate(Group.objects.order_by("code")):
        Group.objects.filter(pk=group.pk).update(json_ext={"livelihood": f"L{index % 5}"} if index % 6 else {})
    client = gql(make_user(plan_officer_rights))
    plan = create_plan(client, type="GROUP", code="G-1", name="Households")
    enroll(client, django_capture_on_commit_callbacks, run_jobs, plan, kind="Group")
    rows = GroupBeneficiary.objects.filter(benefit_plan_id=plan["uuid"]).select_related("group")

    def value(b: GroupBeneficiary) -> Any:
        if field == "json_ext.livelihood":
            return b.group.json_ext.get("livelihood")
        return b.group.location_id if field == "location" else b.group.code

    expected = expected_groups([(b.pk, value(b)) for b in rows])
    assert answered(client, plan, field) == expected
    if field != "code":
        assert expected  # the field does find groups


def test_fields_combine_and_unknown_ones_are_a_typed_error(gql, make_user, households, run_jobs,
                                                           django_capture_on_commit_callbacks, create_plan, enroll, plan_officer_rights):
    client = gql(make_user(plan_officer_rights))
    plan = create_plan(client)
    enroll(client, django_capture_on_commit_callbacks, run_jobs, plan, kind="Individual")
    both = client.ok(SUMMARY, {"p": plan["uuid"], "f": ["last_name", "json_ext.vulnerability_score"]})
    assert [g["count"] for g in both["beneficiaryDuplicatesSummary"]] == [3] * 24
    bad = client.execute(SUMMARY, {"p": plan["uuid"], "f": ["json_ext.a b"]})
    assert bad["errors"][0]["extensions"]["code"] == "INVALID"
