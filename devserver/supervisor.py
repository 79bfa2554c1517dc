"""``coremis run``'s supervisor: the programs it keeps running (worker, scheduler, web
server), restarted with back-off when they exit, and stopped with everything they started."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from devserver.services import EmbeddedServices

ROOT = Path(__file__).resolve().parent.parent  # the checkout: manage.py and var/ live here

# How long children get to finish after SIGTERM. A worker finishes the job in hand first
# (rq's warm shutdown), so this is generous; a second Ctrl-C cuts it short.
STOP_TIMEOUT = 30.0



class Interrupted(Exception):
    """SIGINT/SIGTERM arrived while no child could receive it (e.g. during initdb)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum



def exit_status(returncode: int) -> int:
    """A child's status as a shell reports it: killed by signal N becomes 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]


@dataclass
class Program:
    """A long-running child ``coremis run`` keeps alive: restarted with back-off when it exits."""

    name: str
    argv: list[str]
    last: bool = False  # stopped after the others (the web server: providers' callbacks keep landing)
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    quick_exits: int = 0
    restarts: int = 0
    restart_at: float | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn making the kernel SIGTERM a child if coremis itself is killed (-9, OOM).

    Without it a stray gunicorn keeps the port bound and the next ``make run`` fails.
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before fork, not in the child
    pr_set_pdeathsig = 1
    parent = os.getpid()

    def setup() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return setup


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children first), from /proc; [] where there is none."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*/stat") if Path("/proc/self").exists() else []:
        try:
            fields = entry.read_text()
        except OSError:
            continue
        after = fields[fields.rindex(")") + 2:].split()
        children.setdefault(int(after[1]), []).append(int(entry.parent.name))
    found: list[int] = []
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def kill_tree(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL a child, everything below it (an RQ work horse sits in its own process group)
    and what is left of its process group (gunicorn's workers)."""
    tree = [*descendants(process.pid), process.pid]
    for pid in tree:
        with suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    signal_group(process, signal.SIGKILL)
    # SIGKILL is delivered asynchronously: a work horse (not our child, so not reaped by
    # wait()) may still be committing for a moment. The servers stop after this returns, so
    # wait until every killed process has really gone.
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and any(still_running(pid) for pid in tree if pid != process.pid):
        time.sleep(0.02)


def still_running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (a zombie no longer runs code)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


# A child that ran this long before exiting was working: its next restart is immediate.
STABLE_SECONDS = 60.0
MAX_BACKOFF = 60.0


class Supervisor:
    """Starts the system's processes, keeps them (and the embedded servers) running, and takes
    them all down together, in order.

    Children get their own process groups, so a Ctrl-C reaches only coremis, which then sends
    each child exactly one SIGTERM. Letting the terminal signal them as well would make that
    two signals, and a second signal turns rq's warm shutdown into a cold one that kills the
    job in progress.
    """

    def __init__(self, env: dict[str, str], services: EmbeddedServices | None = None,
                 stop_timeout: float = STOP_TIMEOUT) -> None:
        self.env = env
        self.services = services
        self.stop_timeout = stop_timeout
        self.children: list[Child] = []  # setup steps
        self.programs: list[Program] = []
        self.signals: list[int] = []
        self.raise_on_signal = True  # until children exist to be stopped in an orderly way
        self._setup = die_with_parent()

    def handle(self, signum: int, frame: FrameType | None) -> None:
        self.signals.append(signum)
        if self.raise_on_signal:
            raise Interrupted(signum)

    @property
    def stopping(self) -> bool:
        return bool(self.signals)

    def say(self, message: str) -> None:
        print(f"coremis: {message}", file=sys.stderr, flush=True)

    def _popen(self, argv: list[str]) -> subprocess.Popen[bytes]:
        self.raise_on_signal = False
        return subprocess.Popen(
            argv, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, process_group=0,
            preexec_fn=self._setup,
        )

    def spawn(self, name: str, argv: list[str]) -> Child:
        child = Child(name, self._popen(argv))
        self.children.append(child)
        return child

    def run_step(self, name: str, argv: list[str]) -> int | None:
        """Run one setup step to completion; its exit status, or None if we were stopped."""
        child = self.spawn(name, argv)
        while True:
            with suppress(subprocess.TimeoutExpired):
                return exit_status(child.process.wait(timeout=0.1))
            if self.stopping:
                return None

    def start(self, program: Program) -> None:
        program.process = self._popen(program.argv)
        program.started = time.monotonic()
        program.restart_at = None
        if program not in self.programs:
            self.programs.append(program)

    def wait_for_port(self, host: str, port: int, timeout: float = 60.0) -> Program | None:
        """Wait until the web server accepts connections; a program that exits meanwhile is
        returned (a port already taken, a broken configuration: restarting cannot help)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stopping:
            for program in self.programs:
                if not program.running:
                    return program
            with suppress(OSError), socket.create_connection((host, port), timeout=0.5):
                return None
            time.sleep(0.1)
        return None

    def keep_running(self, poll: float = 0.2, services_every: float = 1.0) -> None:
        """Until a signal asks us to stop: restart programs that exit, with back-off, and
        embedded servers that stop."""
        next_services = 0.0
        while not self.stopping:
            now = time.monotonic()
            for program in self.programs:
                self._restart_if_needed(program, now)
            if self.services is not None and now >= next_services:
                for message in self.services.revive():
                    self.say(message)
                next_services = time.monotonic() + services_every
            time.sleep(poll)

    def _restart_if_needed(self, program: Program, now: float) -> None:
        if program.process is not None and program.process.poll() is not None:
            status = exit_status(program.process.returncode or 0)
            # What it left behind (an orphaned work horse, gunicorn's workers) goes with it.
            kill_tree(program.process)
            program.quick_exits = 1 if now - program.started >= STABLE_SECONDS else program.quick_exits + 1
            # At once the first time; then 2, 4, 8… s while it keeps exiting soon after starting.
            delay = 0.5 if program.quick_exits == 1 else min(MAX_BACKOFF, 2.0 ** (program.quick_exits - 1))
            program.process = None
            program.restart_at = now + delay
            self.say(f"the {program.name} exited unexpectedly (exit status {status}); "
                     f"restarting it in {delay:g} s")
        if program.process is None and program.restart_at is not None and now >= program.restart_at:
            self.start(program)
            program.restarts += 1
            self.say(f"restarted the {program.name} (restart {program.restarts})")

    def _stop(self, programs: list[Program], timeout: float, hint: str) -> None:
        for program in programs:
            if program.running:
                assert program.process is not None
                program.process.terminate()
        alive = [p for p in programs if p.running]
        signals_seen = len(self.signals)
        started = time.monotonic()
        told = False
        while alive and time.monotonic() - started < timeout and len(self.signals) <= signals_seen:
            time.sleep(0.1)
            alive = [p for p in alive if p.running]
            if alive and not told and time.monotonic() - started > 3:
                names = ", ".join(p.name for p in alive)
                self.say(f"waiting for the {names} to finish{hint} (Ctrl-C again to stop now)")
                told = True
        for program in programs:
            if program.process is not None:
                kill_tree(program.process)
                program.process.wait()
                program.process = None

    def shutdown(self, timeout: float | None = None) -> None:
        """Workers and the scheduler first (a worker finishes the job in hand: rq's warm
        shutdown), then the web server, then whatever is left of any of them. A job cut short
        by the timeout or a second Ctrl-C has its lease lapse and runs again at the next start."""
        self.raise_on_signal = False
        timeout = self.stop_timeout if timeout is None else timeout
        first = [p for p in self.programs if not p.last]
        self._stop(first, timeout, "; a job cut short runs again at the next start")
        self._stop([p for p in self.programs if p.last], min(timeout, 15.0), "")
        for child in self.children:
            if child.process.poll() is None:
                child.process.terminate()
                with suppress(subprocess.TimeoutExpired):
                    child.process.wait(timeout=timeout)
            kill_tree(child.process)
            child.process.wait()
        self.children = []
        self.programs = []


def signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    # The group's id is the child's pid and the group outlives the child while members remain,
    # so this also reaches what a dead child left behind (an empty group is simply ESRCH).
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


