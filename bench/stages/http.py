"""``http.*``: the lists the frontends open, over real HTTP, against the real server.

Once per run the stages start gunicorn with the production settings (``COREMIS_DEBUG=0``, a
secret key, the worker count of ``docker/compose.yaml``) on the bench database, after every
other stage has loaded its data; before it, about 2 % of the people are soft-deleted (as a
registry that has been maintained for years has) and a province-scoped bench user is made.
A small bounded asyncio client (one connection per request, as gunicorn's sync workers
answer) drives each list with 1 and then 8 concurrent clients: median, p95 and requests/s.

Each list has a baseline, ``http.<list>.pg``: the SELECT (and WITH … SELECT) statements that request sent (its
count and page, and the token's session check), captured once in-process and replayed on
plain psycopg connections with the same concurrency (threads). A row that misses a goal
carries ``EXPLAIN (ANALYZE, BUFFERS)`` of the slowest of those statements in its notes.

Goals (issue 13): median ≤ 50 ms and p95 ≤ 150 ms at 1 client; ≥ 100 requests/s with
p95 ≤ 250 ms at 8 clients.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import Context, Measurement, median, percentile, stage

# The coordinator's national run holds 8310; a second run beside it names another port.
PORT = int(os.environ.get("COREMIS_BENCH_HTTP_PORT", "8310"))
CLIENTS = (1, 8)
REQUESTS_PER_CLIENT = {1: 30, 8: 20}
AFTER = ("payroll.send", "grievance.create")  # every dataset is loaded; nothing writes after
# the reconciliation lists need its files and mismatches too (they run after them)
RECONCILED = (*AFTER, "reconciliation.camt053")
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ListCase:
    name: str
    query: str
    scoped: bool = False  # as the province-scoped bench user
    variables: Callable[[Context], dict[str, Any]] | None = None
    needs: tuple[str, ...] = AFTER


PEOPLE = "totalCount pageInfo { hasNextPage endCursor } edges { node { id uuid firstName lastName dob sex " \
         "dateCreated location { code name } } }"
HOUSEHOLDS = "totalCount edges { node { id uuid code dateCreated head { firstName lastName } location { code name } } }"
CASES = [
    ListCase("locations", '{ locations(first: 10, type: "Colline", orderBy: ["name"]) { totalCount '
             'edges { node { uuid code name type parent { code name } } } } }'),
    ListCase("individual", f'{{ individual(first: 10, orderBy: ["-dateCreated"]) {{ {PEOPLE} }} }}'),
    ListCase("individual.filtered", f'{{ individual(first: 10, lastName_Icontains: "nga", '
             f'orderBy: ["-dateCreated"]) {{ {PEOPLE} }} }}'),
    ListCase("individual.scoped", f'{{ individual(first: 10, orderBy: ["-dateCreated"]) {{ {PEOPLE} }} }}',
             scoped=True),
    ListCase("group", f'{{ group(first: 10, orderBy: ["-dateCreated"]) {{ {HOUSEHOLDS} }} }}'),
    ListCase("group.scoped", f'{{ group(first: 10, orderBy: ["-dateCreated"]) {{ {HOUSEHOLDS} }} }}', scoped=True),
    ListCase("groupIndividual", '{ groupIndividual(first: 10) { totalCount edges { node { uuid role recipientType '
             'individual { firstName lastName } group { code } } } } }'),
    ListCase("benefitPlan", '{ benefitPlan(first: 10, orderBy: ["code"]) { totalCount edges { node { uuid code name '
             'type status dateValidFrom dateValidTo } } } }'),
    ListCase("groupBeneficiary", 'query($p: UUID) { groupBeneficiary(first: 10, benefitPlan_Id: $p) { totalCount '
             'edges { node { uuid status group { code head { firstName lastName } } } } } }',
             variables=lambda ctx: {"p": str(ctx.state["sp_regular"].pk)}),
    ListCase("beneficiary", 'query($p: UUID) { beneficiary(first: 10, benefitPlan_Id: $p) { totalCount '
             'edges { node { uuid status individual { firstName lastName dob } } } } }',
             variables=lambda ctx: {"p": str(_personal_plan(ctx).pk)}),
    ListCase("payroll", '{ payroll(first: 10) { totalCount edges { node { uuid name status controlCount controlSum '
             'paymentMethod paymentCycle { code } paymentPlan { code } } } } }'),
    ListCase("benefitConsumptionByPayroll", 'query($p: UUID!) { benefitConsumptionByPayroll(payrollUuid: $p, '
             'first: 10) { totalCount edges { node { uuid code amount status receipt individual { firstName '
             'lastName } } } } }', variables=lambda ctx: {"p": str(ctx.state["pay_payroll"].pk)}),
    ListCase("task", '{ task(first: 10) { totalCount edges { node { uuid status action entityId dateCreated } } } }'),
    ListCase("mutationLogs", '{ mutationLogs(first: 10) { totalCount edges { node { id status mutationName '
             'requestDateTime } } } }'),
    ListCase("jobs", '{ jobs(first: 10) { totalCount edges { node { uuid kind state createdAt } } } }'),
    ListCase("tickets", '{ tickets(first: 10, orderBy: ["-dateCreated"]) { totalCount edges { node { uuid code '
             'title status priority category dateCreated } } } }'),
    ListCase("reconciliationMismatch", 'query($p: ID) { reconciliationMismatch(first: 10, payroll_Id: $p, '
             'orderBy: ["-dateCreated"]) { totalCount edges { node { uuid klass status reference assignee '
             'dateCreated } } } }', variables=lambda ctx: {"p": str(ctx.state["recon_payroll"].pk)}, needs=RECONCILED),
    ListCase("csvReconciliationUpload", '{ csvReconciliationUpload(first: 10, orderBy: ["-dateCreated"]) { '
             'totalCount edges { node { uuid fileName status source rows stored dateCreated payroll { name } } } } }',
             needs=RECONCILED),
]

# the people of the bench's households whose number starts with 1 (about one in nine)
PERSONAL = {"field": "last_name", "lookup": "istartswith", "value": "Family1"}


def _personal_plan(ctx: Context) -> Any:
    """An individual-type plan with its people enrolled, for ``beneficiary`` (set-up, untimed:
    the enrollment job's body, as ``social_protection.enroll`` runs it for households)."""
    if "http_personal_plan" not in ctx.state:
        import datetime

        from modules.social_protection import services
        from modules.social_protection.jobs import enroll_all

        plan = services.create_plan(
            ctx.superuser(), code="BENCH-PERSONAL", name="BENCH-PERSONAL", type="INDIVIDUAL",
            criteria={"combine": "AND", "conditions": [PERSONAL]},
            date_valid_from=datetime.date(2026, 1, 1), date_valid_to=datetime.date(2027, 12, 31))
        enroll_all({"plan_id": str(plan.pk), "status": "ACTIVE"}, ctx.superuser(), lambda *a: None)
        ctx.state["http_personal_plan"] = plan
    return ctx.state["http_personal_plan"]


# --- the server ------------------------------------------------------------------------------


def compose_workers() -> int:
    text = (ROOT / "docker" / "compose.yaml").read_text(encoding="utf-8")
    found = re.search(r'"gunicorn".*?"--workers",\s*"(\d+)"', text)
    return int(found.group(1)) if found else 3


def _prepare(ctx: Context) -> None:
    """Soft-delete about 2 % of the people (history by trigger) and make the scoped user."""
    from core.models import User
    from core.roles import create_role
    from modules.location.models import Location
    from modules.location.services import set_user_locations

    db = ctx.psycopg()
    db.execute("UPDATE individual_individual SET is_deleted = true, version = version + 1 "
               "WHERE NOT is_deleted AND abs(hashtext(id::text)) % 50 = 0")
    db.execute("VACUUM (ANALYZE) individual_individual")
    admin = ctx.superuser()
    province = Location.objects.filter(type="Province").order_by("code").first()
    role = create_role(admin, "bench-province-officer", [
        "individual.registry.search", "location.location.search", "social_protection.plan.search", "payroll.payroll.search"])
    user = User.objects.create_user("bench-province", "bench-province@example.org", "bench-province-password")
    user.roles.add(role)
    set_user_locations(admin, user, [province.pk])
    ctx.state["http_scoped_user"] = user
    ctx.state["http_deleted"] = db.execute("SELECT count(*) FROM individual_individual WHERE is_deleted").fetchone()[0]


def _server(ctx: Context) -> dict[str, Any]:
    if "http_server" in ctx.state:
        return ctx.state["http_server"]
    from django.conf import settings

    _prepare(ctx)
    key = secrets.token_urlsafe(48)
    settings.SECRET_KEY = key  # the tokens the stages issue must verify in the server
    env = {**os.environ, "DATABASE_URL": ctx.database_url, "COREMIS_DEBUG": "0", "COREMIS_SECRET_KEY": key,
           "COREMIS_ALLOWED_HOSTS": "127.0.0.1,localhost"}
    workers = compose_workers()
    (ROOT / "bench" / "out").mkdir(exist_ok=True)
    log = open(ROOT / "bench" / "out" / "http-server.log", "ab")  # open for the server's life
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "core.wsgi:application", "--bind", f"127.0.0.1:{PORT}",
         "--workers", str(workers), "--access-logfile", "-", "--no-control-socket"],  # not in ~/.gunicorn
        cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True)

    def stop() -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()

    atexit.register(stop)
    deadline = time.monotonic() + 60
    while True:
        try:
            asyncio.run(_post("{ __typename }", None, ""))
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                stop()
                raise RuntimeError("gunicorn did not start; see bench/out/http-server.log") from None
            time.sleep(0.5)
    _settle(process.pid, deadline)
    ctx.state["http_server"] = {"workers": workers, "stop": stop}
    return ctx.state["http_server"]


def _settle(pid: int, deadline: float) -> None:
    """Wait until gunicorn's workers have loaded the app (``core/wsgi.py``: a second or two of
    CPU each): the first answer says only one has, and the others loading beside the first
    list's baseline took the cores it was measured on. Reads ``/proc`` (Linux); elsewhere it
    does not wait."""
    if not Path("/proc/self/stat").exists():
        return
    tick = os.sysconf("SC_CLK_TCK")

    def busy() -> float:
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rpartition(")")[2].split()
            except OSError:  # gone meanwhile
                continue
            if int(fields[1]) == pid:  # its parent is the master: a worker
                total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / tick

    before = busy()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = busy()
        if now - before < 0.05:
            return
        before = now


# --- the load generator ----------------------------------------------------------------------


async def _post(query: str, variables: dict[str, Any] | None, token: str) -> tuple[int, bytes]:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", PORT)
    try:
        head = (f"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1:{PORT}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n")
        if token:
            head += f"Authorization: Bearer {token}\r\n"
        writer.write(head.encode() + b"\r\n" + body)
        await writer.drain()
        status_line = await reader.readline()
        length = None
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        payload = await (reader.readexactly(length) if length is not None else reader.read())
        return int(status_line.split()[1]), payload
    finally:
        writer.close()


async def _drive(query: str, variables: dict[str, Any] | None, token: str, clients: int,
                 per_client: int) -> tuple[list[float], float]:
    """``clients`` concurrent clients, each sending ``per_client`` requests one after another."""
    timings: list[float] = []

    async def client() -> None:
        for _ in range(per_client):
            start = time.perf_counter()
            status, payload = await _post(query, variables, token)
            timings.append(time.perf_counter() - start)
            answer = json.loads(payload)
            if status != 200 or answer.get("errors"):
                raise AssertionError(f"HTTP {status}: {payload[:300]!r}")

    await asyncio.gather(*(client() for _ in range(min(clients, 2))))  # warm-up, not measured
    timings.clear()
    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return timings, time.perf_counter() - started


# --- the stages ------------------------------------------------------------------------------


def _user(ctx: Context, case: ListCase) -> Any:
    return ctx.state["http_scoped_user"] if case.scoped else ctx.superuser()


def _statements(ctx: Context, case: ListCase) -> list[str]:
    """The SELECTs (and WITH … SELECTs) the request sends, captured in-process (same settings, same SQL)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from core.auth.tokens import issue

    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {issue(_user(ctx, case)).token}")
    variables = case.variables(ctx) if case.variables else {}
    body = {"query": case.query, "variables": variables}
    # the second request's statements: what a warmed-up server sends for every page (a whole
    # table above the exact-count limit is remembered as large for a few seconds, and not
    # counted again; core/graphql/counting.py)
    client.post("/graphql", body, content_type="application/json")
    with CaptureQueriesContext(connection) as captured:
        answer = client.post("/graphql", body, content_type="application/json")
    assert answer.status_code == 200 and not answer.json().get("errors"), answer.content[:300]
    # a counted list's count and page keys are one WITH … SELECT (core/graphql/counting.py)
    return [q["sql"] for q in captured.captured_queries if q["sql"].lstrip().upper().startswith(("SELECT", "WITH"))]


def _replay(ctx: Context, statements: list[str], clients: int, per_client: int) -> tuple[list[float], float]:
    import psycopg

    timings: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        with psycopg.connect(ctx.database_url, autocommit=True) as plain:
            plain.prepare_threshold = None
            for sql in statements:  # warm-up
                plain.execute(sql).fetchall()
            for _ in range(per_client):
                start = time.perf_counter()
                for sql in statements:
                    plain.execute(sql).fetchall()
                with lock:
                    timings.append(time.perf_counter() - start)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return timings, time.perf_counter() - started


def _slowest_plan(ctx: Context, statements: list[str]) -> str:
    db = ctx.psycopg()
    slowest, worst = statements[0], -1.0
    for sql in statements:
        start = time.perf_counter()
        db.execute(sql).fetchall()
        if time.perf_counter() - start > worst:
            slowest, worst = sql, time.perf_counter() - start
    plan = db.execute(f"EXPLAIN (ANALYZE, BUFFERS) {slowest}").fetchall()
    return readable_plan(" / ".join(row[0].strip() for row in plan[:12]))


# an array constant of a plan (``id = ANY ('{…}'::uuid[])``) longer than a few elements
_LONG_ARRAY = re.compile(r"'\{([^{}']{120,})\}'")


def readable_plan(text: str) -> str:
    """A plan for a table cell: no pipes, and a long array constant (a page of keys, a scope's
    locations) shown as its size, ``'{…2,945 ids…}'``, not thousands of uuids."""
    return _LONG_ARRAY.sub(lambda m: f"'{{…{m.group(1).count(',') + 1:,} ids…}}'", text).replace("|", "¦")


def _figures(timings: list[float], seconds: float) -> tuple[float, float, float]:
    return median(timings), percentile(timings, 0.95), len(timings) / seconds


def _register(case: ListCase) -> None:
    baseline_name = f"http.{case.name}.pg"

    @stage(baseline_name, needs=case.needs, is_baseline=True)
    def baseline(ctx: Context) -> Measurement:
        """The request's SELECTs replayed on plain connections, at 1 and 8 clients."""
        _server(ctx)
        statements = _statements(ctx, case)
        ctx.state[f"http_sql_{case.name}"] = statements
        notes = []
        first = None
        for clients in CLIENTS:
            timings, seconds = _replay(ctx, statements, clients, REQUESTS_PER_CLIENT[clients])
            p50, p95, rate = _figures(timings, seconds)
            first = first or p50
            notes.append(f"{clients} client{'s' if clients > 1 else ''}: median {p50 * 1000:.1f} ms, "
                         f"p95 {p95 * 1000:.1f} ms, {rate:,.0f}/s")
        return Measurement(10, first, [f"{len(statements)} statements", *notes])

    @stage(f"http.{case.name}", baseline=baseline_name, needs=case.needs)
    def over_http(ctx: Context) -> Measurement:
        """The list over HTTP against gunicorn, at 1 and 8 clients."""
        from core.auth.tokens import issue

        server = _server(ctx)
        token = issue(_user(ctx, case)).token
        variables = case.variables(ctx) if case.variables else None
        results = {}
        for clients in CLIENTS:
            timings, seconds = asyncio.run(_drive(case.query, variables, token, clients, REQUESTS_PER_CLIENT[clients]))
            results[clients] = _figures(timings, seconds)
        (p50, p95, rate1), (p50_8, p95_8, rate8) = results[1], results[8]
        met = p50 <= 0.050 and p95 <= 0.150 and rate8 >= 100 and p95_8 <= 0.250
        notes = [f"1 client: median {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, {rate1:,.0f}/s",
                 f"8 clients: median {p50_8 * 1000:.1f} ms, p95 {p95_8 * 1000:.1f} ms, {rate8:,.0f}/s",
                 f"gunicorn {server['workers']} workers, production settings",
                 "as the province-scoped user" if case.scoped else "as a national superuser",
                 "goals met" if met else "GOAL MISSED"]
        if not met and ctx.state.get(f"http_sql_{case.name}"):
            notes.append("slowest statement: " + _slowest_plan(ctx, ctx.state[f"http_sql_{case.name}"]))
        if case.name == "individual":
            notes.append(f"{ctx.state['http_deleted']:,} people soft-deleted")
        return Measurement(10, p50, notes)


for _case in CASES:
    _register(_case)
