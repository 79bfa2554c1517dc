"""Background jobs of the social protection module."""

from __future__ import annotations

from typing import Any

from django.db import connection

from core.jobs import JobContext
from core.loader import module_config
from modules.social_protection import services


def run_enrollment(ctx: JobContext) -> dict[str, Any]:
    """Enroll everyone eligible (or an explicit selection), chunk by chunk.

    Each chunk commits on its own; a job that is retried, or started twice, continues where
    the committed chunks stopped because already-enrolled people are no longer candidates.
    Cancelling stops it between chunks.
    """
    return enroll_all(ctx.params, ctx.user, ctx.progress)


ANALYZE_AFTER = 10_000  # rows enrolled by one job


def enroll_all(params: dict[str, Any], user: Any, progress: Any) -> dict[str, Any]:
    """The enrollment both the job and an approved task run."""
    plan = services.get_plan(params["plan_id"])
    status = params.get("status", "POTENTIAL")
    criteria = params.get("criteria")
    selection = params.get("selection")
    services.validate_enrollment(user, plan, status)
    expected = services.preview(user, plan.pk, criteria, sample_size=0)["would_enroll"]
    chunk = int(module_config("social_protection")["enrollment_chunk_size"])
    progress(0, expected, "enrolling")
    enrolled, after = 0, None
    while True:
        inserted, last = services.enroll_chunk(plan, user, status, after, chunk, criteria, selection)
        enrolled += inserted
        progress(enrolled, max(expected, enrolled), "enrolling")
        if last is None:
            break
        after = last
    if enrolled >= ANALYZE_AFTER:
        # Planner statistics for the next step (a payroll over these beneficiaries) instead of
        # waiting for autovacuum: with the table's old row count, PostgreSQL plans a 300,000-row
        # join as nested loops.
        model = services.beneficiary_model(plan)
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {model._meta.db_table}")
    return {"enrolled": enrolled, "plan": str(plan.pk), "status": status,
            "message": f"Enrolled {enrolled:,} of {max(expected, enrolled):,} eligible as {status} "
                       f"in {plan.code}."}


def run_bulk_status(ctx: JobContext) -> dict[str, Any]:
    from modules.social_protection.filters import beneficiaries_for

    plan = services.get_plan(ctx.params["plan_id"])
    rows = beneficiaries_for(ctx.user, plan, ctx.params.get("filters", {}))
    ctx.progress(0, None, "updating")
    result = services.bulk_change_status(ctx.user, plan, rows, ctx.params["status"])
    ctx.progress(result["matched"], result["matched"], "updating", stoppable=False)  # committed
    changed = result.get("changed", result["matched"])
    return {**result, "message": f"{changed:,} of {result['matched']:,} matching beneficiaries of {plan.code} "
                                 f"are now {ctx.params['status']}."}
