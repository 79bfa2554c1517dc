"""openIMIS's frontend on coremis: each request as the frontend sends it, and the answer it
accepts — the cookie log-in with CSRF (and a cross-site request refused), the start-up queries,
the current user with numeric rights, mutation payloads and the activity journal."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from core.models import LoginSession, MutationLog, User

PASSWORD = "correct-horse-battery"
ORIGIN = "http://testserver"
LOGIN = """mutation authenticate($username: String!, $password: String!) {
  tokenAuth(username: $username, password: $password) { refreshExpiresIn } }"""
CSRF = "mutation { getCsrfToken { csrfToken } }"
REFRESH = "mutation refreshAuthToken { refreshToken { refreshExpiresIn } }"
LOGOUT = "mutation logout { deleteTokenCookie { deleted } deleteRefreshTokenCookie { deleted } }"
JOURNAL = """{ mutationLogs(first: 5,orderBy: "-request_date_time") { pageInfo { hasNextPage, hasPreviousPage,
  startCursor, endCursor} edges { node { id,status,error,clientMutationId,clientMutationLabel,clientMutationDetails,
  requestDateTime,jsonExt } } } }"""


def gql(client: Client, query: str, variables: dict[str, Any] | None = None, **headers: Any) -> Any:
    return client.post("/api/graphql", data=json.dumps({"query": query, "variables": variables or {}}),
                       content_type="application/json", **headers)


def browser_login(client: Client, username: str) -> str:
    """What the frontend does: tokenAuth (cookies), then getCsrfToken; returns the CSRF token."""
    response = gql(client, LOGIN, {"username": username, "password": PASSWORD}, HTTP_ORIGIN=ORIGIN,
                   HTTP_X_CSRFTOKEN="undefined")
    body = response.json()
    assert "errors" not in body, body
    assert body["data"]["tokenAuth"]["refreshExpiresIn"] > 0
    for name in ("JWT", "JWT-refresh-token"):
        cookie = response.cookies[name]
        assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie.value
    # the frontend sends "JWT <token it never read>" with this one
    body = gql(client, CSRF, HTTP_ORIGIN=ORIGIN, HTTP_AUTHORIZATION="JWT undefined").json()
    assert "errors" not in body, body
    return body["data"]["getCsrfToken"]["csrfToken"]


@pytest.fixture
def browser() -> Client:
    return Client(enforce_csrf_checks=True)


@pytest.fixture
def officer(make_user: Any) -> User:
    return make_user(["core.mutation_log.view", "individual.registry.search", "social_protection.beneficiary.search"],
                     username="officer")


def test_cookie_login_with_the_csrf_token_reads_data(browser: Client, officer: User) -> None:
    token = browser_login(browser, "officer")
    body = gql(browser, JOURNAL, HTTP_ORIGIN=ORIGIN, HTTP_X_CSRFTOKEN=token).json()
    assert "errors" not in body, body
    assert body["data"]["mutationLogs"]["edges"] == []


def test_a_cookie_request_without_the_csrf_token_is_refused(browser: Client, officer: User) -> None:
    browser_login(browser, "officer")
    body = gql(browser, JOURNAL, HTTP_ORIGIN=ORIGIN).json()
    assert body["data"]["mutationLogs"] is None
    error = body["errors"][0]
    assert error["extensions"]["code"] == "CSRF_FAILED"
    assert "CSRF token missing or incorrect." in error["message"]  # the frontend's logout trigger


def test_a_cross_site_request_with_the_cookie_and_token_is_refused(browser: Client, officer: User) -> None:
    token = browser_login(browser, "officer")
    body = gql(browser, JOURNAL, HTTP_ORIGIN="https://evil.example", HTTP_X_CSRFTOKEN=token).json()
    assert body["data"]["mutationLogs"] is None
    assert body["errors"][0]["extensions"]["code"] == "CSRF_FAILED"
    # nor may it log out or refresh on the victim's behalf
    body = gql(browser, REFRESH, HTTP_ORIGIN="https://evil.example", HTTP_X_CSRFTOKEN=token).json()
    assert body["errors"][0]["extensions"]["code"] == "CSRF_FAILED"


def test_bearer_tokens_still_work_without_csrf(browser: Client, officer: User) -> None:
    body = gql(browser, 'mutation { tokenAuth(username: "officer", password: "%s") { token } }' % PASSWORD).json()
    token = body["data"]["tokenAuth"]["token"]
    body = gql(browser, JOURNAL, HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert "errors" not in body, body
    assert "JWT" not in browser.cookies or not browser.cookies["JWT"].value


def test_refresh_without_arguments_renews_the_cookies(browser: Client, officer: User) -> None:
    token = browser_login(browser, "officer")
    old = browser.cookies["JWT-refresh-token"].value
    response = gql(browser, REFRESH, HTTP_ORIGIN=ORIGIN, HTTP_X_CSRFTOKEN=token)
    assert "errors" not in response.json(), response.json()
    assert response.cookies["JWT-refresh-token"].value not in ("", old)
    assert gql(browser, JOURNAL, HTTP_ORIGIN=ORIGIN, HTTP_X_CSRFTOKEN=token).json()["data"]["mutationLogs"] is not None


def test_two_tabs_refreshing_with_the_same_cookie_keep_the_log_in(browser: Client, officer: User) -> None:
    """Both tabs of a browser send the one refresh cookie when their access tokens lapse
    together: the second refresh is a race, not a stolen token. Later, or outside a cookie,
    a spent token still ends the log-in."""
    token = browser_login(browser, "officer")
    spent = browser.cookies["JWT-refresh-token"].value
    first = gql(browser, REFRESH, HTTP_ORIGIN=ORIGIN, HTTP_X_CSRFTOKEN=token)
    current = first.cookies["JWT-refresh-token"].value
    assert current not in ("", spent)
    other_tab = Client(enforce_csrf_checks=True)
    for name, morsel in browser.cookies.items():
        other_tab.cookies[name] = morsel.value
    other_tab.cookies["JWT-refresh-token"] = spent  # its request left before the first answer came back
    second = gql(other_tab, REFRESH, HTTP_ORIGIN=ORIGIN, HTTP_X_CSRFTOKEN=token)
    assert "errors" not in second.json(), second.json()
    assert second.cookies["JWT"].value and "JWT-refresh-token" not in second.cookies  # the first one's stands
    assert gql(other_tab, JOURNAL, HTTP_ORIGIN=ORIGIN, HTTP_X_CSRFTOKEN=token).json()["data"]["mutationLogs"] is not None
    session = LoginSession.objects.get(user=officer)
    assert session.revoked_at is None
    # the current cookie refreshes as usual
    assert "errors" not in gql(browser, REFRESH, HTTP_ORIGIN=ORIGIN, HTTP_X_CSRFTOKEN=token).json()

    # the same token sent by a bearer client, or after the grace, is a replay: the log-in ends
    replayed = gql(Client(), 'mutation($t: String!) { refreshToken(refreshToken: $t) { refreshExpiresIn } }',
                   {"t": current}).json()
    assert replayed["errors"][0]["extensions"]["code"] == "TOKEN_INVALID"
    session.refresh_from_db()
    assert session.revoked_reason == LoginSession.REVOKED_REUSE


def test_a_cookie_spent_longer_ago_than_the_grace_ends_the_log_in(browser: Client, officer: User) -> None:
    from core.auth.tokens import REFRESH_RACE_GRACE

    token = browser_login(browser, "officer")
    spent = browser.cookies["JWT-refresh-token"].value
    gql(browser, REFRESH, HTTP_ORIGIN=ORIGIN, HTTP_X_CSRFTOKEN=token)
    session = LoginSession.objects.get(user=officer)
    LoginSession.objects.filter(pk=session.pk).update(refreshed_at=session.refreshed_at - REFRESH_RACE_GRACE * 2)
    browser.cookies["JWT-refresh-token"] = spent
    body = gql(browser, REFRESH, HTTP_ORIGIN=ORIGIN, HTTP_X_CSRFTOKEN=token).json()
    assert body["errors"][0]["extensions"]["code"] == "TOKEN_INVALID"
    session.refresh_from_db()
    assert session.revoked_reason == LoginSession.REVOKED_REUSE


def test_nobody_logged_in_is_a_clean_answer_at_start_up(browser: Client, db: Any) -> None:
    assert gql(browser, REFRESH).json() == {"data": {"refreshToken": None}}
    nobody = browser.get("/api/core/users/current_user/")
    assert nobody.status_code == 200 and nobody.json() is None
    bad = browser.get("/api/core/users/current_user/", HTTP_AUTHORIZATION="Bearer nonsense")
    assert bad.status_code == 401 and bad.json()["code"] == "TOKEN_INVALID"


def test_logout_revokes_the_refresh_token(browser: Client, officer: User) -> None:
    token = browser_login(browser, "officer")
    response = gql(browser, LOGOUT, HTTP_ORIGIN=ORIGIN, HTTP_X_CSRFTOKEN=token)
    assert response.json() == {"data": {"deleteTokenCookie": {"deleted": True},
                                        "deleteRefreshTokenCookie": {"deleted": True}}}
    assert response.cookies["JWT"].value == "" and response.cookies["JWT-refresh-token"].value == ""
    session = LoginSession.objects.get(user=officer)
    assert session.revoked_at is not None and session.revoked_reason == LoginSession.REVOKED_LOGOUT


def test_current_user_has_openimis_rights(browser: Client, officer: User) -> None:
    token = browser_login(browser, "officer")
    body = browser.get("/api/core/users/current_user/").json()
    assert body["username"] == "officer"
    rights = body["i_user"]["rights"]
    assert {159001, 180001, 170001} <= set(rights)
    # not granted; 171001 (openIMIS's schema search) is benefit plan reading: with it the
    # individuals screen asks benefitPlanSchemaField, which needs social_protection.plan.search
    assert 160001 not in rights and 159002 not in rights and 171001 not in rights
    user = gql(browser, "query useUserQuery { user { id username rights iUser { id uuid language { code name } } "
                        "healthFacility { id } officer { id } claimAdmin { id } } }",
               HTTP_ORIGIN=ORIGIN, HTTP_X_CSRFTOKEN=token).json()
    assert user["data"]["user"]["rights"] == rights
    # openIMIS health-insurance roles coremis has no counterpart of (core README)
    assert user["data"]["user"]["healthFacility"] is None
    assert user["data"]["user"]["officer"] is None and user["data"]["user"]["claimAdmin"] is None
    assert body["i_user"]["health_facility_id"] is None
    assert body["officer_id"] is None and body["claim_admin_id"] is None


def test_superuser_holds_every_declared_right(browser: Client, make_user: Any) -> None:
    make_user(superuser=True, username="boss")
    browser_login(browser, "boss")
    rights = browser.get("/api/core/users/current_user/").json()["rights"]
    assert {159001, 160001, 170001, 180001, 190001, 191005, 202001, 121901} <= set(rights)


def test_module_configurations_before_login(browser: Client, db: Any) -> None:
    body = gql(browser, "{ moduleConfigurations { module, config, controls{ field, usage } } }").json()
    assert "errors" not in body
    for entry in body["data"]["moduleConfigurations"]:
        assert isinstance(json.loads(entry["config"]), dict)


def test_mutation_payload_and_journal_in_openimis_shape(client: Any, make_user: Any) -> None:
    make_user(["core.role.manage", "core.mutation_log.view"], username="admin2")
    token = client.post("/api/graphql", data=json.dumps({"query": 'mutation { tokenAuth(username: "admin2", '
                        'password: "%s") { token } }' % PASSWORD}), content_type="application/json").json()
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {token['data']['tokenAuth']['token']}"}
    done = gql(client, 'mutation { createRole(input: {clientMutationId: "c-1", clientMutationLabel: "Create role", '
                       'name: "Clerks", permissions: []}) { clientMutationId internalId } }', **bearer).json()
    payload = done["data"]["createRole"]
    assert payload["clientMutationId"] == "c-1"
    entry = MutationLog.objects.get(pk=payload["internalId"])
    body = gql(client, '{ mutationLogs(clientMutationLabel: "Create role", first: 5, orderBy: "-request_date_time") '
                       "{ edges { node { status clientMutationId jsonExt autogeneratedCode } } } }", **bearer).json()
    node = body["data"]["mutationLogs"]["edges"][0]["node"]
    assert node["status"] == 2 == entry.status
    assert json.loads(node["jsonExt"])["mutation_name"] == "CreateRoleMutation"


def test_custom_filters_from_the_json_ext_schema(client: Any, make_user: Any) -> None:
    make_user(["individual.registry.search"], username="clerk")
    token = client.post("/api/graphql", data=json.dumps({"query": 'mutation { tokenAuth(username: "clerk", '
                        'password: "%s") { token } }' % PASSWORD}), content_type="application/json").json()
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {token['data']['tokenAuth']['token']}"}
    query = ('{ customFilters(moduleName: "individual",objectTypeName: "Individual",additionalParams: '
             '"{\\"type\\":\\"%s\\"}") { type,code,possibleFilters {field, filter, type} } }')
    body = gql(client, query % "INDIVIDUAL", **bearer).json()
    assert "errors" not in body, body
    codes = {f["code"]: f for f in body["data"]["customFilters"]}
    assert codes["vulnerability_score"]["type"] == "integer"
    assert {"field": "vulnerability_score", "filter": "gte", "type": "integer"} in \
        codes["vulnerability_score"]["possibleFilters"]
    assert codes["national_id"]["type"] == "string"
    body = gql(client, query % "GROUP", **bearer).json()
    assert {f["code"] for f in body["data"]["customFilters"]} == {"livelihood", "house_type"}
    bad = gql(client, query % "NOPE", **bearer).json()
    assert bad["data"]["customFilters"] is None and bad["errors"][0]["extensions"]["code"] == "INVALID_VALUE"


def test_beneficiary_status_filter_quoted_or_unquoted(client: Any, make_user: Any) -> None:
    make_user(["social_protection.beneficiary.search"], username="viewer")
    token = client.post("/api/graphql", data=json.dumps({"query": 'mutation { tokenAuth(username: "viewer", '
                        'password: "%s") { token } }' % PASSWORD}), content_type="application/json").json()
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {token['data']['tokenAuth']['token']}"}
    for status in ("ACTIVE", '"ACTIVE"'):
        body = gql(client, "{ beneficiary(isDeleted: false, status: %s, first: 10) { totalCount edges { node "
                           "{ id project { id } isEligible status } } } groupBeneficiary(status: %s) { totalCount } }"
                   % (status, status), **bearer).json()
        assert "errors" not in body, body
        assert body["data"]["beneficiary"]["totalCount"] == 0
    bad = gql(client, "{ beneficiary(status: NOPE) { totalCount } }", **bearer).json()
    assert bad["data"]["beneficiary"] is None and bad["errors"]


PAYROLLS = """{ payroll(isDeleted: false,first: 10) { totalCount pageInfo { hasNextPage, hasPreviousPage, startCursor,
  endCursor} edges { node { id,name,paymentMethod,paymentPlan { code, id, name, benefitPlan },paymentPoint { id name
  isDeleted location {id, uuid, code, name, type, parent{id,uuid,code,name,type,parent{id,uuid,code,name,type,
  parent{id,uuid,code,name,type}}}} ppm {id, username, iUser{id otherNames lastName}} },paymentCycle { code,
  startDate, endDate },jsonExt,status,dateValidFrom,dateValidTo,isDeleted } } } }"""


def test_payroll_list_with_the_plan_in_openimis_form(client: Any, make_user: Any, admin_user: User) -> None:
    import datetime

    from modules.individual import services as registry
    from modules.location.services import create_location
    from modules.payroll.services import configuration, generation
    from modules.social_protection import services as sp

    colline = create_location(admin_user, code="FE-H", name="Colline", type="Province")
    group = registry.create_group(admin_user, code="FE-HH", location_id=colline.pk)
    head = registry.create_individual(admin_user, first_name="Ana", last_name="Nduwimana", dob=datetime.date(1980, 1, 1),
                                      location_id=colline.pk)
    registry.add_member(admin_user, group_id=group.pk, individual_id=head.pk, role="HEAD", recipient_type="PRIMARY")
    plan = sp.create_plan(admin_user, code="FE-G", name="Household transfer", type="GROUP",
                          date_valid_from=datetime.date(2026, 1, 1), date_valid_to=datetime.date(2026, 12, 31))
    sp.enroll_chunk(plan, admin_user, "ACTIVE", None, 1000)
    payment_plan = configuration.create_plan(admin_user, code="FE-PP", name="Monthly", benefit_plan_id=plan.pk,
                                       calculation_rule={"fixed": 1000}, currency="BIF", minor_unit=0)
    point = configuration.create_point(admin_user, code="FE-PT", name="Bank", adaptor="file")
    cycle = configuration.create_cycle(admin_user, code="FE-2026-01", start_date=datetime.date(2026, 1, 1),
                                 end_date=datetime.date(2026, 1, 31))
    generation.create_payroll(admin_user, name="January", payment_plan_id=payment_plan.pk, payment_cycle_id=cycle.pk,
                           payment_point_id=point.pk)
    make_user(["payroll.payroll.search", "location.scope.national"], username="payer")
    token = client.post("/api/graphql", data=json.dumps({"query": 'mutation { tokenAuth(username: "payer", '
                        'password: "%s") { token } }' % PASSWORD}), content_type="application/json").json()
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {token['data']['tokenAuth']['token']}"}
    body = gql(client, PAYROLLS, **bearer).json()
    assert "errors" not in body, body
    assert body["data"]["payroll"]["totalCount"] == 1
    node = body["data"]["payroll"]["edges"][0]["node"]
    assert node["dateValidFrom"] == "2026-01-01" and node["dateValidTo"] == "2026-01-31"
    # a point whose routing names no location has none in openIMIS's form, and never a manager
    assert node["paymentPoint"]["location"] is None and node["paymentPoint"]["ppm"] is None
    # openIMIS's address answers openIMIS's words: its payment strategy, its status of a payroll
    assert node["paymentMethod"] == "StrategyOfflinePayment" and node["status"] == "PENDING_APPROVAL"
    # the payroll screen does JSON.parse(JSON.parse(benefitPlan)).id
    carried = json.loads(json.loads(node["paymentPlan"]["benefitPlan"]))
    assert carried["id"] == str(plan.pk) and carried["code"] == "FE-G" and carried["type"] == "GROUP"
    assert carried["date_valid_to"] == "2026-12-31"
    # other clients keep the object, now named benefitPlanDetail
    body = gql(client, "{ paymentPlan { edges { node { benefitPlan benefitPlanDetail { code name } } } } }",
               **bearer).json()
    assert "errors" not in body, body
    assert body["data"]["paymentPlan"]["edges"][0]["node"]["benefitPlanDetail"] == {"code": "FE-G",
                                                                                    "name": "Household transfer"}
    # without payroll.payroll.search nothing is shown
    make_user([], username="nobody")
    token = client.post("/api/graphql", data=json.dumps({"query": 'mutation { tokenAuth(username: "nobody", '
                        'password: "%s") { token } }' % PASSWORD}), content_type="application/json").json()
    denied = gql(client, PAYROLLS, HTTP_AUTHORIZATION=f"Bearer {token['data']['tokenAuth']['token']}").json()
    assert denied["data"]["payroll"] is None and denied["errors"]


def test_the_journal_shows_the_code_a_mutation_gave_without_reading_other_tables(client: Any, make_user: Any) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from core.auth.tokens import issue

    user = make_user(["core.mutation_log.view", "location.location.create", "location.scope.national"])
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {issue(user).token}"}
    for n in range(3):
        done = gql(client, 'mutation($c: String!, $code: String!) { createLocation(input: {clientMutationId: $c, '
                           'clientMutationLabel: "Create province", code: $code, name: $code, type: "Province"}) '
                           '{ clientMutationId internalId } }', {"c": f"loc-{n}", "code": f"JP{n}"}, **bearer).json()
        assert done["data"]["createLocation"]["internalId"], done
    query = ('{ mutationLogs(clientMutationLabel: "Create province", first: 5, orderBy: "-request_date_time") '
             "{ edges { node { clientMutationId autogeneratedCode } } } }")
    with CaptureQueriesContext(connection) as captured:
        body = gql(client, query, **bearer).json()
    codes = {e["node"]["clientMutationId"]: e["node"]["autogeneratedCode"] for e in body["data"]["mutationLogs"]["edges"]}
    assert codes == {"loc-0": "JP0", "loc-1": "JP1", "loc-2": "JP2"}
    assert not [q for q in captured.captured_queries if "location_location" in q["sql"]]


# Each openIMIS screen's right (what its frontend checks before it shows the screen or asks for
# its data, and what openIMIS's backend checks: the gql_*_perms of its modules' apps.py) and the
# coremis permission that grants it.
SCREEN_RIGHTS = [
    ("payroll page, where a checker decides its approval", "payroll.payroll.approve", 202002),
    ("payroll page, where a checker decides its close", "payroll.payroll.close", 202002),
    ("individuals", "individual.registry.search", 159001),
    ("groups", "individual.registry.search", 180001),
    ("individual restore", "individual.registry.delete", 159005),
    ("benefit plans", "social_protection.plan.search", 160001),
    ("benefit plan schema fields", "social_protection.plan.search", 171001),
    ("benefit plan schema edit", "social_protection.plan.update", 171003),
    ("beneficiaries", "social_protection.beneficiary.search", 170001),
    ("beneficiary status", "social_protection.beneficiary.update", 170003),
    ("payment cycles", "payroll.payroll.search", 200001),
    ("payment points", "payroll.payroll.search", 201001),
    ("payment point edit", "payroll.provider.manage", 201003),
    ("payrolls", "payroll.payroll.search", 202001),
    ("payroll create", "payroll.payroll.create", 202002),
    ("csv reconciliation", "reconciliation.report.search", 206001),
    ("tasks (both menu entries)", "core.task.view", 191005),
    ("task list", "core.task.view", 191001),
    ("task groups", "core.task_group.search", 190001),
    ("task group edit", "core.task_group.manage", 190003),
    ("grievance tickets", "grievance.ticket.search", 127000),
    ("grievance comments", "grievance.comment.create", 127005),
    ("grievance resolve", "grievance.ticket.resolve", 127006),
    ("locations", "location.location.search", 121901),
    ("users", "core.user.view", 121701),
]


@pytest.mark.parametrize(("screen", "code", "right"), SCREEN_RIGHTS, ids=[s for s, _, _ in SCREEN_RIGHTS])
def test_each_screen_right_is_granted_by_our_permission(make_user: Any, screen: str, code: str, right: int) -> None:
    from core.openimis import openimis_rights

    assert right in openimis_rights(make_user([code], username="holder"))
    assert right not in openimis_rights(make_user([], username="nobody"))


def test_rights_openimis_gives_to_other_things_are_not_declared(db: Any) -> None:
    """Numbers whose openIMIS screen would offer an action coremis answers otherwise: 190003 is
    openIMIS's task group update (resolving a task needs no right there), 191003 a task's
    update (coremis has none), 202003 no openIMIS right at all, 121905 moving a location."""
    from core.permissions import registry

    declared = {number for permission in registry().values() for number in permission.openimis}
    assert not declared & {191003, 202003, 121905}
    holders = {code for code, permission in registry().items() if 190003 in permission.openimis}
    assert holders == {"core.task_group.manage"}


WORKFLOWS = '{ workflow(group: "%s") { name group } }'


def test_upload_workflows_are_the_import_modes(client: Any, make_user: Any) -> None:
    from core.auth.tokens import issue

    importer = make_user(["individual.registry.search", "individual.import.start"], username="importer")
    body = gql(client, WORKFLOWS % "individual", HTTP_AUTHORIZATION=f"Bearer {issue(importer).token}").json()
    assert "errors" not in body, body
    assert body["data"]["workflow"] == [{"name": "all_or_nothing", "group": "individual"},
                                        {"name": "valid_rows", "group": "individual"}]
    # the names are what the import takes
    from core.imports import ImportMode

    assert {w["name"] for w in body["data"]["workflow"]} == {m.value for m in ImportMode}
    # one who may not import is offered none (the dialog asks as it opens: no error)
    reader = make_user(["individual.registry.search"], username="reader")
    body = gql(client, WORKFLOWS % "individual", HTTP_AUTHORIZATION=f"Bearer {issue(reader).token}").json()
    assert body == {"data": {"workflow": []}}


def test_beneficiary_upload_offers_no_workflow(client: Any, make_user: Any) -> None:
    """coremis enrolls beneficiaries by a plan's criteria, not from an uploaded file, so
    openIMIS's beneficiary upload dialog gets no workflow (social_protection README)."""
    from core.auth.tokens import issue

    user = make_user(["social_protection.plan.search", "social_protection.beneficiary.enroll",
                      "individual.import.start"], username="planner")
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {issue(user).token}"}
    assert gql(client, WORKFLOWS % "socialProtection", **bearer).json() == {"data": {"workflow": []}}
    assert gql(client, WORKFLOWS % "noSuchGroup", **bearer).json() == {"data": {"workflow": []}}
    anonymous = gql(client, WORKFLOWS % "individual").json()
    assert anonymous["data"]["workflow"] is None and anonymous["errors"]


POINTS = """{ payroll(isDeleted: false, first: 10) { edges { node { paymentPoint { id name location { id code name
  parent { code } } ppm { id } } } } } }"""


def test_payment_point_location_is_the_one_its_routing_names(client: Any, make_user: Any, admin_user: User) -> None:
    import datetime

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from core.auth.tokens import issue
    from modules.individual import services as registry
    from modules.location.services import create_location
    from modules.payroll.services import configuration, generation
    from modules.social_protection import services as sp

    province = create_location(admin_user, code="PP-P", name="Province", type="Province")
    commune = create_location(admin_user, code="PP-C", name="Commune", type="Commune", parent_id=province.pk)
    other = create_location(admin_user, code="PP-O", name="Other", type="Province")
    group = registry.create_group(admin_user, code="PP-HH", location_id=commune.pk)
    head = registry.create_individual(admin_user, first_name="Ana", last_name="Ndayishimiye",
                                      dob=datetime.date(1980, 1, 1), location_id=commune.pk)
    registry.add_member(admin_user, group_id=group.pk, individual_id=head.pk, role="HEAD", recipient_type="PRIMARY")
    plan = sp.create_plan(admin_user, code="PP-G", name="Plan", type="GROUP",
                          date_valid_from=datetime.date(2026, 1, 1), date_valid_to=datetime.date(2026, 12, 31))
    sp.enroll_chunk(plan, admin_user, "ACTIVE", None, 1000)
    payment_plan = configuration.create_plan(admin_user, code="PP-PP", name="Monthly", benefit_plan_id=plan.pk,
                                       calculation_rule={"fixed": 1000}, currency="BIF", minor_unit=0)
    points = {
        "one": configuration.create_point(admin_user, code="PP-1", name="one", adaptor="file",
                                    routing={"locations": [str(commune.pk)]}),
        "two": configuration.create_point(admin_user, code="PP-2", name="two", adaptor="file",
                                    routing={"locations": [str(commune.pk), str(other.pk)]}),
        "none": configuration.create_point(admin_user, code="PP-3", name="none", adaptor="file"),
    }
    for month, (name, point) in enumerate(points.items(), start=1):  # a cycle each: one payment a cycle
        cycle = configuration.create_cycle(admin_user, code=f"PP-2026-0{month}", start_date=datetime.date(2026, month, 1),
                                     end_date=datetime.date(2026, month, 28))
        generation.create_payroll(admin_user, name=f"P {name}", payment_plan_id=payment_plan.pk,
                               payment_cycle_id=cycle.pk, payment_point_id=point.pk)
    reader = make_user(["payroll.payroll.search", "location.scope.national"], username="payer")
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {issue(reader).token}"}
    with CaptureQueriesContext(connection) as captured:
        body = gql(client, POINTS, **bearer).json()
    assert "errors" not in body, body
    shown = {e["node"]["paymentPoint"]["name"]: e["node"]["paymentPoint"] for e in body["data"]["payroll"]["edges"]}
    assert shown["one"]["location"] == {"id": shown["one"]["location"]["id"], "code": "PP-C", "name": "Commune",
                                        "parent": {"code": "PP-P"}}
    assert shown["two"]["location"] is None and shown["none"]["location"] is None
    assert all(p["ppm"] is None for p in shown.values())
    # the locations are read once for the page, not per row
    assert len([q for q in captured.captured_queries if "location_location" in q["sql"]]) <= 2
    # a location outside the caller's scope is not shown (one scoped elsewhere sees none of
    # these payrolls, so the resolver is asked directly, as for a point shown to them)
    from types import SimpleNamespace

    from modules.location.services import set_user_locations
    from modules.payroll.schema import PaymentPointGQLType

    elsewhere = make_user(["payroll.payroll.search"], username="elsewhere")
    set_user_locations(admin_user, elsewhere, [other.pk])
    inside = make_user(["payroll.payroll.search"], username="inside")
    set_user_locations(admin_user, inside, [province.pk])
    for user, expected in ((elsewhere, None), (inside, "PP-C")):
        info = SimpleNamespace(context=SimpleNamespace(user=user))
        shown_location = PaymentPointGQLType.resolve_location(points["one"], info)
        assert (shown_location and shown_location.code) == expected


def test_plan_replacement_and_beneficiary_project_are_null(client: Any, make_user: Any, admin_user: User) -> None:
    """A coremis plan is one row (nothing replaces it) and coremis has no projects
    (social_protection README): the openIMIS fields answer null for a real plan and beneficiary."""
    import datetime

    from core.auth.tokens import issue
    from modules.individual import services as registry
    from modules.location.services import create_location
    from modules.social_protection import services as sp

    colline = create_location(admin_user, code="RP-H", name="Colline", type="Province")
    registry.create_individual(admin_user, first_name="Ana", last_name="Irakoze",
                                        dob=datetime.date(1990, 1, 1), location_id=colline.pk)
    plan = sp.create_plan(admin_user, code="RP-I", name="Cash", type="INDIVIDUAL",
                          date_valid_from=datetime.date(2026, 1, 1), date_valid_to=datetime.date(2026, 12, 31))
    sp.enroll_chunk(plan, admin_user, "ACTIVE", None, 1000)
    user = make_user(["social_protection.plan.search", "social_protection.beneficiary.search",
                      "location.scope.national"], username="viewer")
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {issue(user).token}"}
    body = gql(client, '{ benefitPlan(id: "%s") { edges { node { code replacementUuid hasPaymentPlans } } } '
                       'beneficiary(benefitPlan_Id: "%s") { edges { node { individual { id } project { id name } } } } }'
               % (plan.pk, plan.pk), **bearer).json()
    assert "errors" not in body, body
    assert body["data"]["benefitPlan"]["edges"] == [{"node": {"code": "RP-I", "replacementUuid": None,
                                                              "hasPaymentPlans": False}}]
    beneficiaries = body["data"]["beneficiary"]["edges"]
    assert len(beneficiaries) == 1 and beneficiaries[0]["node"]["project"] is None
    assert beneficiaries[0]["node"]["individual"]["id"]


def test_only_a_browser_is_given_the_csrf_cookie(browser: Client, officer: User) -> None:
    """A client sending a bearer token and no JWT cookie is answered without a ``csrftoken``
    cookie (it never needs one); a browser before log-in and after it still gets it."""
    from core.auth.tokens import issue

    api = Client()
    answer = gql(api, JOURNAL, HTTP_AUTHORIZATION=f"Bearer {issue(officer).token}")
    assert "errors" not in answer.json(), answer.json()
    assert "csrftoken" not in answer.cookies
    assert "csrftoken" in gql(Client(), JOURNAL).cookies  # not logged in: as a browser's first request
    browser_login(browser, "officer")
    answer = gql(browser, JOURNAL, HTTP_ORIGIN=ORIGIN, HTTP_AUTHORIZATION="JWT undefined")
    assert "csrftoken" in answer.cookies  # the frontend's header beside its cookie: a browser
