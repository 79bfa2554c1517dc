"""The location GraphQL surface, as the openIMIS frontends and integrators use it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.models import MutationLog
from modules.location.models import Location, UserLocation

pytestmark = pytest.mark.django_db

LIST = """
query($first: Int, $after: String, $last: Int, $before: String, $name: String, $parent: UUID,
      $type: String, $orderBy: [String], $deleted: Boolean) {
  locations(first: $first, after: $after, last: $last, before: $before, name_Icontains: $name,
            parent_Uuid: $parent, type: $type, orderBy: $orderBy, isDeleted: $deleted) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { node { id uuid code name type level version isDeleted parent { code }
                   userUpdated { username } } }
  }
}
"""


def codes(data: dict[str, Any]) -> list[str]:
    return [e["node"]["code"] for e in data["locations"]["edges"]]


def test_list_filters_order_and_pages(gql, make_user, tree, admin_user):
    client = gql(make_user(["location.location.search", "location.scope.national"]))
    data = client.ok(LIST, {"type": "Colline", "orderBy": ["name"]})
    assert data["locations"]["totalCount"] == 4
    assert codes(data) == ["H112", "H121", "H211", "H111"]  # Buyenzi, Kamenge, Kiremba, Rohero
    node = data["locations"]["edges"][0]["node"]
    assert node["uuid"] == str(tree["H112"].pk) and node["parent"] == {"code": "C11"}
    assert node["userUpdated"] == {"username": admin_user.username} and node["version"] == 1

    data = client.ok(LIST, {"parent": str(tree["P1"].pk), "orderBy": ["-code"]})
    assert codes(data) == ["C12", "C11"]
    data = client.ok(LIST, {"name": "KI", "orderBy": ["code"]})
    assert codes(data) == ["H211"]

    first = client.ok(LIST, {"first": 2, "orderBy": ["code"]})["locations"]
    assert first["totalCount"] == 9 and first["pageInfo"]["hasNextPage"]
    second = client.ok(LIST, {"first": 2, "after": first["pageInfo"]["endCursor"], "orderBy": ["code"]})
    assert codes({"locations": first}) == ["C11", "C12"]
    assert codes(second) == ["C21", "H111"]
    last = client.ok(LIST, {"last": 2, "orderBy": ["code"]})
    assert codes(last) == ["P1", "P2"]


def test_order_by_unknown_field_is_a_clear_error(gql, make_user, tree):
    result = gql(make_user(["location.location.search", "location.scope.national"])).execute(LIST, {"orderBy": ["password"]})
    assert result["data"]["locations"] is None
    assert "Cannot order by 'password'" in result["errors"][0]["message"]


def test_page_size_limit(gql, make_user, tree):
    result = gql(make_user(["location.location.search", "location.scope.national"])).execute(LIST, {"first": 1000})
    # refused while the request is validated, before anything runs
    assert "data" not in result
    assert "exceeds the `first` limit of 100" in result["errors"][0]["message"]
    assert result["errors"][0]["extensions"]["code"] == "PAGE_TOO_LARGE"


def test_query_count_does_not_grow_with_page_size(gql, make_user, tree, many_collines):
    many_collines(120)
    client = gql(make_user(["location.location.search", "location.scope.national"]))
    counts = []
    for first in (5, 100):
        with CaptureQueriesContext(connection) as queries:
            data = client.ok(LIST, {"first": first})
        assert len(data["locations"]["edges"]) == first
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


def test_deleted_locations_are_hidden_unless_asked_for(gql, make_user, tree):
    admin = make_user(["location.location.search", "location.location.delete", "location.scope.national"])
    client = gql(admin)
    done = client.ok("""mutation { deleteLocation(input: {uuid: "%s"}) { errors { code } location { isDeleted version } } }""" % tree["H211"].pk)
    assert done["deleteLocation"] == {"errors": [], "location": {"isDeleted": True, "version": 2}}
    assert "H211" not in codes(client.ok(LIST, {"first": 50}))
    assert codes(client.ok(LIST, {"deleted": True})) == ["H211"]


def test_scoped_user_sees_only_their_subtree(gql, make_user, tree):
    user = make_user(["location.location.search"])
    assert client_codes(gql(user)) == []  # no scope, not national: nothing
    UserLocation.objects.create(user=user, location=tree["C11"])
    assert client_codes(gql(user)) == ["C11", "H111", "H112"]
    national = make_user(["location.location.search", "location.scope.national"])
    assert len(client_codes(gql(national))) == 9


def client_codes(client: Any) -> list[str]:
    return sorted(codes(client.ok(LIST, {"first": 100})))


CREATE = """
mutation($input: CreateLocationMutationInput!) {
  createLocation(input: $input) {
    clientMutationId
    errors { field code message }
    location { uuid code name type parent { code } }
  }
}
"""


def test_create_returns_the_object_and_is_logged(gql, make_user, tree):
    user = make_user(["location.location.create", "location.location.search", "core.mutation_log.view", "location.scope.national"])
    client = gql(user)
    data = client.ok(CREATE, {"input": {
        "code": "C13", "name": "Muha", "type": "Commune", "parentUuid": str(tree["P1"].pk),
        "clientMutationId": "m-1", "clientMutationLabel": "Create Muha",
    }})["createLocation"]
    assert data["errors"] == [] and data["clientMutationId"] == "m-1"
    assert data["location"]["code"] == "C13" and data["location"]["parent"] == {"code": "P1"}
    assert Location.objects.filter(code="C13", parent=tree["P1"]).exists()

    logs = client.ok("""{ mutationLogs(clientMutationId: "m-1") { edges { node {
        status error clientMutationLabel requestDateTime } } } }""")["mutationLogs"]["edges"]
    assert logs[0]["node"]["status"] == 2 and logs[0]["node"]["error"] is None
    assert logs[0]["node"]["clientMutationLabel"] == "Create Muha"


def test_create_refusals_are_typed_errors_and_change_nothing(gql, make_user, tree):
    user = make_user(["location.location.create", "core.mutation_log.view", "location.scope.national"])
    client = gql(user)
    before = Location.objects.count()
    data = client.ok(CREATE, {"input": {
        "code": "C11", "name": "", "type": "Colline", "parentUuid": str(tree["P1"].pk),
        "clientMutationId": "m-2",
    }})["createLocation"]
    assert data["location"] is None
    found = {(e["field"], e["code"]) for e in data["errors"]}
    assert found == {("code", "LOCATION_CODE_TAKEN"), ("name", "REQUIRED"), ("parentUuid", "INVALID_PARENT")}
    assert Location.objects.count() == before
    log = MutationLog.objects.get(client_mutation_id="m-2")
    assert log.status == MutationLog.ERROR and {e["code"] for e in log.error} >= {"LOCATION_CODE_TAKEN"}

    both = client.ok("""query($ids: [String]) { mutationLogs(clientMutationId_In: $ids) {
        totalCount edges { node { clientMutationId status error } } } }""", {"ids": ["m-2", "nope"]})
    node = both["mutationLogs"]["edges"][0]["node"]
    assert both["mutationLogs"]["totalCount"] == 1 and node["status"] == 1
    assert "LOCATION_CODE_TAKEN" in json.loads(node["error"])[0]["code"]


def test_update_with_stale_version_is_refused(gql, make_user, tree):
    client = gql(make_user(["location.location.update", "location.scope.national"]))
    update = """mutation($input: UpdateLocationMutationInput!) { updateLocation(input: $input) {
        errors { field code message } location { name version } } }"""
    uid = str(tree["H111"].pk)
    ok = client.ok(update, {"input": {"uuid": uid, "version": 1, "name": "Rohero I"}})["updateLocation"]
    assert ok == {"errors": [], "location": {"name": "Rohero I", "version": 2}}
    stale = client.ok(update, {"input": {"uuid": uid, "version": 1, "name": "Rohero II"}})["updateLocation"]
    assert stale["location"] is None and stale["errors"][0]["code"] == "STALE_VERSION"
    assert Location.objects.get(pk=uid).name == "Rohero I"


def test_moving_a_commune_moves_its_collines(gql, make_user, tree):
    client = gql(make_user(["location.location.update", "location.location.search", "location.scope.national"]))
    client.ok("""mutation { updateLocation(input: {uuid: "%s", parentUuid: "%s"}) { errors { code } } }"""
              % (tree["C11"].pk, tree["P2"].pk))
    under_p2 = client.ok("""{ locations(within_Uuid: "%s") { edges { node { code } } } }""" % tree["P2"].pk)
    assert sorted(codes(under_p2)) == ["C11", "C21", "H111", "H112", "H211", "P2"]


def test_delete_with_children_is_refused(gql, make_user, tree):
    client = gql(make_user(["location.location.delete", "location.scope.national"]))
    data = client.ok("""mutation { deleteLocation(input: {uuid: "%s"}) { errors { code message } } }""" % tree["C11"].pk)
    assert data["deleteLocation"]["errors"][0]["code"] == "LOCATION_HAS_CHILDREN"
    assert not Location.all_objects.get(pk=tree["C11"].pk).is_deleted


def test_location_history_lists_every_version(gql, make_user, tree):
    client = gql(make_user(["location.location.update", "location.location.search", "location.scope.national"]))
    client.ok("""mutation { updateLocation(input: {uuid: "%s", name: "Rohero I"}) { errors { code } } }""" % tree["H111"].pk)
    data = client.ok("""{ locationHistory(rowId: "%s", orderBy: ["id"]) { totalCount
        edges { node { operation data } } } }""" % tree["H111"].pk)["locationHistory"]
    assert data["totalCount"] == 2
    assert [e["node"]["operation"] for e in data["edges"]] == ["I", "U"]
    assert json.loads(data["edges"][1]["node"]["data"])["name"] == "Rohero I"
