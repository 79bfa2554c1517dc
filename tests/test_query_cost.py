"""A GraphQL request is costed before it runs: aliases, fields x page sizes, nested
connections; above the limit it is refused with QUERY_TOO_COSTLY and no SQL about data."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.models import User

pytestmark = pytest.mark.django_db

ATTACK = "{ %s }" % " ".join(
    f"a{i}: individual(first: 100) {{ totalCount edges {{ node {{ id firstName lastName dob }} }} }}"
    for i in range(250))


def post(client: Any, user: User | None, body: Any, content_type: str = "application/json") -> Any:
    from core.auth.tokens import issue

    headers = {"HTTP_AUTHORIZATION": f"Bearer {issue(user).token}"} if user else {}
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post("/graphql", data=data, content_type=content_type, **headers)


@pytest.fixture
def root(make_user: Any) -> User:
    return make_user(superuser=True)


def test_the_250_alias_query_is_refused_before_any_sql_about_people(client, root):
    with CaptureQueriesContext(connection) as queries:
        response = post(client, root, {"query": ATTACK})
    assert response.status_code == 400 and response["Content-Type"] == "application/json"
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "QUERY_TOO_COSTLY"
    assert error["extensions"]["limit"] == 50_000
    # 250 x (1 field + 500 for the connection + totalCount + edges x 100 pages x (node + 4 fields))
    assert error["extensions"]["cost"] == 250 * (1 + 500 + 1 + 1 + 100 * (1 + 4))
    assert "data" not in response.json()
    assert not [q for q in queries.captured_queries if "individual_individual" in q["sql"]]


def test_a_frontend_page_is_well_within_the_limit(client, root):
    query = """query($n: Int) { individual(first: $n, orderBy: ["lastName"]) { totalCount
        pageInfo { hasNextPage endCursor } edges { node { id uuid firstName lastName dob sex jsonExt
        location { id uuid code name type parent { id code name parent { id code name } } } } } } }"""
    response = post(client, root, {"query": query, "variables": {"n": 100}})
    assert response.status_code == 200, response.content
    assert response.json()["data"]["individual"]["totalCount"] == 0


def test_page_sizes_sent_as_variables_count(client, root, settings):
    settings.COREMIS = {**settings.COREMIS, "GRAPHQL_MAX_COST": 900}
    query = "query($n: Int) { individual(first: $n) { edges { node { id firstName lastName } } } }"
    small = post(client, root, {"query": query, "variables": {"n": 10}})
    assert small.status_code == 200, small.content
    big = post(client, root, {"query": query, "variables": {"n": 100}})
    assert big.json()["errors"][0]["extensions"] == {"code": "QUERY_TOO_COSTLY", "cost": 1 + 500 + 1 + 100 * 4,
                                                     "limit": 900}
    # no first/last: the largest page is what the connection may return
    absent = post(client, root, {"query": "{ individual { edges { node { id firstName lastName } } } }"})
    assert absent.json()["errors"][0]["extensions"]["cost"] == 1 + 500 + 1 + 100 * 4


def test_nested_connections_and_fragments_multiply(client, root, settings):
    query = """fragment who on UserType { username firstName }
      query { taskGroup(first: 10) { edges { node { code checkers { ...who }
        taskexecutorSet(first: 20) { edges { node { user { ...who } } } } } } } }"""
    settings.COREMIS = {**settings.COREMIS, "GRAPHQL_MAX_COST": 1}
    refused = post(client, root, {"query": query}).json()["errors"][0]["extensions"]
    executors = 1 + 1 + 20 * (1 + (1 + 2))  # taskexecutorSet: edges x 20 x node{user{2}}
    node = 1 + 1 + (1 + 2) + executors  # node: code, checkers{2}, the nested connection
    # each connection's own cost counts once, wherever it is nested
    assert refused["cost"] == 1 + 1 + 10 * node + 2 * 500


def test_aliases_each_cost_their_own(client, root, settings):
    settings.COREMIS = {**settings.COREMIS, "GRAPHQL_MAX_COST": 1}
    one = post(client, root, {"query": "{ a: roles(first: 5) { totalCount } }"}).json()["errors"][0]
    three = post(client, root, {"query": "{ a: roles(first: 5) { totalCount } b: roles(first: 5) { totalCount } "
                                         "c: roles(first: 5) { totalCount } }"}).json()["errors"][0]
    assert three["extensions"]["cost"] == 3 * one["extensions"]["cost"] == 3 * (1 + 500 + 1)


@pytest.mark.parametrize(("arguments", "code"), [
    ("first: -1", "INVALID_PAGE"), ("last: -5", "INVALID_PAGE"), ("offset: -1", "INVALID_PAGE"),
    ("first: 101", "PAGE_TOO_LARGE"),
])
def test_bad_pages_are_typed_errors_before_execution(client, root, arguments, code):
    response = post(client, root, {"query": "{ roles(%s) { totalCount } }" % arguments})
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == code


def test_an_answer_larger_than_the_limit_is_refused(client, root, settings):
    settings.COREMIS = {**settings.COREMIS, "GRAPHQL_MAX_RESPONSE_BYTES": 2000}
    query = '{ task(first: 1) { totalCount } permissions { code description } }'
    response = post(client, root, {"query": query})
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "RESPONSE_TOO_LARGE" and error["extensions"]["limit"] == 2000
    assert error["extensions"]["size"] > 2000


@pytest.mark.parametrize(("arguments", "code"), [
    ('offset: 2, before: "YXJyYXljb25uZWN0aW9uOjE="', "INVALID_PAGE"),
    ('offset: 2, after: "garbage"', "INVALID_CURSOR"),
])
def test_paging_combinations_a_connection_cannot_serve_are_typed_errors(client, root, arguments, code):
    response = post(client, root, {"query": "{ roles(%s) { totalCount } }" % arguments})
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == code


def test_an_offset_with_a_real_cursor_pages_on(client, root, make_user):
    from core.roles import create_role

    for name in ("a", "b", "c", "d"):
        create_role(root, name, [])
    first = post(client, root, {"query": '{ roles(first: 1, orderBy: ["name"]) { edges { cursor node { name } } } }'})
    cursor = first.json()["data"]["roles"]["edges"][0]["cursor"]
    response = post(client, root, {"query": '{ roles(first: 1, offset: 1, after: "%s", orderBy: ["name"]) '
                                            '{ edges { node { name } } } }' % cursor})
    assert response.json()["data"]["roles"]["edges"] == [{"node": {"name": "c"}}]


def test_a_huge_document_is_refused_before_it_is_validated(client, root):
    query = "{ " + "roles { totalCount } " * 3000 + "}"  # 12,000 tokens
    response = post(client, root, {"query": query})
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "QUERY_TOO_LARGE" and "10000 tokens" in error["message"]


def test_syntax_and_validation_errors_carry_a_code(client, root):
    broken = post(client, root, {"query": "{ roles { "}).json()["errors"][0]
    assert broken["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    unknown = post(client, root, {"query": "{ nope }"}).json()["errors"][0]
    assert unknown["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED" and "nope" in unknown["message"]
    missing = post(client, root, {"query": "query($n: String!) { roles(name: $n) { totalCount } }"}).json()
    assert missing["errors"][0]["extensions"]["code"] == "INVALID_VALUE" and "$n" in missing["errors"][0]["message"]
