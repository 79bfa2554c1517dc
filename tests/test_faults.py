"""Faults injected into a running ``coremis run``, the way production breaks: the work horse
and the worker SIGKILLed in the middle of an import and of a payroll send, PostgreSQL and
Redis killed mid-job, a payment provider dying mid-send, and SIGINT in the middle of both.

Every case ends the same way, with nobody running a command: the job finishes by itself
within a bounded wait, the counts are exact, no row is written twice, and the simulated
provider never receives a payment reference twice.

The system under test is a real ``coremis run`` with its own embedded PostgreSQL and Redis in
a temporary directory (so killing them does not touch the servers this test run uses), with
short leases and back-offs so each recovery takes seconds. The test talks to it as clients
and operators do: HTTP, GraphQL, signals, and a read-only look at its database.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from core.loader import REPO_ROOT, modules_config_path
from devserver.postgres import EmbeddedPostgres
from devserver.servers import EmbeddedServiceError

pytestmark = pytest.mark.slow

ADMIN_PASSWORD = "faults-admin-password-1"
SECRETS = {"COREMIS_PSP_FAULTS_SECRET": "client-secret", "COREMIS_PSP_FAULTS_SIGN": "signing-key",
           "COREMIS_PSP_FAULTS_CALLBACK": "callback-key"}
RECOVERY = 90.0  # seconds any case may take to finish by itself after its fault


# --- the system under test -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proc_children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def cmdline(pid: int) -> str:
    try:
        return (Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")).decode(errors="replace")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def wait_for(condition: Callable[[], Any], seconds: float, what: str, log: Path | None = None) -> Any:
    deadline = time.monotonic() + seconds
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = condition()
        # the server is being restarted: no socket yet (EmbeddedServiceError), or refusing
        except (psycopg.OperationalError, OSError, EmbeddedServiceError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    pytest.fail(f"waited {seconds:.0f} s for {what} (last: {last!r})\n--- coremis run ---\n{tail}")


class System:
    """One ``coremis run`` in its own directory; stopped and started again as a test needs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.var = root / "var"
        self.log = root / "coremis.log"
        self.port = free_port()
        # The simulated provider always comes back on this port: outbound calls go only to
        # the allow-listed URLs of the configuration written below.
        self.provider_port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self._token: str | None = None
        config = json.loads(modules_config_path().read_text())
        config.setdefault("individual", {})["import_chunk_size"] = 100
        payroll = config.setdefault("payroll", {})
        payroll["send_resume_seconds"] = 1
        payroll["approvals"] = {}  # approval has its own tests; here a payroll is sent at once
        payroll["outbound_urls"] = [*payroll.get("outbound_urls", []), f"http://127.0.0.1:{self.provider_port}"]
        (root / "modules_config.json").write_text(json.dumps(config))
        self.env = {key: value for key, value in os.environ.items()
                    if key not in ("DATABASE_URL", "REDIS_URL", "COREMIS_SECRET_KEY")}
        self.env.update(SECRETS, COREMIS_ADMIN_PASSWORD=ADMIN_PASSWORD, COREMIS_LOG_LEVEL="WARNING",
                        COREMIS_MODULES_CONFIG=str(root / "modules_config.json"),
                        COREMIS_JOB_LEASE_SECONDS="3", COREMIS_JOB_HEARTBEAT_SECONDS="0.5",
                        COREMIS_JOB_RETRY_SECONDS="1", COREMIS_JOB_RETRY_MAX_SECONDS="4",
                        COREMIS_JOB_DISPATCH_GRACE_SECONDS="2", COREMIS_SCHEDULER_SWEEP_SECONDS="0.5")

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._token = None  # seed_demo sets the admin's password again at every start
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "devserver.cli", "run", "--port", str(self.port), "--var-dir", str(self.var),
                 "--workers", "1", "--stop-timeout", "3"],
                cwd=REPO_ROOT, env=self.env, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                start_new_session=True,  # signals reach it only from this test
            )
        wait_for(self._answers, 180, "coremis run to serve", self.log)

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            pytest.fail(f"coremis run exited ({self.process.returncode}):\n{self.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(self.base + "/health?checks=database,redis", timeout=2) as answer:
                return answer.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def interrupt(self) -> list[int]:
        """SIGINT, as Ctrl-C; returns every process the system had, for the caller to check."""
        assert self.process is not None
        everything = [self.process.pid, *self.tree(self.process.pid)]
        postmaster = self.postmaster_pid()
        if postmaster is not None:
            everything += [postmaster, *self.tree(postmaster)]
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=60)
        self.process = None
        return everything

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.interrupt()

    def tree(self, pid: int) -> list[int]:
        found, pending = [], [pid]
        while pending:
            for child in proc_children(pending.pop()):
                found.append(child)
                pending.append(child)
        return found

    # -- its processes ---------------------------------------------------------------------

    def child(self, needle: str) -> int | None:
        assert self.process is not None
        return next((pid for pid in proc_children(self.process.pid) if needle in cmdline(pid)), None)

    def worker(self) -> int:
        return wait_for(lambda: self.child("rqworker"), 30, "a worker", self.log)

    def horse(self) -> int:
        worker = self.worker()
        return wait_for(lambda: next(iter(proc_children(worker)), None), 30, "a work horse", self.log)

    def redis_pid(self) -> int | None:
        try:
            return int((self.var / "redis" / "redis.pid").read_text())
        except (FileNotFoundError, ValueError):
            return None  # a restarting redis-server has not written it yet

    def postmaster_pid(self) -> int | None:
        info = EmbeddedPostgres(self.var / "postgres").postmaster()
        return info.pid if info is not None else None

    # -- talking to it ---------------------------------------------------------------------

    def sql(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(EmbeddedPostgres(self.var / "postgres").url(), connect_timeout=3) as conn:
            return conn.execute(query, params).fetchall()

    def token(self) -> str:
        if self._token is None:
            data = self.graphql('mutation($u: String!, $p: String!) { tokenAuth(username: $u, password: $p) '
                                '{ token } }', {"u": "admin", "p": ADMIN_PASSWORD}, anonymous=True)
            self._token = str(data["tokenAuth"]["token"])
        return self._token

    def graphql(self, query: str, variables: dict[str, Any] | None = None, anonymous: bool = False) -> Any:
        request = urllib.request.Request(self.base + "/graphql", method="POST",
                                         data=json.dumps({"query": query, "variables": variables or {}}).encode(),
                                         headers={"Content-Type": "application/json"})
        if not anonymous:
            request.add_header("Authorization", f"Bearer {self.token()}")
        with urllib.request.urlopen(request, timeout=60) as answer:
            body = json.loads(answer.read())
        assert not body.get("errors"), body["errors"]
        return body["data"]

    def mutate(self, name: str, payload: dict[str, Any], fields: str) -> Any:
        input_type = name[0].upper() + name[1:] + "MutationInput"
        result = self.graphql(f"mutation($i: {input_type}!) {{ {name}(input: $i) {{ errors {{ code message }} "
                              f"{fields} }} }}", {"i": payload})[name]
        assert result["errors"] == [], result["errors"]
        return result

    def upload_import(self, content: bytes) -> str:
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"people.csv\"\r\n"
                "Content-Type: text/csv\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
        request = urllib.request.Request(self.base + "/api/individual/import", data=body, method="POST", headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}", "Authorization": f"Bearer {self.token()}"})
        with urllib.request.urlopen(request, timeout=60) as answer:
            assert answer.status == 202
            return str(json.loads(answer.read())["jobId"])

    def job(self, job_id: str) -> dict[str, Any]:
        rows = self.sql("SELECT state, stage, message, attempts, failures FROM core_job WHERE id = %s", [job_id])
        state, stage, message, attempts, failures = rows[0]
        return {"state": state, "stage": stage, "message": message, "attempts": attempts, "failures": failures}

    def finished(self, job_id: str) -> dict[str, Any]:
        """The job once it is final (bounded wait), as the database holds it."""
        job = wait_for(lambda: (j := self.job(job_id))["state"] in ("SUCCEEDED", "FAILED", "PARTIAL", "CANCELLED")
                       and j, RECOVERY, f"job {job_id} to finish by itself", self.log)
        return dict(job)


@pytest.fixture(scope="module")
def system(slow_import_batches: Any) -> Iterator[System]:
    root = Path(tempfile.mkdtemp(prefix="coremis-faults-", dir="/tmp"))  # short: unix socket paths
    root.chmod(0o755)
    made = System(root)
    made.start()
    # Each import batch stays open a moment before its commit, so a kill lands inside one.
    with psycopg.connect(EmbeddedPostgres(made.var / "postgres").url(), connect_timeout=3) as conn:
        conn.execute(slow_import_batches(0.3))
    try:
        yield made
    finally:
        made.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(autouse=True)
def running(system: System) -> Iterator[None]:
    """Each case starts with the system up (a SIGINT case leaves it down)."""
    if system.process is None:
        system.start()
    yield


# --- imports ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def collines(system: System) -> list[str]:
    data = system.graphql('{ locations(type: "Colline", first: 20, orderBy: ["code"]) { edges { node { code } } } }')
    return [edge["node"]["code"] for edge in data["locations"]["edges"]]


def people_csv(prefix: str, households: int, collines: list[str]) -> bytes:
    """Households of four: a head who is the primary recipient, and three others."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["first_name", "last_name", "dob", "sex", "location_code", "household_code", "role",
                     "recipient_type", "national_id", "phone"])
    for h in range(households):
        for m, role in enumerate(("HEAD", "SPOUSE", "SON", "DAUGHTER")):
            writer.writerow([f"P{m}", f"F{prefix}{h}", f"19{60 + m * 10}-0{1 + h % 9}-1{m}", "F" if m % 2 else "M",
                             collines[h % len(collines)], f"{prefix}-{h:05d}", role,
                             "PRIMARY" if m == 0 else "", f"{prefix}-{h:05d}-{m}", f"+257 79{h:05d}{m}"])
    return out.getvalue().encode()


def registered(system: System, prefix: str) -> dict[str, int]:
    like = f"{prefix}-%"
    [(people, distinct)] = system.sql(
        "SELECT count(*), count(DISTINCT json_ext->>'national_id') FROM individual_individual "
        "WHERE json_ext->>'national_id' LIKE %s", [like])
    [(households,)] = system.sql("SELECT count(*) FROM individual_group WHERE code LIKE %s", [like])
    [(members,)] = system.sql("SELECT count(*) FROM individual_groupindividual m JOIN individual_group g "
                              "ON g.id = m.group_id WHERE g.code LIKE %s", [like])
    [(history, history_rows)] = system.sql(
        "SELECT count(*), count(DISTINCT h.row_id) FROM core_history h JOIN individual_individual i ON i.id = h.row_id "
        "WHERE h.table_name = 'individual_individual' AND h.operation = 'I' AND i.json_ext->>'national_id' LIKE %s",
        [like])
    return {"people": people, "distinct": distinct, "households": households, "members": members,
            "history": history, "history_rows": history_rows}


def batches_written(system: System, job_id: str) -> int:
    return int(system.sql("SELECT count(*) FROM individual_importbatch WHERE job_id = %s", [job_id])[0][0])


def start_import(system: System, prefix: str, households: int, collines: list[str]) -> str:
    job_id = system.upload_import(people_csv(prefix, households, collines))
    wait_for(lambda: batches_written(system, job_id) >= 3, 90, "the import to be writing", system.log)
    return job_id


def assert_counters_exact(system: System) -> None:
    """The batches count their own rows (``counted_by_caller``) in their own transactions: a
    batch cut off by the crash left neither its rows nor its counts."""
    for table in ("individual_individual", "individual_group"):
        counted = dict(system.sql(f"SELECT location_id, count(*) FROM {table} "
                                  "WHERE NOT is_deleted AND location_id IS NOT NULL GROUP BY 1"))
        kept = dict(system.sql("SELECT key, live FROM core_row_count WHERE table_name = %s "
                               "AND column_name = 'location_id' AND live <> 0", [table]))
        assert kept == counted, table


def assert_imported_exactly(system: System, job_id: str, prefix: str, households: int) -> dict[str, Any]:
    job = system.finished(job_id)
    assert job["state"] == "SUCCEEDED", job
    assert job["stage"] == "done" and job["message"].startswith(f"Imported {households * 4:,} individuals")
    assert registered(system, prefix) == {"people": households * 4, "distinct": households * 4,
                                          "households": households, "members": households * 4,
                                          "history": households * 4, "history_rows": households * 4}
    assert_counters_exact(system)
    return job


def history(system: System, job_id: str) -> list[tuple[str, str]]:
    return [(event, message) for event, message in system.sql(
        "SELECT event, message FROM core_jobevent WHERE job_id = %s ORDER BY at, id", [job_id])]


def test_a_work_horse_killed_mid_import(system: System, collines: list[str]) -> None:
    job_id = start_import(system, "HK", 400, collines)
    os.kill(system.horse(), signal.SIGKILL)
    job = assert_imported_exactly(system, job_id, "HK", 400)
    assert (job["attempts"], job["failures"]) == (2, 1)
    # its worker said at once that the run was lost: no waiting for the lease to lapse
    assert ("interrupted", "Run 1 was lost: its work horse died of signal 9.") in history(system, job_id)


def test_a_worker_killed_mid_import_takes_its_horse_along(system: System, collines: list[str]) -> None:
    job_id = start_import(system, "WK", 400, collines)
    worker, horse = system.worker(), system.horse()
    os.kill(worker, signal.SIGKILL)
    wait_for(lambda: not alive(horse), 5, "the orphaned work horse to die with its worker")
    wait_for(lambda: (pid := system.child("rqworker")) and pid != worker, 30, "the worker to be restarted")
    job = assert_imported_exactly(system, job_id, "WK", 400)
    assert job["failures"] == 1
    assert "the worker (rqworker) exited unexpectedly (exit status 137)" in system.log.read_text()


def _slow_batches(system: System, sql: str) -> None:
    with psycopg.connect(EmbeddedPostgres(system.var / "postgres").url(), connect_timeout=3) as conn:
        conn.execute(sql)


def test_postgresql_killed_mid_import(system: System, collines: list[str], slow_import_batches: Any) -> None:
    # Without the slow-batch trigger here, so the backends are busy writing, not sleeping,
    # when the postmaster dies: a backend inside a statement does not notice and keeps the
    # shared memory attached, which the restart must deal with (the supervisor ends such
    # orphans). The import must be large enough to be still writing when the kill lands:
    # 5,000 households are 200 batches of 100 rows, of which 3 are written first.
    _slow_batches(system, slow_import_batches(0))
    try:
        job_id = start_import(system, "PG", 5000, collines)
        old = system.postmaster_pid()
        assert old is not None
        os.kill(old, signal.SIGKILL)
        wait_for(lambda: system.postmaster_pid() not in (None, old), 60, "PostgreSQL to be restarted", system.log)
        job = assert_imported_exactly(system, job_id, "PG", 5000)
        assert job["failures"] >= 1
        assert "the embedded PostgreSQL" in system.log.read_text()
    finally:
        _slow_batches(system, slow_import_batches(0.3))


def test_redis_killed_mid_import(system: System, collines: list[str]) -> None:
    job_id = start_import(system, "RD", 400, collines)
    old = system.redis_pid()
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: (pid := system.redis_pid()) not in (None, old) and alive(pid), 30, "Redis to be restarted",
             system.log)
    assert_imported_exactly(system, job_id, "RD", 400)
    assert system.child("rqworker") is not None and system.child("manage.py scheduler") is not None


def test_sigint_mid_import_leaves_no_process_and_the_import_ends_after_the_restart(
    system: System, collines: list[str]
) -> None:
    job_id = start_import(system, "SI", 400, collines)
    horse = system.horse()
    everything = system.interrupt()
    assert horse in everything
    survivors = [(pid, cmdline(pid)) for pid in everything if alive(pid)]
    assert survivors == []
    system.start()  # the next `make run`; nobody touches the job
    assert_imported_exactly(system, job_id, "SI", 400)


# --- payroll sends ---------------------------------------------------------------------------


@pytest.fixture
def provider(system: System, mobile_money_simulator: Any) -> Iterator[tuple[Any, Any]]:
    """The payroll plug-in's simulated mobile-money provider, taking a moment per batch so a
    fault lands in the middle of a send; with its server."""

    class SlowProvider(mobile_money_simulator.provider):  # type: ignore[name-defined,misc]
        delay: float = 0.15

        def pay(self, body: dict[str, Any]) -> list[dict[str, Any]]:
            time.sleep(self.delay)
            return super().pay(body)

    simulated = SlowProvider(client_secret=SECRETS["COREMIS_PSP_FAULTS_SECRET"],
                             signing_key=SECRETS["COREMIS_PSP_FAULTS_SIGN"],
                             callback_key=SECRETS["COREMIS_PSP_FAULTS_CALLBACK"])
    server = mobile_money_simulator.serve(simulated, system.provider_port)
    yield simulated, server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def enrolled(system: System, collines: list[str]) -> str:
    """120 households enrolled ACTIVE in a GROUP plan; returns the plan's id."""
    job_id = system.upload_import(people_csv("PAY", 120, collines))
    assert system.finished(job_id)["state"] == "SUCCEEDED"
    plan = system.mutate("createBenefitPlan", {
        "code": "FAULTS", "name": "Cash transfer", "type": "GROUP", "dateValidFrom": "2026-01-01",
        "dateValidTo": "2030-12-31"}, "benefitPlan { uuid }")["benefitPlan"]["uuid"]
    households = [row[0] for row in system.sql("SELECT id::text FROM individual_group WHERE code LIKE %s", ["PAY-%"])]
    enrollment = system.mutate("confirmGroupEnrollment", {"benefitPlanId": plan, "status": "ACTIVE",
                                                          "selection": households}, "job { uuid }")
    assert system.finished(enrollment["job"]["uuid"])["state"] == "SUCCEEDED"
    return str(plan)


def start_send(system: System, plan: str, server: Any) -> tuple[str, str]:
    """A new cycle, payment plan and mobile-money point; the payroll generated and sent."""
    n = uuid.uuid4().hex[:6].upper()
    cycle = system.mutate("createPaymentCycle", {"code": f"C-{n}", "startDate": "2026-01-01",
                                                 "endDate": "2026-01-31"}, "paymentCycle { uuid }")
    payment_plan = system.mutate("createPaymentPlan", {
        "code": f"PP-{n}", "name": "Transfer", "benefitPlanId": plan, "calculationRule": json.dumps({"fixed": 5000}),
        "currency": "BIF", "minorUnit": 0}, "paymentPlan { uuid }")
    config = {"base_url": f"http://127.0.0.1:{server.server_address[1]}", "client_id": "coremis",
              "client_secret": {"env": "COREMIS_PSP_FAULTS_SECRET"}, "batch_size": 5, "timeout": 2,
              "signature": {"algorithm": "hmac-sha256", "key": {"env": "COREMIS_PSP_FAULTS_SIGN"},
                            "fields": ["reference", "amount", "msisdn"]},
              "callback_key": {"env": "COREMIS_PSP_FAULTS_CALLBACK"}}
    point = system.mutate("createPaymentPoint", {"code": f"MM-{n}", "name": "Mobile money", "adaptor": "mobile_money",
                                                 "config": json.dumps(config)}, "paymentPoint { uuid }")
    generation = system.mutate("createPayroll", {
        "name": f"Payroll {n}", "paymentPlanId": payment_plan["paymentPlan"]["uuid"],
        "paymentCycleId": cycle["paymentCycle"]["uuid"], "paymentPointId": point["paymentPoint"]["uuid"]},
        "job { uuid }")
    generated = system.finished(generation["job"]["uuid"])
    assert generated["state"] == "SUCCEEDED", generated
    [(payroll,)] = system.sql("SELECT result->>'payroll_id' FROM core_job WHERE id = %s", [generation["job"]["uuid"]])
    sent = system.mutate("makePaymentForPayroll", {"id": payroll}, "job { uuid }")
    return str(payroll), str(sent["job"]["uuid"])


def assert_paid_once(system: System, simulated: Any, payroll: str, job_id: str) -> dict[str, Any]:
    job = system.finished(job_id)
    assert job["state"] == "SUCCEEDED", job
    [(count, status)] = system.sql("SELECT control_count, status FROM payroll_payroll WHERE id = %s", [payroll])
    references = {row[0] for row in system.sql("SELECT code FROM payroll_benefitconsumption WHERE payroll_id = %s",
                                               [payroll])}
    assert (count, status) == (120, "SENT")
    assert job["message"].startswith("Sent: all 120 payments reached their provider")
    assert job["message"].endswith("the payroll is SENT.")
    received = {ref: n for ref, n in simulated.receipts.items() if ref in references}
    assert set(received) == references and set(received.values()) == {1}  # each one, once
    assert set(system.sql("SELECT DISTINCT status FROM payroll_benefitconsumption WHERE payroll_id = %s",
                          [payroll])) == {("SENT",)}
    return job


def receipts_reach(simulated: Any, count: int) -> Callable[[], bool]:
    return lambda: len(simulated.receipts) >= count


def test_a_work_horse_killed_mid_send(system: System, enrolled: str, provider: tuple[Any, Any]) -> None:
    simulated, server = provider
    payroll, job_id = start_send(system, enrolled, server)
    wait_for(receipts_reach(simulated, 20), 60, "payments to go out", system.log)
    os.kill(system.horse(), signal.SIGKILL)
    job = assert_paid_once(system, simulated, payroll, job_id)
    assert job["failures"] == 1


def test_a_worker_killed_mid_send(system: System, enrolled: str, provider: tuple[Any, Any]) -> None:
    simulated, server = provider
    payroll, job_id = start_send(system, enrolled, server)
    wait_for(receipts_reach(simulated, 20), 60, "payments to go out", system.log)
    worker, horse = system.worker(), system.horse()
    os.kill(worker, signal.SIGKILL)
    wait_for(lambda: not alive(horse), 5, "the work horse to die with its worker")
    assert_paid_once(system, simulated, payroll, job_id)


def test_a_provider_that_dies_mid_send_is_waited_for_and_the_send_resumes_by_itself(
    system: System, enrolled: str, provider: tuple[Any, Any], mobile_money_simulator: Any
) -> None:
    simulated, server = provider
    port = server.server_address[1]
    payroll, job_id = start_send(system, enrolled, server)
    wait_for(receipts_reach(simulated, 20), 60, "payments to go out", system.log)
    server.shutdown()
    server.server_close()  # the provider is gone: connections are refused
    waiting = wait_for(lambda: (j := system.job(job_id))["state"] == "WAITING" and j, RECOVERY,
                       "the send to wait for its provider", system.log)
    reached = len(simulated.receipts)
    assert waiting["message"].startswith(f"Stopped short: {reached} of 120 payments reached their provider")
    assert "resumes by itself" in waiting["message"]
    back = mobile_money_simulator.serve(simulated, port)  # the provider answers again; nobody does anything
    try:
        assert_paid_once(system, simulated, payroll, job_id)
    finally:
        back.shutdown()
        back.server_close()


def test_sigint_mid_send_stops_paying_and_the_send_ends_after_the_restart(
    system: System, enrolled: str, provider: tuple[Any, Any]
) -> None:
    simulated, server = provider
    payroll, job_id = start_send(system, enrolled, server)
    wait_for(receipts_reach(simulated, 20), 60, "payments to go out", system.log)
    everything = system.interrupt()
    assert [pid for pid in everything if alive(pid)] == []
    stopped_at = len(simulated.receipts)
    time.sleep(2)
    assert len(simulated.receipts) == stopped_at  # nothing of it goes on paying
    system.start()
    assert_paid_once(system, simulated, payroll, job_id)
