"""``coremis run``'s supervisor (devserver/supervisor.py): children that exit are restarted with back-off
and reported, embedded servers that stop are restarted, and stopping takes the workers down
first (warm), the web server last, and leaves no process behind.

Plain tests with real processes: small Python scripts stand in for the worker and the web
server, so each case takes a second or two.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import psycopg
import pytest
import redis

from devserver.postgres import EmbeddedPostgres
from devserver.redis_server import EmbeddedRedis
from devserver.services import embedded_services
from devserver.supervisor import Program, Supervisor, descendants


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def wait_until(condition: object, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    pytest.fail(f"waited {seconds} s")


@pytest.fixture
def supervisor() -> Iterator[Supervisor]:
    made = Supervisor({**os.environ, "PYTHONUNBUFFERED": "1"}, stop_timeout=5)
    made.raise_on_signal = False
    yield made
    made.shutdown(timeout=1)


def keep_running_in_background(supervisor: Supervisor) -> threading.Thread:
    thread = threading.Thread(target=supervisor.keep_running, kwargs={"poll": 0.05}, daemon=True)
    thread.start()
    return thread


def stop(supervisor: Supervisor, thread: threading.Thread) -> None:
    supervisor.signals.append(signal.SIGTERM)
    thread.join(timeout=5)


def test_a_child_that_dies_is_restarted_and_reported(supervisor: Supervisor, capsys: pytest.CaptureFixture[str]) -> None:
    worker = Program("worker (rqworker)", [sys.executable, "-c", "import time; time.sleep(60)"])
    supervisor.start(worker)
    thread = keep_running_in_background(supervisor)
    first = worker.process.pid
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: worker.process is not None and worker.process.pid != first and worker.running)
    stop(supervisor, thread)
    err = capsys.readouterr().err
    assert "coremis: the worker (rqworker) exited unexpectedly (exit status 137); restarting it in 0.5 s" in err
    assert "coremis: restarted the worker (rqworker) (restart 1)" in err


def test_a_child_that_keeps_crashing_is_restarted_with_growing_delays(
    supervisor: Supervisor, capsys: pytest.CaptureFixture[str]
) -> None:
    scheduler = Program("scheduler", [sys.executable, "-c", "raise SystemExit(3)"])
    supervisor.start(scheduler)
    thread = keep_running_in_background(supervisor)
    wait_until(lambda: scheduler.restarts >= 2, seconds=20)
    stop(supervisor, thread)
    err = capsys.readouterr().err
    assert "the scheduler exited unexpectedly (exit status 3); restarting it in 0.5 s" in err
    assert "the scheduler exited unexpectedly (exit status 3); restarting it in 2 s" in err


STOPPING_WORKER = """
import signal, subprocess, sys, time
# A "work horse" running a job of argv[2] seconds, in its own process group (as rq's), which a
# SIGTERM to the worker's group would not reach.
horse = subprocess.Popen([sys.executable, "-c", "import time, sys; time.sleep(float(sys.argv[1]))", sys.argv[2]],
                         process_group=0)
open(sys.argv[1] + ".horse", "w").write(str(horse.pid))
def warm(signum, frame):  # rq's warm shutdown: the job in hand is finished first
    open(sys.argv[1], "w").write(str(time.time()))
    horse.wait()
    sys.exit(0)
signal.signal(signal.SIGTERM, warm)
time.sleep(60)
"""

WEB = """
import signal, sys, time
def stop(signum, frame):
    open(sys.argv[1], "w").write(str(time.time()))
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
time.sleep(60)
"""


def test_stopping_takes_workers_down_warm_first_the_web_server_last_and_leaves_nothing(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    worker_stopped, web_stopped = tmp_path / "worker", tmp_path / "web"
    supervisor.start(Program("worker", [sys.executable, "-c", STOPPING_WORKER, str(worker_stopped), "1"]))
    supervisor.start(Program("web server", [sys.executable, "-c", WEB, str(web_stopped)], last=True))
    wait_until(lambda: (tmp_path / "worker.horse").exists())
    horse = int((tmp_path / "worker.horse").read_text())
    pids = [p.process.pid for p in supervisor.programs] + [horse]

    started = time.time()
    supervisor.shutdown()
    # the worker finished its job (about 1 s) before the web server was asked to stop
    assert float(web_stopped.read_text()) >= float(worker_stopped.read_text()) + 0.5
    assert time.time() - started < 5
    assert not any(alive(pid) for pid in pids)  # the horse too, in its own group


def test_a_worker_that_does_not_stop_in_time_is_killed_with_its_horse(supervisor: Supervisor, tmp_path: Path) -> None:
    supervisor.stop_timeout = 1
    supervisor.start(Program("worker", [sys.executable, "-c", STOPPING_WORKER, str(tmp_path / "w"), "30"]))
    wait_until(lambda: (tmp_path / "w.horse").exists())
    horse = int((tmp_path / "w.horse").read_text())
    worker = supervisor.programs[0].process.pid
    started = time.monotonic()
    supervisor.shutdown()
    assert time.monotonic() - started < 5
    assert not alive(worker) and not alive(horse)


def test_descendants_are_found_across_process_groups() -> None:
    import subprocess

    parent = subprocess.Popen([sys.executable, "-c", STOPPING_WORKER, "/dev/null", "0"])
    try:
        wait_until(lambda: len(descendants(parent.pid)) == 1)
    finally:
        for pid in [*descendants(parent.pid), parent.pid]:
            os.kill(pid, signal.SIGKILL)
        parent.wait()


# --- embedded servers --------------------------------------------------------------------------


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="coremis-test-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for server in (EmbeddedPostgres(path / "var" / "postgres"), EmbeddedRedis(path / "var" / "redis")):
            if server.data_dir.exists() and server.is_running():
                server.stop()
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
def test_embedded_servers_killed_under_us_are_restarted_with_their_data(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    with embedded_services(workdir) as services:
        with psycopg.connect(services.env["DATABASE_URL"], autocommit=True) as conn:
            conn.execute("CREATE TABLE household (name text)")
            conn.execute("INSERT INTO household VALUES ('Ndayishimiye')")
        queue = redis.Redis.from_url(services.env["REDIS_URL"])
        queue.set("greeting", "muraho")
        time.sleep(1.2)  # appendfsync everysec

        postmaster = EmbeddedPostgres(workdir / "var" / "postgres").postmaster()
        assert postmaster is not None
        redis_pid = int((workdir / "var" / "redis" / "redis.pid").read_text())
        os.kill(postmaster.pid, signal.SIGKILL)
        os.kill(redis_pid, signal.SIGKILL)

        messages: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            messages += services.revive()
            if sum("restarted it" in m for m in messages) == 2:
                break
            time.sleep(0.2)
        assert any(m.startswith("the embedded Redis") and "restarted it" in m for m in messages), messages
        assert any(m.startswith("the embedded PostgreSQL") and "restarted it" in m for m in messages), messages
        # the same URLs work again: clients reconnect by themselves
        with psycopg.connect(services.env["DATABASE_URL"]) as conn:
            assert conn.execute("SELECT name FROM household").fetchall() == [("Ndayishimiye",)]
        assert redis.Redis.from_url(services.env["REDIS_URL"]).get("greeting") == b"muraho"
        assert services.revive() == []


@pytest.mark.slow
def test_a_postmaster_killed_while_a_backend_works_comes_back_without_that_backend(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A backend inside a long statement does not notice its postmaster died, and keeps the
    shared memory attached; the restart ends it (its transaction rolled back) instead of
    failing "pre-existing shared memory block is still in use" until the statement ends."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # this case needs PostgreSQL only
    with embedded_services(workdir) as services:
        url = services.env["DATABASE_URL"]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE household (name text)")
            conn.execute("INSERT INTO household VALUES ('Ndayishimiye')")

        def busy() -> None:
            with suppress(psycopg.Error), psycopg.connect(url) as conn:
                conn.execute("INSERT INTO household VALUES ('uncommitted')")
                conn.execute("SELECT count(*) FROM generate_series(1, 10000000000)")  # minutes

        worker = threading.Thread(target=busy, daemon=True)
        worker.start()
        with psycopg.connect(url, autocommit=True) as conn:
            deadline = time.monotonic() + 10
            while not conn.execute("SELECT pid FROM pg_stat_activity WHERE query LIKE '%generate_series%' "
                                   "AND pid <> pg_backend_pid()").fetchall():
                assert time.monotonic() < deadline, "the busy statement did not start"
                time.sleep(0.05)
            [(backend,)] = conn.execute("SELECT pid FROM pg_stat_activity WHERE query LIKE '%generate_series%' "
                                        "AND pid <> pg_backend_pid()").fetchall()
        postmaster = EmbeddedPostgres(workdir / "var" / "postgres").postmaster()
        assert postmaster is not None
        os.kill(postmaster.pid, signal.SIGKILL)

        messages: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any("restarted it" in m for m in messages):
            messages += services.revive()
            time.sleep(0.2)
        assert [m for m in messages if m.startswith("the embedded PostgreSQL")] == [
            m for m in messages if "restarted it" in m], messages  # at the first try
        assert f"still run ({backend})" in capsys.readouterr().err
        assert not Path(f"/proc/{backend}").exists() or "Z" in Path(f"/proc/{backend}/stat").read_text().split()[2]
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT name FROM household").fetchall() == [("Ndayishimiye",)]
        worker.join(timeout=10)
