"""``/health``: can this process reach what it needs, and is anyone working the queue?"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse


def check_database() -> tuple[bool, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return True, connection.vendor


def check_migrations() -> tuple[bool, str]:
    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _ in pending[:5])
        return False, f"{len(pending)} pending: {names}"
    return True, "none pending"


def check_redis() -> tuple[bool, str]:
    import django_rq

    django_rq.get_connection("default").ping()
    return True, "ping ok"


def check_workers() -> tuple[bool, str]:
    import django_rq
    from rq import Worker

    workers = Worker.all(connection=django_rq.get_connection("default"))
    if not workers:
        return False, "no RQ worker is running; background jobs will wait"
    queue = django_rq.get_queue("default")
    return True, f"{len(workers)} worker(s), {queue.count} job(s) queued"


def check_approval_routes() -> tuple[bool, str]:
    from core.approvals.services import approval_config_problems

    problems = approval_config_problems()
    return (not problems, "; ".join(problems) if problems else "every approval route has its task group")


def run_checks() -> dict[str, dict[str, Any]]:
    from core.hooks import hook

    checks: dict[str, Callable[[], tuple[bool, str]]] = {
        "database": check_database,
        "migrations": check_migrations,
        "redis": check_redis,
        "worker": check_workers,
        "approvals": check_approval_routes,
    }
    for extra in hook().coremis_health_checks():
        checks.update(extra)
    report: dict[str, dict[str, Any]] = {}
    for name, check in checks.items():
        try:
            ok, detail = check()
        except Exception as exc:  # a health endpoint reports failures, it does not raise them
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        report[name] = {"ok": ok, "detail": detail}
    return report


def health(request: HttpRequest) -> JsonResponse:
    report = run_checks()
    healthy = all(item["ok"] for item in report.values())
    return JsonResponse({"status": "ok" if healthy else "degraded", "checks": report},
                        status=200 if healthy else 503)
