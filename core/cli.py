"""The ``coremis`` command.

``coremis run``                 the whole system on one machine (``make run``), supervised: a
                                worker, scheduler or web server that exits is restarted with
                                back-off, and so are embedded servers that stop
``coremis services -- CMD...``  CMD with DATABASE_URL/REDIS_URL pointing at embedded servers
``coremis worker``              an RQ worker, for operators

Django is never imported here: every Django process is a child (``manage.py``, gunicorn), so
``coremis services`` works before settings can be loaded, and a broken module configuration
is reported the same way by every command.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from core.embedded import EmbeddedServiceError, EmbeddedServices, embedded_services, services

ROOT = Path(__file__).resolve().parent.parent  # the checkout: manage.py and var/ live here
MANAGE = ROOT / "manage.py"
RQWORKER = ["rqworker", "default"]

# How long children get to finish after SIGTERM. A worker finishes the job in hand first
# (rq's warm shutdown), so this is generous; a second Ctrl-C cuts it short.
STOP_TIMEOUT = 30.0


class Interrupted(Exception):
    """SIGINT/SIGTERM arrived while no child could receive it (e.g. during initdb)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


# ---------------------------------------------------------------------------------------------
# Environment shared by every command


def check_module_configuration() -> None:
    """Fail before starting any server if openimis.json/modules_config.json cannot work.

    Otherwise the same error would surface as a failed ``migrate`` after the databases
    started. Imported lazily: the loader may not be importable in a half-built checkout.
    """
    try:
        from core.loader import get_registry
    except ImportError:
        return
    get_registry()


def is_configuration_error(exc: BaseException) -> bool:
    try:
        from core.errors import ModuleConfigurationError
    except ImportError:
        return False
    return isinstance(exc, ModuleConfigurationError)


def demo_secret_key(var_dir: Path | None = None) -> str:
    """A secret key kept in var/, for the embedded demo only.

    settings.py falls back to a published development key when the demo runs without
    COREMIS_SECRET_KEY; a per-checkout random key keeps tokens unforgeable even when
    ``--host 0.0.0.0`` puts the demo on a network, and survives restarts so logins do too.
    """
    path = (var_dir or ROOT / "var") / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key


def child_environment(service_env: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **service_env, "PYTHONUNBUFFERED": "1"}


def exit_status(returncode: int) -> int:
    """A child's status as a shell reports it: killed by signal N becomes 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def signal_came_from_terminal() -> bool:
    """Whether a SIGINT was most likely Ctrl-C, which the terminal sends to its whole
    foreground process group: our foreground child then already has it."""
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return False
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(fd)


@contextmanager
def handling_signals(handler: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# ---------------------------------------------------------------------------------------------
# One foreground command: `services` and `worker`


class SignalRelay:
    """Passes SIGINT/SIGTERM to one foreground child, so that it, not we, decides how to stop
    (pytest prints its summary, rq finishes the job in hand)."""

    def __init__(self) -> None:
        self.child: subprocess.Popen[bytes] | None = None
        self.child_done = False

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.child_done:
            return  # the servers are being stopped; let that finish cleanly
        if self.child is None:
            raise Interrupted(signum)
        if signum == signal.SIGINT and signal_came_from_terminal():
            return  # the child got this very Ctrl-C; a second one would abort its cleanup
        with suppress(ProcessLookupError):
            self.child.send_signal(signum)

    def run(self, command: Sequence[str], env: dict[str, str]) -> int:
        try:
            self.child = subprocess.Popen(list(command), env=env)
        except FileNotFoundError:
            print(f"coremis: command not found: {command[0]}", file=sys.stderr)
            return 127
        except PermissionError:
            print(f"coremis: not executable: {command[0]}", file=sys.stderr)
            return 126
        returncode = self.child.wait()
        self.child_done = True
        return exit_status(returncode)


def run_foreground(command: Sequence[str], *, demo: bool = False) -> int:
    relay = SignalRelay()
    with handling_signals(relay.handle), services(ROOT) as service_env:
        if demo and service_env.get("COREMIS_EMBEDDED") and not os.environ.get("COREMIS_SECRET_KEY"):
            service_env["COREMIS_SECRET_KEY"] = demo_secret_key()
        return relay.run(command, child_environment(service_env))


def cmd_services(args: argparse.Namespace) -> int:
    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        print("coremis services: give the command to run after --, e.g. "
              "coremis services -- pytest", file=sys.stderr)
        return 2
    return run_foreground(command)


def cmd_worker(args: argparse.Namespace) -> int:
    check_module_configuration()
    return run_foreground([sys.executable, str(MANAGE), *RQWORKER], demo=True)


# ---------------------------------------------------------------------------------------------
# The whole system: `run`


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


def display_url(host: str, port: int) -> tuple[str, str]:
    """The address to probe and the base URL to print for a --host value."""
    probe = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    shown = f"[{probe}]" if ":" in probe else probe
    return probe, f"http://{shown}:{port}"


def banner(base: str, host: str, service_env: dict[str, str], var_dir: Path) -> str:
    lines = [
        "",
        "coremis is running. Ctrl-C stops everything.",
        f"  GraphiQL       {base}/graphql",
        f"  Admin          {base}/admin/",
        f"  Job dashboard  {base}/django-rq/",
        f"  Health         {base}/health",
    ]
    if service_env.get("COREMIS_EMBEDDED"):
        lines.append(f"  Data           {var_dir} (embedded PostgreSQL and Redis)")
    if host in {"0.0.0.0", "::", ""} and not os.environ.get("COREMIS_ALLOWED_HOSTS"):
        lines.append("  Other machines: set COREMIS_ALLOWED_HOSTS to the name they use for this one.")
    return "\n".join(lines) + "\n"


def cmd_run(args: argparse.Namespace) -> int:
    check_module_configuration()
    python = [sys.executable, str(MANAGE)]
    var_dir = Path(args.var_dir).absolute() if args.var_dir else ROOT / "var"
    supervisor = Supervisor({}, stop_timeout=args.stop_timeout)
    with handling_signals(supervisor.handle), embedded_services(ROOT, var_dir) as services:
        service_env = services.env
        supervisor.services = services
        try:
            if service_env.get("COREMIS_EMBEDDED") and not os.environ.get("COREMIS_SECRET_KEY"):
                service_env["COREMIS_SECRET_KEY"] = demo_secret_key(var_dir)
            if args.var_dir and not os.environ.get("COREMIS_MEDIA_ROOT"):
                service_env["COREMIS_MEDIA_ROOT"] = str(var_dir / "media")
            if args.host not in {"127.0.0.1", "localhost", "0.0.0.0", "::", ""} and not (
                os.environ.get("COREMIS_ALLOWED_HOSTS")
            ):
                # Django rejects Host headers it does not know; the one we serve on is known.
                service_env["COREMIS_ALLOWED_HOSTS"] = f"127.0.0.1,localhost,{args.host}"
            supervisor.env = child_environment(service_env)
            return supervise(supervisor, args, python, service_env, var_dir)
        finally:
            # Before the servers stop: the processes using them go first.
            supervisor.shutdown()


def supervise(supervisor: Supervisor, args: argparse.Namespace, python: list[str],
              service_env: dict[str, str], var_dir: Path) -> int:
    for name, argv in (
        ("migrate", [*python, "migrate", "--noinput"]),
        ("seed_demo", [*python, "seed_demo"]),
    ):
        status = supervisor.run_step(name, argv)
        if status is None:
            print(f"\ncoremis: stopping during {name}", file=sys.stderr)
            return 0
        if status != 0:
            print(f"coremis: {name} failed (exit status {status}); nothing else was started",
                  file=sys.stderr)
            return status
    supervisor.children = []  # the setup steps are done; only long-running children from here

    workers = max(1, args.job_workers)
    for n in range(1, workers + 1):
        supervisor.start(Program(f"worker{f' {n}' if workers > 1 else ''} (rqworker)", [*python, *RQWORKER]))
    supervisor.start(Program("scheduler", [*python, "scheduler"]))
    supervisor.start(Program("web server (gunicorn)", [
        sys.executable, "-m", "gunicorn", "core.wsgi:application",
        "--bind", f"[{args.host}]:{args.port}" if ":" in args.host else f"{args.host}:{args.port}",
        "--workers", str(args.workers), "--access-logfile", "-",
    ], last=True))
    probe, base = display_url(args.host, args.port)
    failed = supervisor.wait_for_port(probe, args.port)
    if failed is not None:
        status = exit_status(failed.process.returncode or 0) if failed.process else 1
        print(f"coremis: the {failed.name} exited while starting (exit status {status}); "
              "stopping everything", file=sys.stderr)
        return 1
    if not supervisor.stopping:
        print(banner(base, args.host, service_env, var_dir), flush=True)
    supervisor.keep_running()
    print("\ncoremis: stopping", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coremis",
        description="Run coremis. Without DATABASE_URL / REDIS_URL, embedded PostgreSQL and "
        "Redis are started with their data under var/.",
    )
    commands = parser.add_subparsers(dest="command_name", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="migrate, seed demo data, run and supervise workers, the scheduler and the web server")
    run.add_argument("--host", default="127.0.0.1", help="address to serve on (default: %(default)s)")
    run.add_argument("--port", type=int, default=8000, help="port to serve on (default: %(default)s)")
    run.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (default: %(default)s)")
    run.add_argument("--job-workers", type=int, default=1,
                     help="RQ workers running background jobs (default: %(default)s)")
    run.add_argument("--var-dir", default=None,
                     help="where the embedded servers, uploads and the demo key live (default: ./var)")
    run.add_argument("--stop-timeout", type=float, default=STOP_TIMEOUT,
                     help="seconds a worker may take to finish its job when stopping (default: %(default)s)")
    run.set_defaults(handler=cmd_run)

    svc = commands.add_parser(
        "services", help="run a command with DATABASE_URL and REDIS_URL set",
        usage="coremis services -- COMMAND [ARGS...]",
    )
    svc.add_argument("command", nargs=argparse.REMAINDER, help="the command and its arguments")
    svc.set_defaults(handler=cmd_services)

    worker = commands.add_parser("worker", help="run an RQ worker (queue 'default')")
    worker.set_defaults(handler=cmd_worker)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except Interrupted as exc:
        return 128 + exc.signum
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    except EmbeddedServiceError as exc:
        print(f"coremis: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        if is_configuration_error(exc):
            print(exc, file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
