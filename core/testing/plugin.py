"""Pytest fixtures shared by every module's tests (loaded with ``-p core.testing.plugin``).

Tests run against the real PostgreSQL and Redis that ``coremis services`` started (embedded by
default) or that ``DATABASE_URL`` / ``REDIS_URL`` name.

Each enabled module's test doubles and shared fixtures live in ``modules/<m>/testing.py``;
this plug-in registers those files as pytest plug-ins through the loader, so a disabled
module's fixtures are gone with it. Tests use them as fixtures; no test imports another test
file or a ``testing.py``.
"""

from __future__ import annotations

import importlib.util
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from core.loader import Registry


def testing_plugins(registry: Registry) -> list[str]:
    """The ``<module>.testing`` plug-ins of the modules ``registry`` enables, in load order."""
    names = []
    for module in registry.modules:
        name = f"{module.spec.app}.testing"
        if importlib.util.find_spec(name) is not None:
            names.append(name)
    return names


@pytest.hookimpl(trylast=True)  # after pytest-django has set Django up
def pytest_configure(config: pytest.Config) -> None:
    from core.loader import get_registry

    for name in testing_plugins(get_registry()):
        if not config.pluginmanager.has_plugin(name):
            config.pluginmanager.import_plugin(name)


@pytest.fixture(autouse=True)
def _undeclared_error_codes_fail_the_test(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A mutation that refuses with a code its enum does not hold answers ``REFUSED`` in
    production (and logs it); in a test, it fails the test, naming the code to declare."""
    from core.graphql import errors

    seen: list[tuple[str, str]] = []
    monkeypatch.setattr(errors, "on_undeclared_code", lambda mutation, code: seen.append((mutation, code)))
    yield
    if seen:
        pytest.fail("mutations refused with codes their error enum does not declare: "
                    + ", ".join(f"{m}: {c}" for m, c in seen), pytrace=False)


@pytest.fixture(autouse=True)
def _progress_on_the_test_connection(request: pytest.FixtureRequest, settings: Any) -> None:
    """Tests inside one wrapping transaction must see job progress on that same connection;
    tests with real commits (``transactional_db``, live processes) keep the separate one."""
    marker = request.node.get_closest_marker("django_db")
    commits = bool(marker and (marker.kwargs.get("transaction") or (marker.args and marker.args[0])))
    if not commits and "transactional_db" not in request.fixturenames and "live_server" not in request.fixturenames:
        settings.COREMIS = {**settings.COREMIS, "PROGRESS_DB": "default"}


@pytest.fixture(autouse=True)
def _whole_tables_counted_afresh() -> Iterator[None]:
    """Each test's tables are its own (rolled back after it): a table the previous test made
    large is not remembered as large in the next (``core.graphql.counting``)."""
    from core.graphql.counting import forget_large_tables

    forget_large_tables()
    yield
    forget_large_tables()


@pytest.fixture
def make_user(db: Any) -> Callable[..., Any]:
    """``make_user(["location.search"])``: a user whose one role grants those codes."""
    from core.models import Role, User

    def factory(permissions: list[str] | None = None, *, username: str | None = None,
                superuser: bool = False, password: str = "correct-horse-battery") -> Any:
        name = username or f"user-{uuid.uuid4().hex[:8]}"
        if superuser:
            user = User.objects.create_superuser(name, f"{name}@example.org", password)
        else:
            user = User.objects.create_user(name, f"{name}@example.org", password)
        if permissions:
            role = Role.objects.create(name=f"role-{name}", permissions=list(permissions))
            user.roles.add(role)
        return user

    return factory


class GraphQLClient:
    """Sends GraphQL over HTTP through Django's test client, with a real bearer token."""

    def __init__(self, client: Any, user: Any = None) -> None:
        self.client = client
        self.user = user
        self._token: str | None = None
        # Logged in up front, as a real client would be: logging in writes a session row,
        # which must not count towards what the requests themselves do.
        self.token()

    def token(self) -> str | None:
        if self.user is None:
            return None
        if self._token is None:
            from core.auth.tokens import issue

            self._token = issue(self.user).token
        return self._token

    def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = {}
        if self.token():
            headers["HTTP_AUTHORIZATION"] = f"Bearer {self.token()}"
        response = self.client.post(
            "/graphql", data=json.dumps({"query": query, "variables": variables or {}}),
            content_type="application/json", **headers,
        )
        assert response.status_code in (200, 400), response.content[:500]
        return response.json()

    def ok(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Execute and fail the test on any GraphQL error; return ``data``."""
        result = self.execute(query, variables)
        assert not result.get("errors"), result["errors"]
        return result["data"]


@pytest.fixture
def gql(client: Any, db: Any) -> Callable[[Any], GraphQLClient]:
    """``gql(user).ok("{ locations { totalCount } }")``; ``gql(None)`` is anonymous."""
    return lambda user=None: GraphQLClient(client, user)


@pytest.fixture
def redis_queue() -> Iterator[Any]:
    """The real default RQ queue, emptied before and after the test."""
    import django_rq

    queue = django_rq.get_queue("default")
    queue.empty()
    yield queue
    queue.empty()


@pytest.fixture
def run_jobs(redis_queue: Any) -> Callable[[], int]:
    """Run every queued job in this process with a real RQ SimpleWorker (burst mode) and
    return how many ran; a job that crashed fails the test with its traceback."""
    from rq import SimpleWorker
    from rq.registry import FailedJobRegistry

    def run() -> int:
        queued = redis_queue.count
        failed = FailedJobRegistry(queue=redis_queue)
        already_failed = set(failed.get_job_ids())
        worker = SimpleWorker([redis_queue], connection=redis_queue.connection)
        worker.work(burst=True)
        for job_id in set(failed.get_job_ids()) - already_failed:
            job = redis_queue.fetch_job(job_id)
            failed.remove(job_id)
            pytest.fail(f"background job crashed:\n{job.latest_result().exc_string if job else job_id}")
        return queued

    return run


@pytest.fixture
def run_again() -> Callable[[Any], Any]:
    """``run_again(job)``: run a finished job once more, as the scheduler does when a run was
    lost after its work committed but before its outcome was recorded. Returns the job as
    that second run left it; a handler that is not idempotent shows up as duplicates."""
    from core.jobs import run_job
    from core.models import Job

    def again(job: Any) -> Any:
        Job.objects.filter(pk=job.pk).update(state=Job.QUEUED, finished_at=None)
        run_job(str(job.pk))
        job.refresh_from_db()
        return job

    return again


@pytest.fixture
def database_url() -> str:
    """The URL of the test database, for a real child process (a scheduler, a web server)."""
    from django.db import connection

    from core.testing.live import database_url as url_of

    return url_of(connection.settings_dict)


@pytest.fixture
def live() -> Any:
    """The helpers for tests of real processes (:mod:`core.testing.live`): ``start_gunicorn``,
    ``stop``, ``request``, ``graphql``, ``multipart``, ``database_url``, ``postgres_socket``."""
    from core.testing import live as helpers

    return helpers


@pytest.fixture
def socket_proxy() -> Iterator[Callable[..., Any]]:
    """``socket_proxy(listen, target)``: a :class:`core.testing.proxy.SocketProxy` (call
    ``.start()``; ``.cut()`` and ``.restore()`` the connection), closed after the test."""
    from core.testing.proxy import SocketProxy

    made: list[Any] = []

    def make(listen: Any, target: Any) -> Any:
        made.append(SocketProxy(listen, target))
        return made[-1]

    yield make
    for proxy in made:
        proxy.close()


@pytest.fixture
def blocked_by() -> Callable[..., bool]:
    """``blocked_by(holder)``: whether another session of the database waits, within
    ``timeout`` seconds, on a lock that the connection ``holder`` holds (``pg_blocking_pids``
    in ``pg_stat_activity``). A test of locking asks this instead of sleeping and hoping."""
    import time

    from django.db import connections

    def wait(holder: Any, timeout: float = 30.0) -> bool:
        with holder.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            (pid,) = cursor.fetchone()
        deadline = time.monotonic() + timeout
        observer = connections.create_connection("default")
        try:
            observer.set_autocommit(True)
            while True:
                with observer.cursor() as cursor:
                    cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                                   [pid])
                    if cursor.fetchone()[0]:
                        return True
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.02)
        finally:
            observer.close()

    return wait
