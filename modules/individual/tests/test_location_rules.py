"""Registry mutations enforce the location rules of the bulk import: everyone has a location in
the writer's scope, and a household's members live where it does (issue 9.6)."""

from __future__ import annotations

from typing import Any

import pytest

from modules.individual import services
from modules.individual.models import Group, GroupIndividual, Individual
from modules.location.services import set_user_locations

pytestmark = pytest.mark.django_db

EDIT = ["individual.registry.search", "individual.registry.create", "individual.registry.update", "individual.registry.delete"]
NATIONAL = [*EDIT, "location.scope.national"]
CREATE_PERSON = """mutation($i: CreateIndividualMutationInput!) { createIndividual(input: $i) {
    errors { field code message } individual { uuid } } }"""
CREATE_HOUSEHOLD = """mutation($i: CreateGroupMutationInput!) { createGroup(input: $i) {
    errors { field code message } group { uuid } } }"""
MOVE = """mutation($i: MoveGroupIndividualMutationInput!) { moveGroupIndividual(input: $i) {
    errors { field code message } groupIndividual { uuid } } }"""
ADD = """mutation($i: CreateGroupIndividualMutationInput!) { createGroupIndividual(input: $i) {
    errors { field code message } groupIndividual { uuid } } }"""
UPDATE_PERSON = """mutation($i: UpdateIndividualMutationInput!) { updateIndividual(input: $i) {
    errors { field code message } individual { uuid } } }"""
UPDATE_HOUSEHOLD = """mutation($i: UpdateGroupMutationInput!) { updateGroup(input: $i) {
    errors { field code message } group { uuid } } }"""


@pytest.fixture
def officer(make_user: Any, admin_user: Any, places: dict[str, Any]) -> Any:
    """Scoped to commune C1 (colline H1); H2 is in commune C2."""
    user = make_user(EDIT)
    set_user_locations(admin_user, user, [places["C1"].pk])
    return user


@pytest.fixture
def households(admin_user: Any, places: dict[str, Any], person: Any) -> dict[str, Any]:
    """A household in H1 and one in H2, each with its head."""
    made = {}
    for colline in ("H1", "H2"):
        group = services.create_group(admin_user, code=f"HH-{colline}", location_id=places[colline].pk)
        head = person("Head", colline, place=colline)
        services.add_member(admin_user, group_id=group.pk, individual_id=head.pk, role="HEAD")
        made[colline] = (group, head)
    return made


def codes(result: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["field"], e["code"]) for e in result["errors"]]


def test_a_person_or_household_without_a_location_is_refused(gql, make_user, officer):
    for user in (officer, make_user(NATIONAL)):
        client = gql(user)
        person = client.ok(CREATE_PERSON, {"i": {"firstName": "No", "lastName": "Where", "dob": "1990-01-01"}})
        assert codes(person["createIndividual"]) == [("locationId", "LOCATION_REQUIRED")]
        household = client.ok(CREATE_HOUSEHOLD, {"i": {"code": "HH-NOWHERE"}})
        assert codes(household["createGroup"]) == [("locationId", "LOCATION_REQUIRED")]
    assert not Individual.all_objects.exists() and not Group.all_objects.exists()


def test_a_scoped_user_registers_only_in_their_locations(gql, officer, places):
    client = gql(officer)
    elsewhere = client.ok(CREATE_PERSON, {"i": {"firstName": "A", "lastName": "B", "dob": "1990-01-01",
                                                "locationId": str(places["H2"].pk)}})["createIndividual"]
    assert codes(elsewhere) == [("locationId", "OUT_OF_SCOPE")]
    here = client.ok(CREATE_PERSON, {"i": {"firstName": "A", "lastName": "B", "dob": "1990-01-01",
                                           "locationId": str(places["H1"].pk)}})["createIndividual"]
    assert here["errors"] == [] and Individual.objects.get().location_id == places["H1"].pk
    cleared = client.ok(UPDATE_PERSON, {"i": {"id": here["individual"]["uuid"], "locationId": None}})["updateIndividual"]
    assert codes(cleared) == [("locationId", "LOCATION_REQUIRED")]
    assert Individual.objects.get().location_id == places["H1"].pk


def test_a_person_cannot_be_moved_into_a_household_of_another_location(gql, make_user, households, person, places):
    (north, north_head), (south, _) = households["H1"], households["H2"]
    client = gql(make_user(NATIONAL))
    moved = client.ok(MOVE, {"i": {"individualId": str(north_head.pk), "groupId": str(south.pk), "role": "SON"}})
    assert codes(moved["moveGroupIndividual"]) == [("individualId", "LOCATION_MISMATCH")]
    assert GroupIndividual.objects.get(individual=north_head).group_id == north.pk  # still at home

    newcomer = person("New", "Comer", place="H1")
    added = client.ok(ADD, {"i": {"individualId": str(newcomer.pk), "groupId": str(south.pk), "role": "SON"}})
    assert codes(added["createGroupIndividual"]) == [("individualId", "LOCATION_MISMATCH")]
    assert not GroupIndividual.objects.filter(individual=newcomer).exists()

    # a member cannot move away from their household on their own either
    away = client.ok(UPDATE_PERSON, {"i": {"id": str(north_head.pk), "locationId": str(places["H2"].pk)}})
    assert codes(away["updateIndividual"]) == [("locationId", "LOCATION_MISMATCH")]
    assert Individual.objects.get(pk=north_head.pk).location_id == places["H1"].pk


def test_a_scoped_user_cannot_pull_a_person_out_of_a_household_elsewhere(gql, officer, households, person):
    (north, _), (_, south_head) = households["H1"], households["H2"]
    client = gql(officer)
    pulled = client.ok(MOVE, {"i": {"individualId": str(south_head.pk), "groupId": str(north.pk), "role": "SON"}})
    assert codes(pulled["moveGroupIndividual"]) == [("id", "NOT_FOUND")]
    assert GroupIndividual.objects.filter(individual=south_head, group__code="HH-H2").exists()


def test_a_household_that_moves_takes_its_members_along(gql, make_user, officer, households, places, person):
    north, north_head = households["H1"]
    spouse = person("Spouse", "North", place="H1")
    services.add_member(make_user(NATIONAL), group_id=north.pk, individual_id=spouse.pk, role="SPOUSE")

    outside = gql(officer).ok(UPDATE_HOUSEHOLD, {"i": {"id": str(north.pk), "locationId": str(places["H2"].pk)}})
    assert codes(outside["updateGroup"]) == [("locationId", "OUT_OF_SCOPE")]

    moved = gql(make_user(NATIONAL)).ok(UPDATE_HOUSEHOLD, {"i": {"id": str(north.pk),
                                                                "locationId": str(places["H2"].pk)}})
    assert moved["updateGroup"]["errors"] == []
    assert {p.location_id for p in Individual.objects.filter(pk__in=[north_head.pk, spouse.pk])} == {places["H2"].pk}
    assert Group.objects.get(pk=north.pk).location_id == places["H2"].pk
