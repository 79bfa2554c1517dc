"""``/health``: can this process reach what it needs, is anyone working the queue, is the
scheduler sweeping, and is any job stuck?

Anyone may ask; only staff with ``core.health.view`` (or a superuser), by token or session,
read the report. Others get the verdict alone: 200 ``ok`` or 503 ``degraded``, one word,
because the report names workers, queues and the approval configuration. ``?checks=a,b``
judges only those checks (a container probe asks for what its own process needs).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Count
from django.db.models.functions import Now
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from core.errors import RequestErrorCode
from core.http import error_response
from core.permissions import HEALTH_VIEW, has_permission

# A check answers (ok, detail) or (ok, detail, data): data is structured detail for the report.
CheckResult = tuple[bool, str] | tuple[bool, str, Any]

# A worker whose last heartbeat is older than this is gone (core.worker heartbeats every 15 s
# while idle and every 10 s while a job runs).
WORKER_SILENCE = timedelta(seconds=60)


def check_database() -> CheckResult:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return True, connection.vendor


def check_migrations() -> CheckResult:
    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _ in pending[:5])
        return False, f"{len(pending)} pending: {names}"
    return True, "none pending"


def check_redis() -> CheckResult:
    import django_rq

    django_rq.get_connection("default").ping()
    return True, "ping ok"


def _worker_process_exists(worker: Any) -> bool:
    """On this host the process table says at once whether a worker is still there; RQ keeps
    a killed worker's record until its key expires."""
    import os

    if worker.hostname != socket.gethostname() or not worker.pid:
        return True
    try:
        os.kill(worker.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def live_workers() -> tuple[list[Any], int]:
    """RQ workers alive by their heartbeat (and, on this host, their process), and how many
    records of dead ones RQ still holds."""
    import django_rq
    from rq import Worker

    workers = Worker.all(connection=django_rq.get_connection("default"))
    since = datetime.now(UTC) - WORKER_SILENCE
    live = [w for w in workers
            if w.last_heartbeat is not None and w.last_heartbeat >= since and _worker_process_exists(w)]
    return live, len(workers) - len(live)


def check_workers() -> CheckResult:
    import django_rq

    live, dead = live_workers()
    queued = django_rq.get_queue("default").count
    now = datetime.now(UTC)
    data = [{"name": w.name, "state": w.get_state(), "job": w.get_current_job_id(),
             "heartbeat_seconds_ago": round((now - w.last_heartbeat).total_seconds(), 1)} for w in live]
    ignored = f"; {dead} stopped worker(s) ignored" if dead else ""
    if not live:
        return False, f"no live RQ worker; background jobs wait ({queued} queued){ignored}", data
    return True, f"{len(live)} live worker(s) by heartbeat, {queued} job(s) on the queue{ignored}", data


def check_jobs() -> CheckResult:
    """Jobs not finished, and those stuck: RUNNING with a lapsed lease, or QUEUED and due but
    not picked up, for longer than the scheduler should need to deal with them."""
    from core.jobs import lapsed_lease_cutoff
    from core.models import Job

    counts = dict(Job.objects.filter(state__in=Job.ACTIVE_STATES).values_list("state").annotate(n=Count("pk")))
    lapsed = list(Job.objects.filter(state=Job.RUNNING, lease_expires_at__lt=Now())
                  .order_by("lease_expires_at").values("id", "kind", "worker_name", "lease_expires_at")[:20])
    cutoff = lapsed_lease_cutoff()
    stuck = [j for j in lapsed if j["lease_expires_at"] < cutoff]
    waiting_long = Job.objects.filter(state=Job.QUEUED, created_at__lt=cutoff, attempts=0,
                                      available_at__isnull=True).count()
    now = timezone.now()
    data = [{"id": str(j["id"]), "kind": j["kind"], "worker": j["worker_name"],
             "lease_lapsed_seconds_ago": round((now - j["lease_expires_at"]).total_seconds(), 1)} for j in lapsed]
    summary = ", ".join(f"{counts.get(s, 0)} {s.lower()}" for s in Job.ACTIVE_STATES)
    detail = summary
    if lapsed:
        detail += (f"; {len(lapsed)} with a lapsed lease (their run was lost; the scheduler retries them"
                   f"{', but has not for ' + str(len(stuck)) if stuck else ''})")
    if waiting_long:
        detail += f"; {waiting_long} queued for more than {int((now - cutoff).total_seconds())} s without starting"
    return not stuck, detail, data


def check_scheduler() -> CheckResult:
    """When the scheduler last swept the jobs, and the last run of every schedule."""
    from core.cron import SWEEP, schedules, sweep_seconds
    from core.models import ScheduleRun

    runs = {r.name: r for r in ScheduleRun.objects.select_related("last_job")}
    now = timezone.now()
    allowed = timedelta(seconds=max(60.0, 6 * sweep_seconds()))
    swept = runs.get(SWEEP)
    problems = []
    if swept is None or swept.last_run_at is None:
        problems.append("no scheduler has run: lost jobs are not retried and schedules do not fire")
        sweep_detail = "never swept"
    else:
        age = now - swept.last_run_at
        sweep_detail = f"last sweep {age.total_seconds():.0f} s ago"
        if age > allowed:
            problems.append(f"the scheduler has not swept for {age.total_seconds():.0f} s")
    data = []
    for schedule in schedules():
        run = runs.get(schedule.name)
        last = run.last_run_at if run else None
        due = schedule.next_after(last or (run.since if run else now))
        job = run.last_job if run else None
        data.append({"name": schedule.name, "cron": schedule.cron,
                     "last_run_at": last.isoformat() if last else None,
                     "last_job": str(job.pk) if job else None, "last_job_state": job.state if job else None,
                     "next_run_at": due.isoformat(), "error": run.last_error if run else ""})
        if due < now - allowed:
            problems.append(f"{schedule.name} was due at {due.isoformat()} and has not run")
    detail = "; ".join([*problems, sweep_detail, f"{len(data)} schedule(s)"])
    return not problems, detail, data


def check_approval_routes() -> CheckResult:
    from core.approvals.services import approval_config_problems

    problems = approval_config_problems()
    return (not problems, "; ".join(problems) if problems else "every approval route has its task group")


def all_checks() -> dict[str, Callable[[], CheckResult]]:
    from core.hooks import hook

    checks: dict[str, Callable[[], CheckResult]] = {
        "database": check_database,
        "migrations": check_migrations,
        "redis": check_redis,
        "worker": check_workers,
        "jobs": check_jobs,
        "scheduler": check_scheduler,
        "approvals": check_approval_routes,
    }
    for extra in hook().coremis_health_checks():
        checks.update(extra)
    return checks


def run_checks(only: list[str] | None = None) -> dict[str, dict[str, Any]]:
    checks = all_checks()
    report: dict[str, dict[str, Any]] = {}
    for name in only or list(checks):
        try:
            ok, detail, *data = checks[name]()
        except Exception as exc:  # a health endpoint reports failures, it does not raise them
            ok, detail, data = False, (str(exc).strip().splitlines() or ["unreachable"])[0], []
        report[name] = {"ok": ok, "detail": detail, **({"data": data[0]} if data else {})}
    return report


def may_read_report(user: Any) -> bool:
    return bool(getattr(user, "is_superuser", False)) or has_permission(user, HEALTH_VIEW)


def health(request: HttpRequest) -> HttpResponse:
    only = [n.strip() for n in request.GET.get("checks", "").split(",") if n.strip()] or None
    if only is not None:
        unknown = sorted(set(only) - set(all_checks()))
        if unknown:
            return error_response(400, RequestErrorCode.UNKNOWN_CHECK, f"No health check is called {', '.join(unknown)}.", "checks")
    report = run_checks(only)
    healthy = all(item["ok"] for item in report.values())
    status = 200 if healthy else 503
    verdict = "ok" if healthy else "degraded"
    if not may_read_report(request.user):
        return HttpResponse(verdict, status=status, content_type="text/plain; charset=utf-8")
    return JsonResponse({"status": verdict, "checks": report}, status=status)
