"""The benchmark harness: a registry of stages, a fresh database, timing, the results table.

A stage is a function registered with :func:`stage`; it does its work and returns a
:class:`Measurement`. Each stage is compared with a baseline stage measured in the same run
on the same machine (usually PostgreSQL doing the same work with no application around it),
so results read as "N times the floor" rather than absolute numbers that change with the
machine. Modules add stages in ``bench/stages/<module>.py``.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

from bench.generate import SCALES, Scale

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
OUT_DIR = BENCH_DIR / "out"
RESULTS = BENCH_DIR / "RESULTS.md"
BENCH_DATABASE = "coremis_bench"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/coremis"


# --- stages ----------------------------------------------------------------------------------


@dataclass
class Measurement:
    """What a stage measured: ``rows`` handled in ``seconds`` (for latency stages, the rows of
    one request and its median time)."""

    rows: int
    seconds: float
    notes: list[str] = field(default_factory=list)


@dataclass
class Context:
    """What stages share during one run."""

    scale: Scale
    repeat: int
    database_url: str
    state: dict[str, Any] = field(default_factory=dict)

    def superuser(self) -> Any:
        if "superuser" not in self.state:
            from core.models import User

            self.state["superuser"] = User.objects.create_superuser(
                "bench-admin", "bench-admin@example.org", "bench-admin-password"
            )
        return self.state["superuser"]

    def psycopg(self) -> Any:
        """A plain psycopg connection to the benchmark database, for baselines (autocommit)."""
        if "psycopg" not in self.state:
            import psycopg

            connection = psycopg.connect(self.database_url, autocommit=True)
            # Django does not prepare statements server-side; a baseline that did would not
            # be doing the same work.
            connection.prepare_threshold = None
            self.state["psycopg"] = connection
        return self.state["psycopg"]


StageFunction = Callable[[Context], Measurement]


@dataclass(frozen=True)
class Stage:
    name: str
    run: StageFunction
    baseline: str | None
    needs: tuple[str, ...]
    module: str | None
    is_baseline: bool
    description: str


STAGES: dict[str, Stage] = {}


def stage(name: str, *, baseline: str | None = None, needs: tuple[str, ...] = (),
          module: str | None = None, is_baseline: bool = False) -> Callable[[StageFunction], StageFunction]:
    """Register a stage. ``baseline`` names the stage it is compared with; ``needs`` names
    stages whose data it uses (both run first, also under ``--only``); ``module`` skips the
    stage when that module is not enabled in ``openimis.json``."""

    def register(function: StageFunction) -> StageFunction:
        if name in STAGES:
            raise ValueError(f"benchmark stage {name!r} is registered twice")
        for required in (*needs, *([baseline] if baseline else [])):
            if required not in STAGES:
                raise ValueError(f"stage {name!r} depends on {required!r}, which is not registered before it")
        STAGES[name] = Stage(name, function, baseline, needs, module, is_baseline,
                             (function.__doc__ or "").strip().split("\n")[0])
        return function

    return register


@contextmanager
def stopwatch() -> Iterator[Callable[[], float]]:
    """``with stopwatch() as elapsed: ...`` then ``elapsed()`` is the block's duration."""
    start = time.perf_counter()
    end: float | None = None
    try:
        yield lambda: (end if end is not None else time.perf_counter()) - start
    finally:
        end = time.perf_counter()


def latencies(function: Callable[[], Any], runs: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        function()
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        timings.append(time.perf_counter() - start)
    return timings


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def median(values: list[float]) -> float:
    return statistics.median(values)


def _no_statement_timeout() -> None:
    """Job bodies run here as in a worker, which no API statement timeout binds; the in-process
    GraphQL requests of earlier stages leave one on this process's connection."""
    from core.middleware import set_statement_timeout

    set_statement_timeout(0)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# --- results ---------------------------------------------------------------------------------


@dataclass
class Result:
    stage: Stage
    measurement: Measurement | None = None
    error: str | None = None
    skipped: str | None = None
    ratio: float | None = None
    rss_mib: float = 0.0

    @property
    def ok(self) -> bool:
        return self.measurement is not None


def ratio_to(result: Result, baseline: Result | None) -> float | None:
    """Time per row of the stage over time per row of its baseline (1.0 = as fast as it)."""
    m = result.measurement
    b = baseline.measurement if baseline else None
    if m is None or b is None or not m.rows or not b.rows or not b.seconds:
        return None
    return (m.seconds / m.rows) / (b.seconds / b.rows)


COLUMNS = ("stage", "rows", "seconds", "rows/s", "baseline", "ratio vs baseline", "notes")
RIGHT_ALIGNED = (False, True, True, True, False, True, False)


def table_rows(results: list[Result]) -> list[tuple[str, ...]]:
    rows = []
    for r in results:
        m = r.measurement
        if m is None:
            rows.append((r.stage.name, "", "", "", r.stage.baseline or "", "",
                         f"FAILED: {r.error}" if r.error else f"skipped: {r.skipped}"))
            continue
        rate = f"{m.rows / m.seconds:,.0f}" if m.seconds else ""
        if r.stage.is_baseline:
            baseline, ratio = "(is a baseline)", "1.0×"
        else:
            baseline = r.stage.baseline or ""
            ratio = f"{r.ratio:,.1f}×" if r.ratio is not None else "n/a"
        notes = "; ".join([*m.notes, f"peak RSS {r.rss_mib:,.0f} MiB"])
        rows.append((r.stage.name, f"{m.rows:,}", f"{m.seconds:.4f}", rate, baseline, ratio, notes))
    return rows


def render_text(results: list[Result]) -> str:
    rows = [COLUMNS, *table_rows(results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS) - 1)]
    lines = []
    for index, row in enumerate(rows):
        cells = [row[i].rjust(widths[i]) if RIGHT_ALIGNED[i] and index else row[i].ljust(widths[i])
                 for i in range(len(widths))]
        lines.append("  ".join([*cells, row[-1]]))
        if index == 0:
            lines.append("  ".join("-" * w for w in [*widths, len(COLUMNS[-1])]))
    return "\n".join(lines)


def render_markdown(results: list[Result]) -> str:
    rule = "|".join("---:" if right else "---" for right in RIGHT_ALIGNED)
    lines = ["| " + " | ".join(COLUMNS) + " |", f"|{rule}|"]
    for row in table_rows(results):
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    return "\n".join(lines)


def _command(*args: str) -> str:
    try:
        return subprocess.run(args, cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def machine() -> dict[str, str]:
    memory = ""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    commit = _command("git", "rev-parse", "--short", "HEAD") or "unknown"
    if _command("git", "status", "--porcelain", "--untracked-files=no"):
        commit += " (with uncommitted changes)"
    return {
        "cpus": str(cores),
        "cpu": cpu,
        "memory": memory or "unknown",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "commit": commit,
    }


def write_results(path: Path, results: list[Result], info: dict[str, str]) -> None:
    text = f"""# Benchmark results

Written by `make bench` (`python -m bench`); see `bench/README.md` for what each stage does.
Ratios compare time per row with the stage's baseline, measured in the same run.

- date: {info["date"]}
- machine: {info["cpus"]} CPUs ({info["cpu"]}), {info["memory"]} memory, {info["os"]}
- PostgreSQL {info["postgres"]}, Python {info["python"]}
- git commit: {info["commit"]}
- scale: {info["scale"]}; database setup and migrations: {info["setup"]}
- peak RSS of the benchmark process: {info["rss"]}

{render_markdown(results)}
"""
    path.write_text(text, encoding="utf-8")


# --- the run ---------------------------------------------------------------------------------


def prepare_database(server_url: str) -> str:
    """Create an empty ``coremis_bench`` on the server ``server_url`` names; return its URL."""
    import psycopg

    parsed = urlparse(server_url)
    maintenance = urlunparse(parsed._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {BENCH_DATABASE}")
    return urlunparse(parsed._replace(path=f"/{BENCH_DATABASE}"))


def setup_django(database_url: str) -> None:
    # Before django.setup(): settings read the environment once, at import.
    os.environ["DATABASE_URL"] = database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "core.settings"
    os.environ.setdefault("COREMIS_DEBUG", "1")
    import django

    django.setup()
    # Keep the per-request log lines (their cost is part of a request) out of the table.
    import logging

    OUT_DIR.mkdir(exist_ok=True)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(open(OUT_DIR / "bench.log", "w", encoding="utf-8"))


def selected_stages(only: list[str] | None) -> list[Stage]:
    if not only:
        return list(STAGES.values())
    wanted: set[str] = set()

    def add(name: str) -> None:
        if name in wanted:
            return
        wanted.add(name)
        for required in (*STAGES[name].needs, *([STAGES[name].baseline] if STAGES[name].baseline else [])):
            add(required)

    for pattern in only:
        matches = [n for n in STAGES if n == pattern or n.startswith(pattern + ".")]
        if not matches:
            raise SystemExit(f"no benchmark stage matches {pattern!r}; stages: {', '.join(STAGES)}")
        for name in matches:
            add(name)
    return [s for s in STAGES.values() if s.name in wanted]


def run_stages(stages: list[Stage], context: Context) -> list[Result]:
    from core.loader import get_registry

    results: dict[str, Result] = {}
    for item in stages:
        result = Result(item)
        missing = [n for n in (*item.needs, *([item.baseline] if item.baseline else []))
                   if not results[n].ok]
        if item.module and not get_registry().is_enabled(item.module):
            result.skipped = f"module '{item.module}' is not enabled"
        elif missing:
            result.skipped = f"{', '.join(missing)} did not run"
        else:
            print(f"… {item.name}", file=sys.stderr, flush=True)
            try:
                _no_statement_timeout()
                result.measurement = item.run(context)
            except Exception as exc:  # one broken stage must not hide the others' numbers
                traceback.print_exc()
                result.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        result.rss_mib = peak_rss_mib()
        results[item.name] = result
    for result in results.values():
        if result.stage.baseline:
            result.ratio = ratio_to(result, results.get(result.stage.baseline))
    return list(results.values())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="national")
    parser.add_argument("--only", action="append", metavar="STAGE",
                        help="run this stage (or every stage under this prefix) and what it needs; repeatable")
    parser.add_argument("--repeat", type=int, default=50, help="requests per latency stage (default 50)")
    parser.add_argument("--out", type=Path,
                        help=f"write the results here (default {RESULTS.relative_to(REPO_ROOT)} "
                             "for a full run; a run with --only writes nothing unless given)")
    parser.add_argument("--list", action="store_true", help="list the stages and exit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import bench.stages  # noqa: F401 - registers the stages

    args = parse_args(argv)
    if args.list:
        for item in STAGES.values():
            print(f"{item.name:28} {item.description}")
        return 0
    stages = selected_stages(args.only)
    server_url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    with stopwatch() as setup_time:
        database_url = prepare_database(server_url)
        setup_django(database_url)
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
    context = Context(scale=SCALES[args.scale], repeat=args.repeat, database_url=database_url)
    started = datetime.now(UTC)
    results = run_stages(stages, context)

    info = machine()
    info.update(
        date=started.strftime("%Y-%m-%d %H:%M UTC"),
        postgres=context.psycopg().execute("SHOW server_version").fetchone()[0],
        scale=f"{args.scale} ({context.scale.locations:,} locations)",
        setup=f"{setup_time():.1f} s",
        rss=f"{peak_rss_mib():,.0f} MiB",
    )
    print()
    print(render_text(results))
    print(f"\n{info['cpus']} CPUs, {info['memory']}, PostgreSQL {info['postgres']}, "
          f"commit {info['commit']}, peak RSS {info['rss']}")
    out = args.out or (None if args.only else RESULTS)
    if out is not None:
        write_results(out, results, info)
        print(f"Results written to {out}")
    return 0 if all(r.ok or r.skipped for r in results) else 1
