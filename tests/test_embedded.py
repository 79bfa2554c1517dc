"""Embedded PostgreSQL/Redis (devserver/) and the `coremis` command's plumbing (devserver/cli.py).

Plain tests: no Django settings needed, so they also run with ``-p no:django``. Each starts
its own servers in a private directory, never the ones under var/ that ``make test`` uses.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import psycopg
import pytest
import redis

from devserver import cli
from devserver.postgres import EmbeddedPostgres, grant_traversal
from devserver.redis_server import EmbeddedRedis
from devserver.servers import SOCKET_PATH_MAX
from devserver.services import services


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A directory the embedded_postgres account can reach when tests run as root.

    pytest's tmp_path sits under a 0700 directory; the code would open it up (and say so),
    but a test should not change permissions outside what it owns.
    """
    path = Path(tempfile.mkdtemp(prefix="coremis-test-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for server in (EmbeddedPostgres(path / "pg"), EmbeddedRedis(path / "redis")):
            if server.data_dir.exists() and server.is_running():
                server.stop()
        shutil.rmtree(path, ignore_errors=True)


def test_redis_keeps_data_across_restarts(workdir: Path) -> None:
    server = EmbeddedRedis(workdir / "redis")
    assert server.start() is True
    assert server.ping()
    assert server.url() == f"unix://{workdir}/redis/redis.sock"
    redis.Redis.from_url(server.url()).set("greeting", "muraho")
    server.stop()
    assert not server.ping()

    again = EmbeddedRedis(workdir / "redis")
    assert again.start() is True
    assert redis.Redis.from_url(again.url()).get("greeting") == b"muraho"
    again.stop()


def test_redis_is_reused_and_left_running_while_someone_else_uses_it(workdir: Path) -> None:
    first = EmbeddedRedis(workdir / "redis")
    second = EmbeddedRedis(workdir / "redis")
    assert first.start() is True
    assert second.start() is False  # answered PING: reused, not a second server on the same files

    assert first.release() is False  # started it, but `second` still holds its lease
    assert second.ping()
    assert second.release() is False  # never stops what it did not start
    assert second.ping()
    second.stop()


def test_redis_socket_moves_to_tmp_when_the_path_is_too_long(workdir: Path) -> None:
    deep = workdir / ("d" * 60) / ("e" * 60)
    server = EmbeddedRedis(deep / "redis")
    assert server.start() is True
    try:
        assert len(str(deep / "redis" / "redis.sock")) > SOCKET_PATH_MAX
        assert server.socket_path.parent.parent == Path("/tmp")
        assert stat.S_IMODE(server.socket_path.parent.stat().st_mode) == 0o700
        assert redis.Redis.from_url(server.url()).ping()
    finally:
        server.stop()
        shutil.rmtree(server.socket_path.parent, ignore_errors=True)


def test_postgres_keeps_data_across_restarts(workdir: Path) -> None:
    server = EmbeddedPostgres(workdir / "pg")
    assert server.start("coremis") is True
    url = server.url("coremis")
    assert url.startswith("postgresql://postgres@/coremis?host=/")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE household (name text)")
        conn.execute("INSERT INTO household VALUES ('Ndayishimiye')")
    server.stop()
    assert not server.is_running()

    again = EmbeddedPostgres(workdir / "pg")
    assert again.start("coremis") is True  # a real restart, on the same files: no new initdb
    with psycopg.connect(again.url("coremis")) as conn:
        assert conn.execute("SELECT name FROM household").fetchall() == [("Ndayishimiye",)]
    assert again.start("coremis") is False  # already running: reused
    again.stop()


def test_postgres_url_splits_the_way_settings_reads_it(workdir: Path) -> None:
    deep = workdir / ("p" * 60) / ("q" * 60)  # socket falls back to /tmp
    server = EmbeddedPostgres(deep / "pg")
    server.start("coremis")
    parsed = urlparse(server.url("coremis"))
    host = parse_qs(parsed.query)["host"][-1]
    try:
        assert (parsed.scheme, parsed.username, parsed.path, parsed.port) == (
            "postgresql", "postgres", "/coremis", None)
        assert host.startswith("/tmp/coremis-pg-")
        # What Django's backend hands psycopg once settings has split the URL.
        with psycopg.connect(host=host, dbname="coremis", user="postgres") as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.stop()
        shutil.rmtree(host, ignore_errors=True)


def test_services_starts_nothing_when_the_urls_are_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://app@db.example.org/coremis")
    monkeypatch.setenv("REDIS_URL", "redis://cache.example.org:6379/0")
    with services(tmp_path) as env:
        assert env == {}
    assert not (tmp_path / "var").exists()


def test_services_starts_both_and_stops_what_it_started(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    with services(workdir) as env:
        assert set(env) == {"DATABASE_URL", "REDIS_URL", "COREMIS_EMBEDDED"}
        with psycopg.connect(env["DATABASE_URL"]) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("coremis",)
        assert redis.Redis.from_url(env["REDIS_URL"]).ping()
    assert not EmbeddedPostgres(workdir / "var" / "postgres").is_running()
    assert not EmbeddedRedis(workdir / "var" / "redis").is_running()


def test_traversal_is_granted_without_read_access(workdir: Path) -> None:
    private = workdir / "home" / "someone"
    private.mkdir(parents=True)
    (workdir / "home").chmod(0o700)
    private.chmod(0o700)
    stranger = pwd.struct_passwd(("stranger", "x", 54321, 54321, "", "/", "/bin/false"))

    changed = grant_traversal(private, stranger)

    assert changed == [workdir / "home", private]
    for directory in changed:
        mode = stat.S_IMODE(directory.stat().st_mode)
        assert mode & stat.S_IXOTH and not mode & stat.S_IROTH
    assert grant_traversal(private, stranger) == []


def test_services_command_passes_the_urls_and_the_exit_status(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://app@db.example.org/coremis")
    monkeypatch.setenv("REDIS_URL", "redis://cache.example.org:6379/0")
    script = (
        "import os, sys; "
        "sys.exit(7 if os.environ['DATABASE_URL'].endswith('/coremis') "
        "and os.environ['PYTHONUNBUFFERED'] == '1' else 1)"
    )
    assert cli.main(["services", "--", sys.executable, "-c", script]) == 7
    assert cli.main(["services", "--", sys.executable, "-c", "import os; os.kill(os.getpid(), 15)"]) == 143
    assert cli.main(["services"]) == 2


def test_a_bad_module_configuration_exits_2_before_starting_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    loader = pytest.importorskip("core.loader")
    monkeypatch.setattr(loader, "_registry", None)  # another test may have loaded the real one
    monkeypatch.setenv("COREMIS_MODULES_FILE", str(tmp_path / "missing.json"))
    monkeypatch.setattr(cli, "services", None)  # must not be reached

    assert cli.main(["run"]) == 2
    err = capsys.readouterr().err
    assert "coremis cannot start" in err and "Traceback" not in err
    assert os.environ.get("COREMIS_MODULES_FILE")  # unchanged by the command
