"""The registry over GraphQL: the openIMIS query shapes, programme fields, households."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from modules.individual import services
from modules.individual.models import GroupIndividual, Individual
from modules.location.models import UserLocation

pytestmark = pytest.mark.django_db

SEARCH = ["individual.registry.search", "location.scope.national"]
EDIT = [*SEARCH, "individual.registry.create", "individual.registry.update", "individual.registry.delete"]

FRONTEND_QUERY = """{ individual(isDeleted: false, firstName_Icontains: "jean", first: 10, orderBy: ["lastName"]) { totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { node { id uuid isDeleted dateCreated dateUpdated firstName lastName dob jsonExt version userUpdated { username } } } } }"""


def names(data: dict[str, Any], field: str = "individual") -> list[str]:
    return [e["node"]["lastName"] for e in data[field]["edges"]]


def test_the_frontend_query_works_as_sent(gql, make_user, person, admin_user):
    person("Jean", "Ndayishimiye", national_id="ID-0001", vulnerability_score=40)
    person("Jeanne", "Bizimana")
    person("Pierre", "Jean-Baptiste")
    data = gql(make_user(SEARCH)).ok(FRONTEND_QUERY)["individual"]
    assert data["totalCount"] == 2
    assert names({"individual": data}) == ["Bizimana", "Ndayishimiye"]
    node = data["edges"][1]["node"]
    assert json.loads(node["jsonExt"]) == {"national_id": "ID-0001", "vulnerability_score": 40}
    assert node["userUpdated"] == {"username": admin_user.username} and node["version"] == 1
    assert data["pageInfo"]["hasNextPage"] is False


@pytest.mark.parametrize(("condition", "expected"), [
    ("vulnerability_score__lt__integer=50", ["A", "B"]),
    ("vulnerability_score__gte__integer=50", ["C"]),
    ("vulnerability_score__exact__integer=10", ["A"]),
    ("vulnerability_score__lte__decimal=30.5", ["A", "B"]),
    ("disability__exact__boolean=true", ["B"]),
    ("education_level__iexact__string=PRIMARY", ["A"]),
    ("phone__icontains__string=257", ["A", "C"]),
    ("national_id__exact__string=ID-0002", ["B"]),
    ("phone__isnull__boolean=true", ["B"]),
    ("phone__isnull__boolean=false", ["A", "C"]),
])
def test_custom_filters(gql, make_user, person, condition, expected):
    person("x", "A", national_id="ID-0001", vulnerability_score=10, education_level="primary", phone="+257 1234")
    person("x", "B", national_id="ID-0002", vulnerability_score=30, disability=True)
    person("x", "C", national_id="ID-0003", vulnerability_score=70, phone="257 999 111")
    data = gql(make_user(SEARCH)).ok(
        'query($f: [String]) { individual(customFilters: $f, orderBy: ["lastName"]) { edges { node { lastName } } } }',
        {"f": [condition]})
    assert names(data) == expected


@pytest.mark.parametrize("bad", [
    "vulnerability_score__lt__integer=ten", "no_equals_sign", "a__b=1", "x__between__integer=1",
    "x__lt__float=1", "x__icontains__integer=1", "bad-name__exact__string=1", "x__lt__boolean=true",
    "x__exact__date=2020-13-01",
])
def test_malformed_custom_filters_are_clear_errors(gql, make_user, person, bad):
    person("x", "A")
    result = gql(make_user(SEARCH)).execute(
        'query($f: [String]) { individual(customFilters: $f) { totalCount } }', {"f": [bad]})
    assert result["data"]["individual"] is None
    error = result["errors"][0]
    assert error["extensions"]["code"] == "INVALID_CUSTOM_FILTER" and bad in error["message"]


def test_date_custom_filter_and_dob_range(gql, make_user, person):
    person("x", "Old", born="1950-05-01")
    person("x", "Young", born="2010-05-01")
    client = gql(make_user(SEARCH))
    data = client.ok('{ individual(dob_Lte: "1960-01-01") { edges { node { lastName } } } }')
    assert names(data) == ["Old"]
    data = client.ok('{ individual(dob_Gt: "1960-01-01", dob_Lt: "2020-01-01") { edges { node { lastName } } } }')
    assert names(data) == ["Young"]


def test_location_filter_includes_descendants_and_scope_applies(gql, make_user, person, places):
    person("a", "InH1", place="H1")
    person("b", "InH2", place="H2")
    client = gql(make_user(SEARCH))
    data = client.ok('{ individual(location: "%s") { edges { node { lastName } } } }' % places["C1"].pk)
    assert names(data) == ["InH1"]
    data = client.ok('{ individual(location: "%s", orderBy: ["lastName"]) { edges { node { lastName } } } }' % places["P1"].pk)
    assert names(data) == ["InH1", "InH2"]
    scoped = make_user(["individual.registry.search"])
    UserLocation.objects.create(user=scoped, location=places["C2"])
    assert names(gql(scoped).ok('{ individual { edges { node { lastName } } } }')) == ["InH2"]


def test_invalid_json_ext_is_refused_with_field_errors(gql, make_user, places):
    client = gql(make_user(EDIT))
    data = client.ok("""mutation($i: CreateIndividualMutationInput!) { createIndividual(input: $i) {
        errors { field code message } individual { uuid } } }""", {"i": {
        "firstName": "Ana", "lastName": "Iradukunda", "dob": "1990-02-03", "locationId": str(places["H1"].pk),
        "jsonExt": json.dumps({"vulnerability_score": 400, "national_id": "x", "unknown": 1})}})
    result = data["createIndividual"]
    assert result["individual"] is None
    fields = {e["field"] for e in result["errors"]}
    assert {"jsonExt.vulnerability_score", "jsonExt.national_id", "jsonExt"} <= fields
    assert Individual.objects.count() == 0


def test_unique_key_is_enforced_across_the_registry(gql, make_user, person, places):
    person("a", "First", national_id="ID-7777")
    client = gql(make_user(EDIT))
    data = client.ok("""mutation($i: CreateIndividualMutationInput!) { createIndividual(input: $i) {
        errors { field code } } }""", {"i": {"firstName": "b", "lastName": "Second", "dob": "1991-01-01",
                                             "locationId": str(places["H1"].pk),
                                             "jsonExt": json.dumps({"national_id": "ID-7777"})}})
    assert data["createIndividual"]["errors"] == [{"field": "jsonExt.national_id", "code": "DUPLICATE_KEY"}]
    # and the database itself refuses it, whatever the path
    with pytest.raises(IntegrityError), transaction.atomic():
        Individual.objects.create(first_name="c", last_name="Third", dob="1992-01-01",
                                  json_ext={"national_id": "ID-7777"})


HOUSEHOLD = """mutation($i: CreateGroupIndividualMutationInput!) { createGroupIndividual(input: $i) {
    errors { field code message } groupIndividual { role recipientType group { code head { lastName } } } } }"""


def test_one_head_and_one_primary_per_household(gql, make_user, person, places, admin_user):
    group = services.create_group(admin_user, code="HH-1", location_id=places["H1"].pk)
    a, b, c = person("a", "Head"), person("b", "Spouse"), person("c", "Child")
    client = gql(make_user(EDIT))

    def add(individual: Any, role: str, recipient: str | None = None) -> dict[str, Any]:
        payload = {"groupId": str(group.pk), "individualId": str(individual.pk), "role": role}
        if recipient:
            payload["recipientType"] = recipient
        return client.ok(HOUSEHOLD, {"i": payload})["createGroupIndividual"]

    first = add(a, "HEAD", "PRIMARY")
    assert first["errors"] == [] and first["groupIndividual"]["group"]["head"] == {"lastName": "Head"}
    second = add(b, "HEAD", "PRIMARY")
    assert {e["code"] for e in second["errors"]} == {"HEAD_EXISTS", "PRIMARY_EXISTS"}
    assert add(b, "SPOUSE", "SECONDARY")["errors"] == []
    again = add(b, "SON")
    assert again["errors"][0]["code"] == "ALREADY_MEMBER"
    assert add(c, "SON")["errors"] == []
    # the database enforces it too, whatever the path
    with pytest.raises(IntegrityError), transaction.atomic():
        GroupIndividual.objects.filter(individual=c).update(role="HEAD")


def test_move_member_to_another_household(gql, make_user, person, places, admin_user):
    one = services.create_group(admin_user, code="HH-1", location_id=places["H1"].pk)
    two = services.create_group(admin_user, code="HH-2", location_id=places["H1"].pk)
    a = person("a", "Mover")
    services.add_member(admin_user, group_id=one.pk, individual_id=a.pk, role="HEAD")
    client = gql(make_user(EDIT))
    data = client.ok("""mutation { moveGroupIndividual(input: {individualId: "%s", groupId: "%s", role: "HEAD"}) {
        errors { code } groupIndividual { group { code head { lastName } } } } }""" % (a.pk, two.pk))
    assert data["moveGroupIndividual"] == {"errors": [], "groupIndividual": {"group": {"code": "HH-2", "head": {"lastName": "Mover"}}}}
    one.refresh_from_db()
    assert one.head_id is None
    members = client.ok('{ groupIndividual(group_Id: "%s") { totalCount } }' % one.pk)
    assert members["groupIndividual"]["totalCount"] == 0
    unattached = client.ok('{ individual(filterNotAttachedToGroup: true) { totalCount } }')
    assert unattached["individual"]["totalCount"] == 0
    in_two = client.ok('{ individual(groupId: "%s") { edges { node { lastName } } } }' % two.pk)
    assert names(in_two) == ["Mover"]


def test_delete_and_undo_delete(gql, make_user, person):
    a, b = person("a", "One"), person("b", "Two")
    client = gql(make_user(EDIT))
    done = client.ok('mutation { deleteIndividual(input: {ids: ["%s", "%s"]}) { errors { code } individuals { isDeleted } } }' % (a.pk, b.pk))
    assert done["deleteIndividual"]["individuals"] == [{"isDeleted": True}, {"isDeleted": True}]
    assert client.ok("{ individual { totalCount } }")["individual"]["totalCount"] == 0
    assert client.ok("{ individual(isDeleted: true) { totalCount } }")["individual"]["totalCount"] == 2
    client.ok('mutation { undoDeleteIndividual(input: {ids: ["%s"]}) { errors { code } } }' % a.pk)
    assert names(client.ok("{ individual { edges { node { lastName } } } }")) == ["One"]
    history = client.ok('{ individualHistory(rowId: "%s", orderBy: ["id"]) { edges { node { operation } } } }' % a.pk)
    assert [e["node"]["operation"] for e in history["individualHistory"]["edges"]] == ["I", "U", "U"]


def test_list_query_count_does_not_grow_with_page_size(gql, make_user, person, places, admin_user):
    for i in range(60):
        person(f"p{i}", f"Name{i:03d}", national_id=f"ID-{i:04d}")
    client = gql(make_user(SEARCH))
    query = """query($n: Int) { individual(first: $n, orderBy: ["lastName"], customFilters: ["national_id__icontains__string=ID"]) {
        totalCount edges { node { uuid firstName location { code } userUpdated { username } } } } }"""
    counts = []
    for n in (5, 60):
        with CaptureQueriesContext(connection) as queries:
            data = client.ok(query, {"n": n})
        assert len(data["individual"]["edges"]) == n
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_update_with_stale_version(gql, make_user, person):
    a = person("a", "Versioned")
    client = gql(make_user(EDIT))
    mutation = """mutation($i: UpdateIndividualMutationInput!) { updateIndividual(input: $i) { errors { code } individual { lastName version } } }"""
    ok = client.ok(mutation, {"i": {"id": str(a.pk), "version": 1, "lastName": "Renamed"}})
    assert ok["updateIndividual"]["individual"] == {"lastName": "Renamed", "version": 2}
    stale = client.ok(mutation, {"i": {"id": str(a.pk), "version": 1, "lastName": "Again"}})
    assert stale["updateIndividual"]["errors"] == [{"code": "STALE_VERSION"}]


def test_deleting_a_household_with_members_keeps_the_people(gql, make_user, person, places, admin_user):
    group = services.create_group(admin_user, code="HH-9", location_id=places["H1"].pk)
    a, b = person("a", "Head"), person("b", "Child")
    services.add_member(admin_user, group_id=group.pk, individual_id=a.pk, role="HEAD", recipient_type="PRIMARY")
    services.add_member(admin_user, group_id=group.pk, individual_id=b.pk, role="SON")
    client = gql(make_user(EDIT))
    done = client.ok('mutation { deleteGroup(input: {ids: ["%s"]}) { errors { code } groups { isDeleted head { lastName } } } }' % group.pk)
    assert done["deleteGroup"] == {"errors": [], "groups": [{"isDeleted": True, "head": None}]}
    assert client.ok("{ individual(filterNotAttachedToGroup: true) { totalCount } }")["individual"]["totalCount"] == 2
