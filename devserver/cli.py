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
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType

from devserver.services import EmbeddedServiceError, embedded_services, services
from devserver.supervisor import STOP_TIMEOUT, Interrupted, Program, Supervisor, exit_status

ROOT = Path(__file__).resolve().parent.parent  # the checkout: manage.py and var/ live here
MANAGE = ROOT / "manage.py"
# rqworker sets RQ's log level from its verbosity (0: WARNING, 1: INFO, 2: DEBUG), over
# settings.LOGGING; COREMIS_RQ_LOG_LEVEL chooses it (WARNING: coremis.jobs logs each job).
RQ_VERBOSITY = {"WARNING": "0", "INFO": "1", "DEBUG": "2"}
RQWORKER = ["rqworker", "default", "--verbosity",
            RQ_VERBOSITY.get(os.environ.get("COREMIS_RQ_LOG_LEVEL", "WARNING").upper(), "0")]

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
            # WhiteNoise warns about a missing static root; the demo serves files from the apps.
            static_root = Path(os.environ.get("COREMIS_STATIC_ROOT") or var_dir / "static")
            static_root.mkdir(parents=True, exist_ok=True)
            service_env.setdefault("COREMIS_STATIC_ROOT", str(static_root))
            if args.host not in {"127.0.0.1", "localhost", "0.0.0.0", "::", ""} and not (
                os.environ.get("COREMIS_ALLOWED_HOSTS")
            ):
                # Django rejects Host headers it does not know; the one we serve on is known.
                service_env["COREMIS_ALLOWED_HOSTS"] = f"127.0.0.1,localhost,{args.host}"
            supervisor.env = child_environment(service_env)
            status = supervise(supervisor, args, python, service_env, var_dir)
        finally:
            # Before the servers stop: the processes using them go first.
            supervisor.shutdown()
    # Otherwise the last line would be "waiting for ... to finish", and nothing says it did.
    print(f"coremis: stopped; the data stays in {var_dir}", file=sys.stderr)
    return status


def supervise(supervisor: Supervisor, args: argparse.Namespace, python: list[str],
              service_env: dict[str, str], var_dir: Path) -> int:
    for name, doing, argv in (
        # Django lists every migration it applies: dozens of lines a user has nothing to do with.
        ("migrate", "migrating the database", [*python, "migrate", "--noinput", "--verbosity", "0"]),
        ("seed_demo", "demo data", [*python, "seed_demo"]),
    ):
        supervisor.say(f"{doing}...")
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
        "--workers", str(args.workers),
        # No access log: the JSON request log (core/middleware.py) records each request once.
        # No control socket: it would sit in ~/.gunicorn, and nothing here uses it.
        "--no-control-socket",
        # Its start-up lines would follow the banner; where it listens is in the banner.
        "--log-level", "warning",
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
