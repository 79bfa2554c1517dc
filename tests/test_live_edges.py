"""The edge of a real server process (gunicorn, two workers, nothing mocked): costly requests
are refused without holding the server, and with the database or Redis gone every API route
answers 503 in JSON, then works again by itself when they are back.

The database and Redis are cut by a socket proxy between the server and them
(:mod:`core.testing.proxy`), so the test run's own connections are not affected."""

from __future__ import annotations

import datetime
import json
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from core.models import User

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-password-edges"
COSTLY = "{ %s }" % " ".join(
    f"a{i}: individual(first: 100) {{ totalCount edges {{ node {{ id firstName lastName dob }} }} }}"
    for i in range(250))
CHEAP = "{ roles(first: 1) { totalCount } }"


def base_env(live) -> dict[str, str]:
    return {"DATABASE_URL": live.database_url(connection.settings_dict), "REDIS_URL": settings.REDIS_URL,
            "COREMIS_DEBUG": "1"}


def login(live, base: str) -> str:
    status, body = live.graphql(base, 'mutation { tokenAuth(username: "edge-admin", password: "%s") { token } }' % PASSWORD)
    assert status == 200 and not body.get("errors"), body
    return str(body["data"]["tokenAuth"]["token"])


@pytest.fixture
def admin() -> User:
    return User.objects.create_superuser("edge-admin", "e@example.org", PASSWORD)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # unix socket paths are short (about 100 bytes): a directory right under /tmp
    with tempfile.TemporaryDirectory(prefix="edge", dir="/tmp") as name:
        yield Path(name)


# --- cost --------------------------------------------------------------------------------------

LIVELY = 5.0  # seconds; the unprotected server took 30


def test_two_concurrent_costly_queries_leave_the_server_answering_others(admin, live):
    # Before the cost limit such a query ran 30 s and starved the workers. The bounds below are
    # far under that and far over what a refusal costs, so a loaded CI machine does not flake.
    from modules.individual.models import Individual
    from modules.location.services import create_location

    place = create_location(admin, code="P1", name="Province", type="Province")
    Individual.objects.bulk_create([
        Individual(first_name=f"P{i}", last_name="Family", dob=datetime.date(1980, 1, 1), location=place)
        for i in range(3000)])
    process, base = live.start_gunicorn(base_env(live), workers=2)
    try:
        token = login(live, base)
        refusals: list[tuple[int, dict[str, Any], float]] = []

        def costly() -> None:
            for _ in range(3):
                started = time.monotonic()
                status, body = live.graphql(base, COSTLY, token, timeout=60)
                refusals.append((status, body, time.monotonic() - started))

        attackers = [threading.Thread(target=costly) for _ in range(2)]
        for thread in attackers:
            thread.start()
        latencies = []
        while any(t.is_alive() for t in attackers) or len(latencies) < 5:
            started = time.monotonic()
            status, body = live.graphql(base, CHEAP, token, timeout=10)
            latencies.append(time.monotonic() - started)
            assert status == 200 and body == {"data": {"roles": {"totalCount": 0}}}, body
        for thread in attackers:
            thread.join(60)
        assert max(latencies) < LIVELY, latencies
        assert len(refusals) == 6
        for status, body, seconds in refusals:
            assert status == 400 and "data" not in body
            assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"
            assert body["errors"][0]["extensions"]["cost"] > body["errors"][0]["extensions"]["limit"]
            assert seconds < LIVELY
    finally:
        live.stop(process)


# --- the database or Redis gone ----------------------------------------------------------------


def assert_unavailable(status: int, headers: dict[str, str], content: bytes, graphql_shape: bool) -> None:
    assert status == 503, (status, content[:300])
    assert headers.get("Content-Type", "").startswith("application/json"), content[:300]
    body = json.loads(content)
    code = body["errors"][0]["extensions"]["code"] if graphql_shape else body["error"]["code"]
    assert code == "SERVICE_UNAVAILABLE", body
    assert b"psycopg" not in content and b"Traceback" not in content and b"<html" not in content.lower()


def every_api_route(live, base: str, token: str) -> list[tuple[str, tuple[int, dict[str, str], bytes], bool]]:
    """One request to each kind of API route: GraphQL query and mutation, both uploads, a report."""
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    query = json.dumps({"query": CHEAP}).encode()
    mutation = json.dumps({"query": 'mutation { createRole(input: {name: "R-%s", permissions: []}) '
                                    '{ errors { code } } }' % uuid.uuid4().hex[:6]}).encode()
    return [
        ("query", live.request(base + "/graphql", query, auth), True),
        ("mutation", live.request(base + "/graphql", mutation, auth), True),
        ("upload", live.multipart(base + "/api/upload?purpose=individual.import", token, "a.csv", b"first_name\nx\n"), False),
        ("import", live.multipart(base + "/api/individual/import", token, "b.csv", b"first_name\nx\n"), False),
        ("location import", live.multipart(base + "/api/location/import", token, "c.csv", b"code,name,type\n"), False),
        ("report", live.request(base + f"/api/individual/import/{uuid.uuid4()}/report.csv",
                           headers={"Authorization": f"Bearer {token}"}), False),
    ]


def test_with_the_database_gone_every_api_route_answers_503_json_and_recovers_by_itself(admin, short_dir, live, socket_proxy):
    proxy = socket_proxy(short_dir / ".s.PGSQL.5432", live.postgres_socket(connection.settings_dict)).start()
    cfg = {**connection.settings_dict, "PORT": "5432"}
    process, base = live.start_gunicorn({**base_env(live), "DATABASE_URL": live.database_url(cfg, str(short_dir)),
                                    "COREMIS_DB_CONNECT_TIMEOUT": "2"})
    try:
        token = login(live, base)
        for _ in range(4):  # both workers hold an open connection when it is cut
            assert live.graphql(base, CHEAP, token)[0] == 200
        proxy.cut()
        for name, (status, headers, content), shape in every_api_route(live, base, token):
            try:
                assert_unavailable(status, headers, content, shape)
            except AssertionError as exc:
                raise AssertionError(f"{name}: {exc}") from exc
        proxy.restore()
        answers = [live.graphql(base, CHEAP, token) for _ in range(6)]
        assert all(status == 200 and "errors" not in body for status, body in answers), answers
        status, body = live.graphql(base, 'mutation { createRole(input: {name: "After", permissions: []}) '
                                     '{ errors { code } role { name } } }', token)
        assert body == {"data": {"createRole": {"errors": [], "role": {"name": "After"}}}}
    finally:
        live.stop(process)
        proxy.close()


def test_with_redis_gone_work_that_needs_the_queue_is_accepted_and_waits_queued(admin, short_dir, live, socket_proxy):
    """A job's row is its outbox: with Redis cut, starting work still answers (JSON, not a 500)
    and the job waits QUEUED for the scheduler to hand it over once Redis is back (that hand-over
    is tests/test_jobs.py's and tests/test_faults.py's to prove)."""
    from core.models import Job

    redis_socket = settings.REDIS_URL.removeprefix("unix://").split("?")[0]
    if not redis_socket.startswith("/"):
        pytest.skip("the test Redis is not reached through a unix socket")
    proxy = socket_proxy(short_dir / "redis.sock", redis_socket).start()
    process, base = live.start_gunicorn({**base_env(live), "REDIS_URL": f"unix://{short_dir}/redis.sock"})
    csv = b"code,name,type,parent_code\nP9,Province,Province,\n"
    try:
        token = login(live, base)
        proxy.cut()
        assert live.graphql(base, CHEAP, token)[0] == 200
        status, headers, content = live.multipart(base + "/api/location/import", token, "p.csv", csv)
        assert status == 202 and headers.get("Content-Type", "").startswith("application/json"), content[:300]
        imported = json.loads(content)["jobId"]
        status, headers, content = live.request(base + "/graphql", json.dumps({"query": """mutation {
            exportIndividuals(input: {format: CSV}) { errors { code } job { uuid } } }"""}).encode(),
            {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        assert status == 200, content[:300]
        exported = json.loads(content)["data"]["exportIndividuals"]["job"]["uuid"]
        states = dict(Job.objects.filter(pk__in=[imported, exported]).values_list("id", "state"))
        assert {str(k): v for k, v in states.items()} == {imported: Job.QUEUED, exported: Job.QUEUED}
        proxy.restore()
        status, _, content = live.multipart(base + "/api/location/import", token, "q.csv",
                                       b"code,name,type,parent_code\nP8,Other,Province,\n")
        assert status == 202, content
    finally:
        live.stop(process)
        proxy.close()


# --- the statement timeout, kept on a server's connections ---------------------------------------


def test_a_server_keeps_the_statement_timeout_on_its_connections_for_every_api_request(admin, live):
    """The WSGI server sets it once per connection (no round trips per request): the second
    and third requests of one worker run under it as the first did."""
    import psycopg

    process, base = live.start_gunicorn({**base_env(live), "COREMIS_STATEMENT_TIMEOUT_MS": "300"}, workers=1)
    cfg = connection.settings_dict
    holder = psycopg.connect(dbname=cfg["NAME"], user=cfg["USER"], password=cfg["PASSWORD"] or None,
                             host=cfg["HOST"] or None, port=cfg["PORT"] or None, autocommit=False)
    try:
        token = login(live, base)
        assert live.graphql(base, CHEAP, token)[1] == {"data": {"roles": {"totalCount": 0}}}
        holder.execute("LOCK TABLE core_job IN ACCESS EXCLUSIVE MODE")
        for _ in range(3):
            started = time.monotonic()
            status, body = live.graphql(base, "{ jobs(first: 1) { totalCount } }", token, timeout=20)
            assert status == 200 and body["errors"][0]["extensions"]["code"] == "QUERY_TIMEOUT", body
            assert body["errors"][0]["path"] == ["jobs"]
            assert time.monotonic() - started < 5
        holder.rollback()
        assert live.graphql(base, CHEAP, token)[1] == {"data": {"roles": {"totalCount": 0}}}
    finally:
        holder.close()
        live.stop(process)
