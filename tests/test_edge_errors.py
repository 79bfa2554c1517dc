"""What the API answers when a request is malformed, when something breaks inside, and when a
statement runs too long: always JSON with a stable code, never an exception's text or an
HTML page, and nothing changed."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from typing import Any

import psycopg
import pytest
from django.db import connection

from core.middleware import set_statement_timeout
from core.models import MutationLog, Role, User

pytestmark = pytest.mark.django_db

ROLES = "{ roles(first: 5) { totalCount } }"
JOBS = "{ jobs(first: 5) { totalCount } }"


def post(client: Any, user: User | None, body: Any, content_type: str = "application/json") -> Any:
    from core.auth.tokens import issue

    headers = {"HTTP_AUTHORIZATION": f"Bearer {issue(user).token}"} if user else {}
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post("/graphql", data=data, content_type=content_type, **headers)


def code_of(response: Any) -> str:
    assert response["Content-Type"].startswith("application/json"), response.content[:300]
    return str(response.json()["errors"][0]["extensions"]["code"])


@pytest.fixture
def root(make_user: Any) -> User:
    return make_user(superuser=True)


@pytest.mark.parametrize(("body", "code"), [
    ('{"query": 123}', "INVALID_QUERY"),
    ('{"query": ["{ roles { totalCount } }"]}', "INVALID_QUERY"),
    ('[{"query": "{ roles { totalCount } }"}]', "INVALID_BODY"),
    ('"{ roles { totalCount } }"', "INVALID_BODY"),
    ("42", "INVALID_BODY"),
    ("null", "INVALID_BODY"),
    ('{"query": "{ roles { totalCount } }", "variables": [1]}', "INVALID_VARIABLES"),
    ('{"query": "{ roles { totalCount } }", "variables": "[1]"}', "INVALID_VARIABLES"),
    ('{"query": "{ roles { totalCount } }", "operationName": 5}', "INVALID_OPERATION_NAME"),
    ('{"query": "query($x: Float) { roles { totalCount } }", "variables": {"x": NaN}}', "INVALID_JSON"),
    ('{"query": "{ roles { totalCount } }", "variables": {"x": Infinity}}', "INVALID_JSON"),
    ('{"query": "{ roles { totalCount } }"', "INVALID_JSON"),
    ("{}", "NO_QUERY"),
    ('{"query": "{ roles(name: \\"a\\u0000b\\") { totalCount } }"}', "INVALID_CHARACTER"),
    ('{"query": "query($n: String) { roles(name: $n) { totalCount } }", "variables": {"n": "a\\u0000"}}',
     "INVALID_CHARACTER"),
])
def test_a_malformed_body_is_a_typed_400(client, root, body, code):
    response = post(client, root, body)
    assert response.status_code == 400, response.content
    assert code_of(response) == code
    assert "Traceback" not in response.content.decode()


def test_a_body_that_is_not_utf8_is_a_typed_400(client, root):
    response = post(client, root, b'{"query": "\xff\xfe"}')
    assert response.status_code == 400 and code_of(response) == "INVALID_BODY"


def test_a_mutation_by_get_is_refused_in_json(client, root):
    from core.auth.tokens import issue

    response = client.get("/graphql", {"query": 'mutation { deleteRole(input: {uuid: "%s"}) { errors { code } } }'
                                       % uuid.uuid4()},
                          HTTP_AUTHORIZATION=f"Bearer {issue(root).token}", HTTP_ACCEPT="application/json")
    assert response.status_code == 405 and code_of(response) == "METHOD_NOT_ALLOWED"


def test_another_http_method_is_refused_in_json(client):
    response = client.put("/graphql", data="{}", content_type="application/json")
    assert response.status_code == 405 and code_of(response) == "METHOD_NOT_ALLOWED"


def test_an_unexpected_error_is_json_with_a_logged_reference(client, root, monkeypatch, caplog):
    from core import roles

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals: SELECT * FROM core_user")

    monkeypatch.setattr(roles, "check_create_role", broken)
    with caplog.at_level(logging.ERROR, logger="coremis.errors"):
        response = post(client, root, {"query": 'mutation { createRole(input: {name: "R", permissions: []}) '
                                                '{ errors { code } role { name } } }'})
    assert response.status_code == 200
    body = response.json()
    error = body["errors"][0]
    assert error["extensions"]["code"] == "INTERNAL" and error["path"] == ["createRole"]
    reference = error["extensions"]["reference"]
    assert str(uuid.UUID(reference)) == reference and reference in error["message"]
    assert "secret internals" not in response.content.decode() and "RuntimeError" not in response.content.decode()
    logged = [r for r in caplog.records if getattr(r, "reference", None) == reference]
    assert len(logged) == 1 and logged[0].exc_info and "secret internals" in str(logged[0].exc_info[1])
    # the mutation log says what the client was told, not the exception
    entry = MutationLog.objects.get(mutation_name="CreateRoleMutation")
    assert entry.status == MutationLog.ERROR and reference in json.dumps(entry.error)
    assert "RuntimeError" not in json.dumps(entry.error) and "secret internals" not in json.dumps(entry.error)
    assert not Role.objects.filter(name="R").exists()


def test_a_graphql_error_raised_inside_a_mutation_is_its_typed_refusal(client, root, monkeypatch):
    from graphql import GraphQLError

    from core import roles

    def refusing(*args: Any, **kwargs: Any) -> Any:
        raise GraphQLError("Cannot order by 'x'.", extensions={"code": "INVALID_ORDER_BY"})

    monkeypatch.setattr(roles, "check_create_role", refusing)
    response = post(client, root, {"query": 'mutation { createRole(input: {name: "R", permissions: []}) '
                                            '{ errors { field code message } } }'})
    assert response.json() == {"data": {"createRole": {"errors": [
        {"field": None, "code": "INVALID_ORDER_BY", "message": "Cannot order by 'x'."}]}}}
    entry = MutationLog.objects.get(mutation_name="CreateRoleMutation")
    assert entry.status == MutationLog.ERROR and entry.error[0]["code"] == "INVALID_ORDER_BY"


def test_api_routes_answer_json_for_every_error(client, root, monkeypatch, caplog):
    from core.auth.tokens import issue

    auth = {"HTTP_AUTHORIZATION": f"Bearer {issue(root).token}"}
    missing = client.get("/api/no-such-route", **auth)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"
    wrong_method = client.get("/api/upload", **auth)
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]["code"] == "METHOD_NOT_ALLOWED"

    from core import uploads

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("internal detail")

    monkeypatch.setattr(uploads, "store_upload", broken)
    with caplog.at_level(logging.ERROR, logger="coremis.errors"):
        crashed = client.post("/api/upload?purpose=individual.import",
                              {"file": _file(b"a,b\n1,2\n")}, **auth)
    assert crashed.status_code == 500 and crashed["Content-Type"] == "application/json"
    error = crashed.json()["error"]
    assert error["code"] == "INTERNAL" and "internal detail" not in json.dumps(error)
    assert any(getattr(r, "reference", None) == error["reference"] and r.exc_info for r in caplog.records)


def test_even_under_debug_an_api_error_is_not_an_html_page(client, root, settings, monkeypatch):
    from core import uploads
    from core.auth.tokens import issue

    settings.DEBUG = True
    monkeypatch.setattr(uploads, "store_upload", lambda *a, **k: 1 / 0)
    response = client.post("/api/upload?purpose=individual.import", {"file": _file(b"x")},
                           HTTP_AUTHORIZATION=f"Bearer {issue(root).token}", HTTP_ACCEPT="text/html")
    assert response.status_code == 500 and response.json()["error"]["code"] == "INTERNAL"


def _file(content: bytes) -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("people.csv", content, content_type="text/csv")


# --- the statement timeout -------------------------------------------------------------------


@pytest.fixture
def locked_roles(settings) -> Any:
    """Another session holds the job table locked, so any statement on it waits, and the role
    table against writes (every request's token check still reads the roles)."""
    cfg = connection.settings_dict
    holder = psycopg.connect(dbname=cfg["NAME"], user=cfg["USER"], password=cfg["PASSWORD"] or None,
                             host=cfg["HOST"] or None, port=cfg["PORT"] or None, autocommit=False)
    holder.execute("LOCK TABLE core_job IN ACCESS EXCLUSIVE MODE")
    holder.execute("LOCK TABLE core_role IN EXCLUSIVE MODE")
    settings.COREMIS = {**settings.COREMIS, "STATEMENT_TIMEOUT_MS": 300}
    try:
        yield holder
    finally:
        holder.rollback()
        holder.close()
        set_statement_timeout(0)  # this test connection goes on to flush the database


@pytest.mark.django_db(transaction=True)
def test_a_query_past_the_statement_timeout_is_a_typed_error(client, make_user, locked_roles):
    root = make_user(superuser=True)
    response = post(client, root, {"query": JOBS})
    assert response.status_code == 200
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "QUERY_TIMEOUT" and error["path"] == ["jobs"]
    assert "0.3 s" in error["message"] and "canceling statement" not in response.content.decode()
    locked_roles.rollback()  # the lock is gone: the same request works at once
    assert post(client, root, {"query": JOBS}).json() == {"data": {"jobs": {"totalCount": 0}}}


@pytest.mark.django_db(transaction=True)
def test_a_mutation_past_the_statement_timeout_changes_nothing_and_may_be_sent_again(
        client, make_user, locked_roles):
    root = make_user(superuser=True)
    create = {"query": 'mutation { createRole(input: {name: "Officers", permissions: [], '
                       'clientMutationId: "t-1"}) { errors { code } role { name } } }'}
    response = post(client, root, create)
    assert response.json()["errors"][0]["extensions"]["code"] == "QUERY_TIMEOUT"
    entry = MutationLog.objects.get(client_mutation_id="t-1")
    assert entry.status == MutationLog.ERROR and entry.error[0]["code"] == "QUERY_TIMEOUT"
    locked_roles.rollback()
    again = post(client, root, create).json()
    assert again == {"data": {"createRole": {"errors": [], "role": {"name": "Officers"}}}}
    assert Role.objects.filter(name="Officers").count() == 1


def _statement_timeout() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        return str(cursor.fetchone()[0])


@pytest.mark.django_db(transaction=True)
def test_the_statement_timeout_ends_with_the_request(client, root, settings):
    """A job, the bench or a test using the same connection after a request (as a worker
    process reuses it) is not bound by the request's timeout, whatever the request answered."""
    settings.COREMIS = {**settings.COREMIS, "STATEMENT_TIMEOUT_MS": 4321}
    before = _statement_timeout()
    assert before != "4321ms"
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        assert post(client, root, {"query": ROLES}).json() == {"data": {"roles": {"totalCount": 0}}}
    assert any("'4321ms'" in q["sql"] for q in captured.captured_queries)  # the request ran under it
    assert _statement_timeout() == before
    assert code_of(post(client, root, {"query": "{ roles(first: 5) { nope } }"})) == "GRAPHQL_VALIDATION_FAILED"
    assert _statement_timeout() == before
    assert code_of(post(client, None, {"query": ROLES})) == "UNAUTHENTICATED"
    assert _statement_timeout() == before


@pytest.mark.django_db(transaction=True)
def test_a_waiting_request_does_not_hold_the_others(client, make_user, locked_roles):
    root = make_user(superuser=True)
    answers: list[Any] = []

    def slow() -> None:
        from django.test import Client

        answers.append(post(Client(), root, {"query": JOBS}).json())
        connection.close()

    thread = threading.Thread(target=slow)
    thread.start()
    fast = post(client, root, {"query": ROLES}).json()
    thread.join(10)
    assert fast == {"data": {"roles": {"totalCount": 0}}}
    assert answers[0]["errors"][0]["extensions"]["code"] == "QUERY_TIMEOUT"
