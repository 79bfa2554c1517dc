"""Every filter that names a person or a household answers through the user's scope, in every
module's lists: about someone outside it, a scoped user learns nothing (issue 9.5).

The payroll module's tests have every module's data, so the check over all of them is here."""

from __future__ import annotations

from typing import Any

import pytest

from modules.individual.models import Group, Individual
from modules.location.services import set_user_locations

pytestmark = pytest.mark.django_db

@pytest.fixture
def read_rights(payroll_rights: list[str]) -> list[str]:
    return [*payroll_rights, "social_protection.beneficiary.search"]
# (query, the variable naming a household "g" or a person "p", how to read the answer)
BY_HOUSEHOLD = [
    ('query($v: UUID, $s: String) { benefitPlan(groupId: $v, beneficiaryStatus: $s) { totalCount } }',
     lambda d: d["benefitPlan"]["totalCount"]),
    ('query($v: UUID) { benefitPlan(groupId: $v) { totalCount } }', lambda d: d["benefitPlan"]["totalCount"]),
    ('query($v: UUID) { groupBeneficiary(group_Id: $v) { totalCount } }',
     lambda d: d["groupBeneficiary"]["totalCount"]),
    ('query($v: UUID) { groupIndividual(group_Id: $v) { totalCount } }', lambda d: d["groupIndividual"]["totalCount"]),
    ('query($v: UUID) { individual(groupId: $v) { totalCount } }', lambda d: d["individual"]["totalCount"]),
    ('query($v: UUID) { groupHistory(rowId: $v) { totalCount } }', lambda d: d["groupHistory"]["totalCount"]),
]
BY_PERSON = [
    ('query($v: UUID) { benefitsSummary(individualId: $v) { count totalAmount } }',
     lambda d: d["benefitsSummary"]["count"]),
    ('query($v: UUID) { groupIndividual(individual_Id: $v) { totalCount } }',
     lambda d: d["groupIndividual"]["totalCount"]),
    ('query($v: UUID) { individualHistory(rowId: $v) { totalCount } }', lambda d: d["individualHistory"]["totalCount"]),
]


@pytest.fixture
def world(gql: Any, make_user: Any, admin_user: Any, group_plan: Any, country: dict[str, Any], create_payroll, read_rights, setup_payments) -> dict[str, Any]:
    """A paid-for GROUP plan over the 8 households, an INDIVIDUAL plan of everyone, and an
    officer scoped to commune C1 (households 0, 1, 4, 5)."""
    import datetime

    from modules.social_protection import services as sp

    national = gql(make_user(read_rights))
    create_payroll(national, setup_payments(national, group_plan))
    people = sp.create_plan(admin_user, code="CT-I", name="Individuals", type="INDIVIDUAL",
                            date_valid_from=datetime.date(2026, 1, 1), date_valid_to=datetime.date(2027, 12, 31))
    sp.enroll_chunk(people, admin_user, "ACTIVE", None, 1000)
    officer = make_user([p for p in read_rights if p != "location.scope.national"])
    set_user_locations(admin_user, officer, [country["C1"].pk])
    return {"national": national, "officer": gql(officer),
            "inside": Group.objects.get(code="HH-001"), "outside": Group.objects.get(code="HH-002")}


@pytest.mark.parametrize("query, read", BY_HOUSEHOLD)
def test_filters_naming_a_household(world, query, read):
    variables = {"s": "ACTIVE"} if "$s" in query else {}
    for household, officer_sees in ((world["inside"], True), (world["outside"], False)):
        answer = {"v": str(household.pk), **variables}
        assert read(world["national"].ok(query, answer)) > 0, query
        assert (read(world["officer"].ok(query, answer)) > 0) is officer_sees, (query, household.code)


@pytest.mark.parametrize("query, read", BY_PERSON)
def test_filters_naming_a_person(world, query, read):
    for household, officer_sees in ((world["inside"], True), (world["outside"], False)):
        person = Individual.objects.get(pk=household.head_id if "benefitsSummary" not in query
                                        else household.memberships.get(recipient_type="PRIMARY").individual_id)
        answer = {"v": str(person.pk)}
        assert read(world["national"].ok(query, answer)) > 0, query
        assert (read(world["officer"].ok(query, answer)) > 0) is officer_sees, (query, household.code)


def test_benefit_plans_of_a_person_outside_the_scope_are_not_told(world):
    query = 'query($v: UUID) { benefitPlan(individualId: $v) { edges { node { code } } } }'
    inside = world["inside"].head_id
    outside = world["outside"].head_id
    assert [e["node"]["code"] for e in world["officer"].ok(query, {"v": str(inside)})["benefitPlan"]["edges"]] == ["CT-I"]
    assert world["officer"].ok(query, {"v": str(outside)})["benefitPlan"]["edges"] == []
    assert [e["node"]["code"] for e in world["national"].ok(query, {"v": str(outside)})["benefitPlan"]["edges"]] == ["CT-I"]
