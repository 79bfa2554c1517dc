"""Background jobs of the grievance module (each may run again after a lost run)."""

from __future__ import annotations

from typing import Any

from core.jobs import NOTHING_TO_DO, JobContext


def run_escalation(ctx: JobContext) -> dict[str, Any]:
    """``grievance.escalate``: idempotent, a second run finds only what is still due."""
    from modules.grievance.services.escalation import escalate_overdue

    result = escalate_overdue(job_id=ctx.job.pk)
    ctx.progress(result["examined"], result["examined"], "done", stoppable=False)
    return {**result, NOTHING_TO_DO: not (result["escalated"] or result["marked_overdue"])}


def run_delivery(ctx: JobContext) -> dict[str, Any]:
    """``grievance.deliver``: sends due outbox rows; a row is claimed before it is sent and
    marked with its outcome in the same transaction, so a rerun never resends a sent one."""
    from modules.grievance.notifications import deliver_due

    result = deliver_due()
    return {**result, NOTHING_TO_DO: not any(result.values())}


def run_export(ctx: JobContext) -> dict[str, Any]:
    """``grievance.export``: writes the file again from the start when run again."""
    from modules.grievance.export import write_export

    return write_export(ctx)
