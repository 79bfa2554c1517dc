"""Roles group declared permission codes; granting one changes what a user can do at once."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

CREATE = """mutation($input: CreateRoleMutationInput!) { createRole(input: $input) {
    errors { field code message } role { uuid name permissions version } } }"""
ASSIGN = """mutation($input: SetUserRolesMutationInput!) { setUserRoles(input: $input) {
    errors { code } user { username } } }"""


def test_a_role_grants_its_codes_and_unknown_codes_are_refused(gql, make_user):
    # national: assigning roles, like every change to a user, keeps to the manager's scope
    manager = gql(make_user(["core.role.manage", "location.scope.national"]))
    refused = manager.ok(CREATE, {"input": {"name": "Clerk", "permissions": ["location.location.search", "location.fly"]}})
    assert refused["createRole"]["role"] is None
    assert refused["createRole"]["errors"][0]["code"] == "UNKNOWN_PERMISSION"
    assert "location.fly" in refused["createRole"]["errors"][0]["message"]

    role = manager.ok(CREATE, {"input": {"name": "Clerk", "permissions": ["location.location.search", "location.scope.national"]}})
    role = role["createRole"]["role"]
    assert role["permissions"] == ["location.location.search", "location.scope.national"]

    clerk = make_user([])
    before = gql(clerk).execute("{ locations { totalCount } }")
    assert before["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"
    assigned = manager.ok(ASSIGN, {"input": {"userUuid": str(clerk.pk), "roleUuids": [role["uuid"]]}})
    assert assigned["setUserRoles"]["errors"] == []
    clerk.refresh_from_db()
    assert gql(clerk).ok("{ locations { totalCount } }")["locations"]["totalCount"] == 0

    duplicate = manager.ok(CREATE, {"input": {"name": "Clerk", "permissions": []}})
    assert duplicate["createRole"]["errors"][0]["code"] == "ROLE_NAME_TAKEN"


def test_permissions_lists_every_declared_code(gql, make_user):
    data = gql(make_user(["core.role.manage"])).ok("{ permissions { code description } }")
    codes = {p["code"] for p in data["permissions"]}
    assert {"location.location.search", "core.role.manage", "location.location.import"} <= codes
    assert all(p["description"] for p in data["permissions"])
