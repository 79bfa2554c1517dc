"""``node(id:)`` fetches any listed object by the global id queries return, with that type's
own permission and scope: what the caller's list would not show is "not found" (null)."""

from __future__ import annotations

from typing import Any

import pytest
from graphql_relay import to_global_id

from core.models import MutationLog
from modules.location.models import UserLocation
from modules.location.services import create_location, delete_location

pytestmark = pytest.mark.django_db

NODE = """query($id: ID!) { node(id: $id) { id __typename
  ... on LocationGQLType { code }
  ... on UserGQLType { username locations { code } }
  ... on MutationLogType { mutationName } } }"""


@pytest.fixture
def places(admin_user: Any) -> dict[str, Any]:
    p1 = create_location(admin_user, code="P1", name="One", type="Province")
    p2 = create_location(admin_user, code="P2", name="Two", type="Province")
    c11 = create_location(admin_user, code="C11", name="One-one", type="Commune", parent_id=p1.pk)
    return {"P1": p1, "P2": p2, "C11": c11}


def node(client: Any, global_id: str) -> dict[str, Any]:
    return client.execute(NODE, {"id": global_id})


def gid(type_name: str, obj: Any) -> str:
    return to_global_id(type_name, str(obj.pk))


def codes(result: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in result.get("errors") or []]


def test_the_id_a_list_returns_fetches_the_object(gql: Any, make_user: Any, places: dict[str, Any]) -> None:
    client = gql(make_user(["location.location.search", "location.scope.national"]))
    listed = client.ok('{ locations(code: "C11") { edges { node { id } } } }')["locations"]["edges"][0]["node"]["id"]
    assert client.ok(NODE, {"id": listed})["node"] == {"id": listed, "__typename": "LocationGQLType", "code": "C11"}


def test_an_object_outside_the_callers_scope_is_not_found(gql: Any, make_user: Any, places: dict[str, Any]) -> None:
    scoped = make_user(["location.location.search", "core.user.view"])
    UserLocation.objects.create(user=scoped, location=places["P1"])
    client = gql(scoped)
    assert client.ok(NODE, {"id": gid("LocationGQLType", places["C11"])})["node"]["code"] == "C11"
    assert client.ok(NODE, {"id": gid("LocationGQLType", places["P2"])}) == {"node": None}
    # users too: one scoped to P2 is outside, one scoped to C11 inside
    elsewhere, inside = make_user(username="elsewhere"), make_user(username="inside")
    UserLocation.objects.create(user=elsewhere, location=places["P2"])
    UserLocation.objects.create(user=inside, location=places["C11"])
    assert client.ok(NODE, {"id": gid("UserGQLType", elsewhere)}) == {"node": None}
    assert client.ok(NODE, {"id": gid("UserGQLType", inside)})["node"] == {
        "id": gid("UserGQLType", inside), "__typename": "UserGQLType", "username": "inside", "locations": [{"code": "C11"}]}


def test_missing_deleted_and_other_peoples_objects_are_null(
        gql: Any, make_user: Any, admin_user: Any, places: dict[str, Any]) -> None:
    user = make_user(["location.location.search", "location.scope.national", "core.mutation_log.view"])
    client = gql(user)
    delete_location(admin_user, places["P2"].pk)
    assert client.ok(NODE, {"id": gid("LocationGQLType", places["P2"])}) == {"node": None}
    assert client.ok(NODE, {"id": to_global_id("LocationGQLType", "00000000-0000-4000-8000-000000000000")}) == {"node": None}
    others = MutationLog.objects.create(mutation_name="SomeoneElses", user=admin_user)
    mine = MutationLog.objects.create(mutation_name="Mine", user=user)
    assert client.ok(NODE, {"id": gid("MutationLogType", others)}) == {"node": None}
    assert client.ok(NODE, {"id": gid("MutationLogType", mine)})["node"]["mutationName"] == "Mine"


def test_the_types_own_permission_is_required(gql: Any, make_user: Any, places: dict[str, Any]) -> None:
    result = node(gql(make_user(["individual.registry.search"])), gid("LocationGQLType", places["P1"]))
    assert result["data"]["node"] is None
    assert result["errors"][0]["extensions"] == {"code": "PERMISSION_DENIED", "permission": "location.location.search"}


def test_ids_that_name_nothing_fetchable_are_refused_plainly(gql: Any, make_user: Any, places: dict[str, Any]) -> None:
    client = gql(make_user(superuser=True))
    for bad in ("not-an-id", str(places["P1"].pk), to_global_id("Nonsense", str(places["P1"].pk)),
                to_global_id("HistoryEntryType", "1"), to_global_id("LocationGQLType", "42")):
        result = node(client, bad)
        assert codes(result) == ["INVALID_ID"], (bad, result)
        assert result["data"]["node"] is None
