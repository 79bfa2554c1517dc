"""Users over GraphQL: a scoped list, creation and changes without privilege escalation,
deactivation, and passwords.

The cast: a national administrator, and a province administrator of P1 who holds the user
rights and ``individual.search`` but not ``core.role.manage``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.models import LoginSession, MutationLog, Role, User
from modules.location.models import Location, UserLocation
from modules.location.services import create_location

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"
USER_RIGHTS = ["core.user.view", "core.user.create", "core.user.update", "core.user.delete"]

USERS = """query($f: String, $o: [String], $active: Boolean, $role: UUID, $loc: UUID, $first: Int) {
  users(username_Icontains: $f, orderBy: $o, isActive: $active, role_Uuid: $role, location_Uuid: $loc, first: $first) {
    totalCount edges { node { id uuid username otherNames lastName email isActive isLocked
      roles { name } locations { code } } } } }"""
CREATE = """mutation($input: CreateUserMutationInput!) { createUser(input: $input) {
  errors { field code message } user { uuid username otherNames lastName email isActive
  roles { name } locations { code } } } }"""
UPDATE = """mutation($input: UpdateUserMutationInput!) { updateUser(input: $input) {
  errors { field code message } user { username otherNames email roles { name } locations { code } } } }"""
DEACTIVATE = """mutation($u: UUID!) { deactivateUser(input: {uuid: $u}) {
  errors { field code message } user { isActive } } }"""
REACTIVATE = """mutation($u: UUID!) { reactivateUser(input: {uuid: $u}) {
  errors { field code message } user { isActive } } }"""
CHANGE = """mutation($old: String!, $new: String!) { changePassword(input: {oldPassword: $old, newPassword: $new}) {
  errors { field code message } } }"""
RESET = """mutation($u: UUID!, $p: String!) { resetUserPassword(input: {uuid: $u, newPassword: $p}) {
  errors { field code message } user { username isLocked } } }"""
TOKEN_AUTH = "mutation($u: String!, $p: String!) { tokenAuth(username: $u, password: $p) { token } }"


@pytest.fixture
def places(admin_user: Any) -> dict[str, Location]:
    made: dict[str, Location] = {}
    for code, type_, parent in (("P1", "Province", None), ("P2", "Province", None),
                                ("C11", "Commune", "P1"), ("C21", "Commune", "P2")):
        made[code] = create_location(admin_user, code=code, name=code, type=type_,
                                     parent_id=made[parent].pk if parent else None)
    return made


def scope(user: User, *locations: Location) -> User:
    for location in locations:
        UserLocation.objects.create(user=user, location=location)
    return user


@pytest.fixture
def national(make_user: Any) -> User:
    return make_user([*USER_RIGHTS, "location.scope.national", "core.role.manage"], username="national")


@pytest.fixture
def province_admin(make_user: Any, places: dict[str, Location]) -> User:
    return scope(make_user([*USER_RIGHTS, "individual.registry.search"], username="p1-admin"), places["P1"])


def payload(data: dict[str, Any]) -> dict[str, Any]:
    return next(iter(data.values()))


def error_codes(data: dict[str, Any]) -> list[str]:
    return [e["code"] for e in payload(data)["errors"]]


def logs_in(client: Any, username: str, password: str) -> bool:
    response = client.post("/graphql", data=json.dumps({"query": TOKEN_AUTH, "variables": {"u": username, "p": password}}),
                           content_type="application/json")
    return bool(response.json()["data"]["tokenAuth"])


# --- the list --------------------------------------------------------------------------------


def test_a_province_administrator_sees_only_users_within_their_province(
        gql: Any, make_user: Any, places: dict[str, Location], province_admin: User, national: User) -> None:
    scope(make_user(username="officer-c11"), places["C11"])
    scope(make_user(username="officer-p2"), places["P2"])
    scope(make_user(username="officer-both"), places["C11"], places["C21"])
    make_user(username="officer-nowhere")
    make_user(["location.scope.national"], username="officer-national")
    make_user(superuser=True, username="root")

    seen = gql(province_admin).ok(USERS, {"o": ["username"]})["users"]
    assert [e["node"]["username"] for e in seen["edges"]] == ["officer-c11", "p1-admin"]
    assert seen["totalCount"] == 2
    everyone = gql(national).ok(USERS, {"f": "officer"})["users"]
    assert everyone["totalCount"] == 5


def test_users_can_be_filtered_and_ordered(gql: Any, make_user: Any, places: dict[str, Location], national: User) -> None:
    clerk_role = Role.objects.create(name="Clerk", permissions=["individual.registry.search"])
    ann = scope(make_user(username="zz-ann"), places["C11"])
    ann.roles.add(clerk_role)
    scope(make_user(username="zz-bob"), places["C21"])
    carl = scope(make_user(username="zz-carl"), places["P1"])
    User.objects.filter(pk=carl.pk).update(is_active=False, first_name="Carlos")
    client = gql(national)

    def names(**variables: Any) -> list[str]:
        return [e["node"]["username"] for e in client.ok(USERS, variables)["users"]["edges"]]

    assert names(o=["-username"], f="zz-") == ["zz-carl", "zz-bob", "zz-ann"]
    assert names(active=False) == ["zz-carl"]
    assert names(role=str(clerk_role.pk)) == ["zz-ann"]
    assert names(loc=str(places["P1"].pk), o=["username"]) == ["zz-ann", "zz-carl"]
    carl_node = client.ok('{ users(otherNames_Icontains: "carl") { edges { node { otherNames isActive locations { code } } } } }')
    assert carl_node["users"]["edges"][0]["node"] == {"otherNames": "Carlos", "isActive": False, "locations": [{"code": "P1"}]}


def test_a_page_of_users_costs_the_same_queries_whatever_its_size(
        gql: Any, make_user: Any, places: dict[str, Location], national: User) -> None:
    role = Role.objects.create(name="Clerk", permissions=["individual.registry.search"])
    for i in range(12):
        scope(make_user(username=f"u{i:02d}"), places["C11"], places["C21"]).roles.add(role)
    client = gql(national)

    def count(first: int) -> int:
        with CaptureQueriesContext(connection) as queries:
            page = client.ok(USERS, {"first": first, "f": "u"})["users"]["edges"]
        assert len(page) == first and all(len(e["node"]["locations"]) == 2 and e["node"]["roles"] for e in page)
        return len(queries)

    assert count(2) == count(12)


# --- create ----------------------------------------------------------------------------------


def test_create_a_user_who_can_then_log_in(
        gql: Any, client: Any, places: dict[str, Location], province_admin: User) -> None:
    clerk = Role.objects.create(name="Clerk", permissions=["individual.registry.search"])
    data = gql(province_admin).ok(CREATE, {"input": {
        "username": "officer1", "otherNames": "Jeanne", "lastName": "Niyonzima", "email": "jeanne@example.org",
        "password": "a-long-enough-passphrase", "roles": [str(clerk.pk)], "locations": [str(places["C11"].pk)],
        "clientMutationId": "u-1",
    }})["createUser"]
    assert data["errors"] == []
    assert data["user"] == {
        "uuid": data["user"]["uuid"], "username": "officer1", "otherNames": "Jeanne", "lastName": "Niyonzima",
        "email": "jeanne@example.org", "isActive": True, "roles": [{"name": "Clerk"}], "locations": [{"code": "C11"}],
    }
    assert logs_in(client, "officer1", "a-long-enough-passphrase")
    logged = MutationLog.objects.get(client_mutation_id="u-1")
    assert logged.json_content["password"] == "***" and logged.status == MutationLog.SUCCESS


def test_bad_input_is_refused_field_by_field_and_creates_nothing(
        gql: Any, make_user: Any, places: dict[str, Location], national: User) -> None:
    make_user(username="Taken")
    before = User.objects.count()
    data = gql(national).ok(CREATE, {"input": {
        "username": "taken", "email": "not-an-address", "password": "short", "lastName": "x\x07y",
        "roles": ["00000000-0000-0000-0000-000000000001"], "locations": ["00000000-0000-0000-0000-000000000002"],
    }})
    assert data["createUser"]["user"] is None
    assert {(e["field"], e["code"]) for e in data["createUser"]["errors"]} == {
        ("username", "USERNAME_TAKEN"), ("email", "INVALID_EMAIL"), ("password", "PASSWORD_TOO_WEAK"),
        ("lastName", "INVALID_CHARACTER"), ("roles", "ROLE_NOT_FOUND"), ("locations", "LOCATION_NOT_FOUND"),
    }
    assert User.objects.count() == before


def test_a_role_beyond_the_administrators_own_rights_cannot_be_granted(
        gql: Any, places: dict[str, Location], province_admin: User, national: User) -> None:
    payroll = Role.objects.create(name="Payroll approver", permissions=["individual.registry.search", "payroll.approve"])
    attempt = {"username": "sneaky", "roles": [str(payroll.pk)], "locations": [str(places["C11"].pk)]}
    refused = gql(province_admin).ok(CREATE, {"input": attempt})["createUser"]
    assert refused["user"] is None
    assert [e["code"] for e in refused["errors"]] == ["ROLE_BEYOND_YOUR_RIGHTS"]
    assert "payroll.approve" in refused["errors"][0]["message"]
    assert not User.objects.filter(username="sneaky").exists()
    # granting the role to oneself through updateUser is refused the same way
    self_grant = gql(province_admin).ok(UPDATE, {"input": {"uuid": str(province_admin.pk), "roles": [str(payroll.pk)]}})
    assert error_codes(self_grant) == ["ROLE_BEYOND_YOUR_RIGHTS"]
    assert not province_admin.roles.filter(pk=payroll.pk).exists()
    # core.role.manage can write any role anyway, so it may grant one
    assert gql(national).ok(CREATE, {"input": attempt})["createUser"]["errors"] == []


def test_a_scoped_administrator_cannot_give_locations_outside_their_scope(
        gql: Any, make_user: Any, places: dict[str, Location], province_admin: User) -> None:
    client = gql(province_admin)
    outside = client.ok(CREATE, {"input": {"username": "far", "locations": [str(places["C11"].pk), str(places["P2"].pk)]}})
    assert [(e["field"], e["code"]) for e in outside["createUser"]["errors"]] == [("locations", "OUT_OF_SCOPE")]
    assert "P2" in outside["createUser"]["errors"][0]["message"]
    nowhere = client.ok(CREATE, {"input": {"username": "nowhere"}})
    assert error_codes(nowhere) == ["LOCATION_REQUIRED"]
    assert not User.objects.filter(username__in=["far", "nowhere"]).exists()

    mine = scope(make_user(username="mine"), places["C11"])
    widened = client.ok(UPDATE, {"input": {"uuid": str(mine.pk), "locations": [str(places["P2"].pk)]}})
    assert error_codes(widened) == ["OUT_OF_SCOPE"]
    assert list(UserLocation.objects.filter(user=mine).values_list("location__code", flat=True)) == ["C11"]


# --- update ----------------------------------------------------------------------------------


def test_update_changes_only_what_is_sent(gql: Any, make_user: Any, places: dict[str, Location], province_admin: User) -> None:
    officer = scope(make_user(username="officer"), places["C11"])
    User.objects.filter(pk=officer.pk).update(first_name="Old")
    data = gql(province_admin).ok(UPDATE, {"input": {"uuid": str(officer.pk), "email": "new@example.org",
                                                     "locations": [str(places["P1"].pk)]}})["updateUser"]
    assert data["errors"] == []
    assert data["user"] == {"username": "officer", "otherNames": "Old", "email": "new@example.org",
                            "roles": [], "locations": [{"code": "P1"}]}


def test_users_outside_scope_or_above_the_administrator_cannot_be_changed(
        gql: Any, make_user: Any, places: dict[str, Location], province_admin: User, national: User) -> None:
    elsewhere = scope(make_user(username="elsewhere"), places["P2"])
    stronger = scope(make_user(["individual.registry.search", "payroll.approve"], username="stronger"), places["C11"])
    root = make_user(superuser=True, username="root")
    client = gql(province_admin)
    for target in (elsewhere, root):
        for query, variables in ((UPDATE, {"input": {"uuid": str(target.pk), "email": "x@example.org"}}),
                                 (DEACTIVATE, {"u": str(target.pk)}),
                                 (RESET, {"u": str(target.pk), "p": "another-long-passphrase"})):
            assert error_codes(client.ok(query, variables)) == ["NOT_FOUND"]
    refused = client.ok(RESET, {"u": str(stronger.pk), "p": "another-long-passphrase"})
    assert error_codes(refused) == ["PERMISSION_DENIED"] and "payroll.approve" in refused["resetUserPassword"]["errors"][0]["message"]
    assert error_codes(gql(national).ok(RESET, {"u": str(root.pk), "p": "another-long-passphrase"})) == ["PERMISSION_DENIED"]
    root.refresh_from_db()
    assert root.check_password(PASSWORD) and not User.objects.filter(email="x@example.org").exists()


def test_set_user_roles_and_locations_keep_to_the_same_scope(
        gql: Any, make_user: Any, places: dict[str, Location]) -> None:
    manager = scope(make_user(["core.role.manage", "location.scope.manage"], username="p1-manager"), places["P1"])
    elsewhere = scope(make_user(username="elsewhere"), places["P2"])
    mine = scope(make_user(username="mine"), places["C11"])
    role = Role.objects.create(name="Clerk", permissions=["individual.registry.search"])
    client = gql(manager)
    roles = client.ok("""mutation($u: UUID!, $r: [UUID!]!) { setUserRoles(input: {userUuid: $u, roleUuids: $r}) {
        errors { code } } }""", {"u": str(elsewhere.pk), "r": [str(role.pk)]})
    assert error_codes(roles) == ["NOT_FOUND"] and not elsewhere.roles.exists()
    set_locations = """mutation($u: UUID!, $l: [UUID!]!) { setUserLocations(input: {userUuid: $u, locationUuids: $l}) {
        errors { field code } } }"""
    assert error_codes(client.ok(set_locations, {"u": str(elsewhere.pk), "l": [str(places["C11"].pk)]})) == ["NOT_FOUND"]
    widened = client.ok(set_locations, {"u": str(mine.pk), "l": [str(places["P2"].pk)]})
    assert payload(widened)["errors"] == [{"field": "locationUuids", "code": "OUT_OF_SCOPE"}]
    assert list(UserLocation.objects.filter(user=mine).values_list("location__code", flat=True)) == ["C11"]
    assert client.ok(set_locations, {"u": str(mine.pk), "l": [str(places["P1"].pk)]})["setUserLocations"]["errors"] == []


# --- deactivation ----------------------------------------------------------------------------


def test_a_deactivated_user_cannot_log_in_and_loses_their_tokens(
        gql: Any, client: Any, make_user: Any, places: dict[str, Location], province_admin: User) -> None:
    officer = scope(make_user(["individual.registry.search"], username="officer"), places["C11"])
    officer_client = gql(officer)
    assert officer_client.ok("{ individual { totalCount } }")
    admin = gql(province_admin)
    assert admin.ok(DEACTIVATE, {"u": str(officer.pk)})["deactivateUser"] == {"errors": [], "user": {"isActive": False}}
    assert officer_client.execute("{ individual { totalCount } }")["errors"][0]["extensions"]["code"] == "TOKEN_INVALID"
    assert not logs_in(client, "officer", PASSWORD)
    assert LoginSession.objects.get(user=officer).revoked_reason == LoginSession.REVOKED_DEACTIVATED

    assert admin.ok(REACTIVATE, {"u": str(officer.pk)})["reactivateUser"]["user"] == {"isActive": True}
    assert logs_in(client, "officer", PASSWORD)
    assert error_codes(admin.ok(DEACTIVATE, {"u": str(province_admin.pk)})) == ["CANNOT_DEACTIVATE_SELF"]


# --- passwords -------------------------------------------------------------------------------


def test_changing_ones_password_needs_the_current_one_and_ends_every_log_in(
        gql: Any, client: Any, make_user: Any) -> None:
    user = make_user(username="someone")
    me = gql(user)
    wrong = me.ok(CHANGE, {"old": "not-my-password", "new": "a-new-long-passphrase"})
    assert [(e["field"], e["code"]) for e in wrong["changePassword"]["errors"]] == [("oldPassword", "INVALID_CREDENTIALS")]
    weak = me.ok(CHANGE, {"old": PASSWORD, "new": "password"})
    assert error_codes(weak) == ["PASSWORD_TOO_WEAK"]
    assert me.ok(CHANGE, {"old": PASSWORD, "new": "a-new-long-passphrase"})["changePassword"]["errors"] == []
    logged = MutationLog.objects.filter(mutation_name="ChangePasswordMutation", status=MutationLog.SUCCESS).get()
    assert logged.json_content == {"old_password": "***", "new_password": "***"}
    # the token used for the change is ended with every other one
    assert me.execute(CHANGE, {"old": "a-new-long-passphrase", "new": "x"})["errors"][0]["extensions"]["code"] == "TOKEN_INVALID"
    assert not logs_in(client, "someone", PASSWORD)
    assert logs_in(client, "someone", "a-new-long-passphrase")


@pytest.mark.django_db(transaction=True, databases=["default", "progress"])
def test_guessing_the_current_password_counts_towards_the_lockout(gql: Any, make_user: Any) -> None:
    user = make_user(username="guessed")
    me = gql(user)
    for _ in range(settings.COREMIS["LOGIN_MAX_FAILURES"]):
        me.ok(CHANGE, {"old": "a-guess", "new": "a-new-long-passphrase"})
    user.refresh_from_db()
    assert user.is_locked()
    # even the right current password is refused now
    assert error_codes(me.ok(CHANGE, {"old": PASSWORD, "new": "a-new-long-passphrase"})) == ["ACCOUNT_LOCKED"]


def test_an_administrator_resets_a_password_which_lifts_a_lockout(
        gql: Any, client: Any, make_user: Any, places: dict[str, Location], province_admin: User) -> None:
    officer = scope(make_user(username="officer"), places["C11"])
    officer_client = gql(officer)
    for _ in range(settings.COREMIS["LOGIN_MAX_FAILURES"]):
        logs_in(client, "officer", "wrong")
    data = gql(province_admin).ok(RESET, {"u": str(officer.pk), "p": "a-reset-long-passphrase"})["resetUserPassword"]
    assert data == {"errors": [], "user": {"username": "officer", "isLocked": False}}
    assert logs_in(client, "officer", "a-reset-long-passphrase")
    assert officer_client.execute("{ __typename users { totalCount } }")["errors"][0]["extensions"]["code"] == "TOKEN_INVALID"
    own = gql(province_admin).ok(RESET, {"u": str(province_admin.pk), "p": "a-reset-long-passphrase"})
    assert error_codes(own) == ["USE_CHANGE_PASSWORD"]


# --- history ---------------------------------------------------------------------------------

USER_HISTORY = """query($row: UUID) { userHistory(rowId: $row, orderBy: ["changedAt", "id"]) {
  totalCount edges { node { tableName rowId operation data userId } } } }"""


def test_user_accounts_and_their_roles_have_history_without_the_password_hash(
        gql: Any, client: Any, make_user: Any, places: dict[str, Location], province_admin: User,
        national: User) -> None:
    role = make_user(["individual.registry.search"], username="role-source").roles.get()
    created = gql(province_admin).ok(CREATE, {"input": {
        "username": "officer", "password": PASSWORD, "roles": [str(role.pk)], "locations": [str(places["C11"].pk)]}})
    officer = User.objects.get(pk=payload(created)["user"]["uuid"])
    assert logs_in(client, "officer", PASSWORD)  # moves last_login only: not history
    gql(province_admin).ok(UPDATE, {"input": {"uuid": str(officer.pk), "email": "o@example.org", "roles": []}})
    gql(province_admin).ok(RESET, {"u": str(officer.pk), "p": "a-reset-long-passphrase"})

    entries = [{**e["node"], "data": json.loads(e["node"]["data"])}
               for e in gql(province_admin).ok(USER_HISTORY, {"row": str(officer.pk)})["userHistory"]["edges"]]
    assert all(e["userId"] == str(province_admin.pk) for e in entries)
    assert all("password" not in e["data"] and "last_login" not in e["data"] for e in entries)
    changes = [(e["tableName"], e["operation"]) for e in entries]
    assert changes.count(("core_user_roles", "I")) == 1 and changes.count(("core_user_roles", "D")) == 1
    granted = next(e for e in entries if (e["tableName"], e["operation"]) == ("core_user_roles", "I"))
    assert granted["data"] == {"role_id": str(role.pk)}
    updates = [e["data"] for e in entries if (e["tableName"], e["operation"]) == ("core_user", "U")]
    assert any(d["email"] == "o@example.org" and d["password_changed"] is False for d in updates)
    assert updates[-1]["password_changed"] is True

    # someone out of the administrator's province: their history is not visible either
    outsider = scope(make_user(username="officer-p2"), places["P2"])
    gql(national).ok(UPDATE, {"input": {"uuid": str(outsider.pk), "email": "p2@example.org"}})
    assert gql(province_admin).ok(USER_HISTORY, {"row": str(outsider.pk)})["userHistory"]["totalCount"] == 0
    assert gql(national).ok(USER_HISTORY, {"row": str(outsider.pk)})["userHistory"]["totalCount"] >= 1
