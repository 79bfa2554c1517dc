"""Starting the embedded servers a command needs, and keeping them alive under ``coremis run``."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from devserver.postgres import EmbeddedPostgres
from devserver.redis_server import EmbeddedRedis
from devserver.servers import REPO_ROOT, EmbeddedServiceError


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
