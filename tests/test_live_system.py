"""The real processes: gunicorn serving HTTP and an RQ worker running an import, talking to
the same PostgreSQL and Redis as the test run. Nothing here is mocked."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from core.models import User

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    """The test database as a URL for child processes (socket dir or host, as configured)."""
    cfg = connection.settings_dict
    user = quote(cfg["USER"] or "postgres")
    password = f":{quote(cfg['PASSWORD'])}" if cfg["PASSWORD"] else ""
    host = cfg["HOST"] or ""
    if host.startswith("/"):
        return f"postgresql://{user}{password}@/{cfg['NAME']}?host={quote(host)}"
    port = f":{cfg['PORT']}" if cfg["PORT"] else ""
    return f"postgresql://{user}{password}@{host}{port}/{cfg['NAME']}"


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(DATABASE_URL=database_url(), REDIS_URL=settings.REDIS_URL, COREMIS_DEBUG="1",
               PYTHONUNBUFFERED="1", COREMIS_LOG_LEVEL="WARNING")
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def server() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "core.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", "2", "--timeout", "60", "--no-control-socket"],  # not in ~/.gunicorn
        cwd=ROOT, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited: {process.stderr.read().decode()[-2000:] if process.stderr else ''}")
        try:
            urllib.request.urlopen(base + "/health", timeout=2)
            break
        except urllib.error.HTTPError:
            break  # 503 "degraded" still means it is serving
        except OSError:
            time.sleep(0.3)
    else:
        stop(process)
        pytest.fail("gunicorn did not answer within 60 s")
    yield base
    stop(process)


@pytest.fixture
def worker() -> Iterator[subprocess.Popen[bytes]]:
    import django_rq

    django_rq.get_queue("default").empty()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "rqworker", "default", "--name", f"test-{uuid.uuid4().hex[:8]}"],
        cwd=ROOT, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    yield process
    stop(process)


def post_json(url: str, body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def graphql(base: str, query: str, token: str | None = None, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    return post_json(base + "/graphql", {"query": query, "variables": variables or {}}, token)


def login(base: str, username: str, password: str) -> str:
    data = graphql(base, 'mutation($u: String!, $p: String!) { tokenAuth(username: $u, password: $p) { token } }',
                   variables={"u": username, "p": password})
    assert not data.get("errors"), data
    return str(data["data"]["tokenAuth"]["token"])


def health(base: str, token: str, query: str = "") -> dict[str, Any]:
    """The full /health report, as a superuser reads it (503 when a check fails)."""
    request = urllib.request.Request(base + "/health" + query, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as exc:
        return dict(json.loads(exc.read()))


def multipart(url: str, token: str, filename: str, content: bytes) -> dict[str, Any]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            f"Content-Type: text/csv\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}", "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def test_login_and_query_over_http(server: str) -> None:
    User.objects.create_superuser("http-admin", "a@example.org", "a-long-password-1")
    anonymous = graphql(server, "{ locations(first: 1) { totalCount } }")
    assert anonymous["data"]["locations"] is None
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

    token = login(server, "http-admin", "a-long-password-1")
    data = graphql(server, "{ locations(first: 1) { totalCount } }", token)
    assert data == {"data": {"locations": {"totalCount": 0}}}

    try:
        urllib.request.urlopen(server + "/health", timeout=10)
    except urllib.error.HTTPError as exc:  # 503 when no worker runs: still only the verdict
        assert exc.read() == b"degraded"
    report = health(server, token)
    assert report["checks"]["database"]["ok"] and report["checks"]["redis"]["ok"]
    assert report["checks"]["migrations"]["ok"]


def test_worker_imports_a_hierarchy_while_the_client_watches(server: str, worker: Any) -> None:
    from bench.generate import iter_locations

    User.objects.create_superuser("import-admin", "i@example.org", "a-long-password-2")
    token = login(server, "import-admin", "a-long-password-2")
    lines = ["code,name,type,parent_code"]
    lines += [f"{code},{name},{type_},{parent or ''}" for code, name, type_, parent in iter_locations()]
    started = multipart(server + "/api/location/import?mode=all_or_nothing", token, "country.csv",
                        "\n".join(lines).encode())
    job_id = started["jobId"]

    seen: list[tuple[str, int]] = []
    deadline = time.monotonic() + 120
    query = '{ jobs(kind: "location.import", first: 1) { edges { node { uuid state stage processed total errorCount } } } }'
    while time.monotonic() < deadline:
        node = graphql(server, query, token)["data"]["jobs"]["edges"][0]["node"]
        assert node["uuid"] == job_id
        seen.append((node["state"], node["processed"]))
        if node["state"] in ("SUCCEEDED", "FAILED", "PARTIAL"):
            break
        time.sleep(0.1)
    assert seen[-1][0] == "SUCCEEDED", seen
    assert node["processed"] == node["total"] == len(lines) - 1 and node["errorCount"] == 0
    report = health(server, token, "?checks=worker")
    assert report["checks"]["worker"]["ok"], report

    counted = graphql(server, '{ locations(type: "Colline") { totalCount } }', token)
    assert counted["data"]["locations"]["totalCount"] == sum(1 for row in lines if ",Colline," in row)
