"""Every argument that takes a UUID also takes the Relay global id queries return, through one
scalar; anything else gets a typed error and changes nothing."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from graphql_relay import to_global_id

from core.graphql.scalars import UUID
from core.graphql.schema import schema
from core.loader import REPO_ROOT
from core.models import MutationLog, Role
from modules.location.models import Location, UserLocation
from modules.location.services import create_location

pytestmark = pytest.mark.django_db


@pytest.fixture
def places(admin_user: Any) -> dict[str, Location]:
    p1 = create_location(admin_user, code="P1", name="One", type="Province")
    return {"P1": p1, "C11": create_location(admin_user, code="C11", name="C", type="Commune", parent_id=p1.pk)}


@pytest.fixture
def national(gql: Any, make_user: Any) -> Any:
    return gql(make_user(superuser=True))


def listed_id(client: Any, query: str) -> str:
    data = client.ok(query)
    return next(iter(data.values()))["edges"][0]["node"]["id"]


def test_mutations_take_the_global_ids_that_lists_return(national: Any, make_user: Any, places: dict[str, Location]) -> None:
    officer = make_user(username="officer")
    UserLocation.objects.create(user=officer, location=places["C11"])
    Role.objects.create(name="Clerk", permissions=["individual.registry.search"])
    location_id = listed_id(national, '{ locations(code: "P1") { edges { node { id } } } }')
    user_id = listed_id(national, '{ users(username: "officer") { edges { node { id } } } }')
    role_id = listed_id(national, '{ roles(name: "Clerk") { edges { node { id } } } }')

    renamed = national.ok('mutation($id: UUID!) { updateLocation(input: {uuid: $id, name: "Renamed"}) { errors { code } location { name } } }',
                          {"id": location_id})
    assert renamed["updateLocation"] == {"errors": [], "location": {"name": "Renamed"}}
    # the same as a literal, and in lists
    updated = national.ok('mutation { updateUser(input: {uuid: "%s", roles: ["%s"], locations: ["%s"]}) { errors { code } user { roles { name } locations { code } } } }'
                          % (user_id, role_id, location_id))
    assert updated["updateUser"] == {"errors": [], "user": {"roles": [{"name": "Clerk"}], "locations": [{"code": "P1"}]}}
    # filters declared on UUID fields too
    found = national.ok("query($r: UUID) { users(role_Uuid: $r) { edges { node { username } } } }", {"r": role_id})
    assert [e["node"]["username"] for e in found["users"]["edges"]] == ["officer"]
    children = national.ok("query($p: UUID) { locations(parent_Uuid: $p) { edges { node { code } } } }", {"p": location_id})
    assert [e["node"]["code"] for e in children["locations"]["edges"]] == ["C11"]


def test_a_global_id_of_another_type_finds_nothing(national: Any, make_user: Any, places: dict[str, Location]) -> None:
    wrong_type = to_global_id("UserGQLType", str(make_user().pk))
    result = national.ok('mutation($id: UUID!) { deleteLocation(input: {uuid: $id}) { errors { code } } }', {"id": wrong_type})
    assert result["deleteLocation"]["errors"] == [{"code": "NOT_FOUND"}]


@pytest.mark.parametrize("bad", ["not-a-uuid", "", to_global_id("LocationGQLType", "42"), "x" * 5000])
def test_anything_else_is_a_typed_error_that_changes_nothing(national: Any, places: dict[str, Location], bad: str) -> None:
    as_variable = 'mutation($id: UUID!) { updateLocation(input: {uuid: $id, name: "Changed"}) { errors { code } } }'
    as_literal = 'mutation { updateLocation(input: {uuid: "%s", name: "Changed"}) { errors { code } } }' % bad
    for result in (national.execute(as_variable, {"id": bad}), national.execute(as_literal)):
        assert result.get("data") is None, result
        error = result["errors"][0]
        assert "neither a UUID nor the global id of an object" in error["message"], error
        assert len(error["message"]) < 400 and not re.search(r"Traceback|psycopg|SELECT|ValueError", error["message"])
    assert {loc.name for loc in Location.objects.all()} == {"One", "C"}
    assert not MutationLog.objects.exists()


def test_a_non_string_value_is_refused_without_naming_a_python_type(national: Any, places: dict[str, Location]) -> None:
    result = national.execute('mutation($id: UUID!) { deleteLocation(input: {uuid: $id}) { errors { code } } }', {"id": 12})
    message = result["errors"][0]["message"]
    assert "neither a UUID nor the global id" in message
    assert not re.search(r"\b(int|str|NoneType)\b", message), message


def test_the_schema_has_one_uuid_scalar_and_the_code_no_other() -> None:
    assert schema.graphql_schema.type_map["UUID"].graphene_type is UUID
    offenders = [str(path.relative_to(REPO_ROOT)) for root in ("core", "modules")
                 for path in Path(REPO_ROOT, root).rglob("*.py")
                 if "graphene.UUID" in path.read_text(encoding="utf-8") and path.name != "scalars.py"]
    assert offenders == [], "use core.graphql.scalars.UUID (see its docstring for the sweep command)"
