"""Background jobs of the payroll module."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction

from core.approvals.services import needs_approval, request_approval
from core.history import acting_as
from core.jobs import NOTHING_TO_DO, JobContext
from core.models import ApprovalTask
from modules.payroll.approvals import APPROVE
from modules.payroll.models import Payroll
from modules.payroll.sending import poll_sent, send_outcome, send_payroll
from modules.payroll.services import generation, lifecycle

# the job kind of polling (generation's and sending's are named with their use cases)
POLL = "payroll.poll"


def run_generate(ctx: JobContext) -> dict[str, Any]:
    result = generate_payroll(ctx.params, ctx.user, ctx.job.pk, ctx.progress)
    plan = Payroll.all_objects.select_related("payment_plan").get(pk=result["payroll_id"]).payment_plan
    amount = f"{result['sum'] / 10 ** plan.minor_unit:,.{plan.minor_unit}f} {plan.currency}"
    waiting = f"; it waits for approval (task {result['task_id']})" if result["task_id"] else ""
    return {**result, "message": f"Generated payroll {result['payroll_id']}: {result['count']:,} payments "
                                 f"totalling {amount}, {result['status']}{waiting}."}


def generate_payroll(params: dict[str, Any], user: Any, job_id: Any,
                     progress: Callable[..., None] | None = None) -> dict[str, Any]:
    """Generate a payroll (or a re-issue of another's failed payments) and either ask a
    checker to approve it or approve it at once, all in one transaction: a crash leaves no
    payroll, no instruction and no task. The payroll records the job, so a rerun of a job that
    committed but died before it was marked finished reports that payroll instead of
    generating another."""
    done = Payroll.all_objects.filter(job_id=job_id).first()
    if done is not None:
        return _result(done)
    if progress is not None:
        progress(0, None, "generating")
    with transaction.atomic(), acting_as(user, job=str(job_id)):
        if params.get("from_failed_payroll_id"):
            payroll, _ = generation.reissue_failed(user, params["from_failed_payroll_id"], params.get("name"),
                                                 job_id=job_id)
        else:
            fields = {k: params.get(k) for k in ("name", "payment_plan_id", "payment_cycle_id", "payment_point_id",
                                                 "location_ids", "json_ext")}
            payroll, _ = generation.create_payroll(user, **fields, job_id=job_id)
        if needs_approval(APPROVE):
            proposal = {"id": str(payroll.pk), "name": payroll.name, "count": payroll.control_count,
                        "sum": payroll.control_sum, "currency": payroll.payment_plan.currency}
            request_approval(user, APPROVE, "Payroll", payroll.pk, proposal)
        else:
            payroll = lifecycle.mark_approved(user, payroll.pk)
    if progress is not None:
        # Committed: stopping now would only hide the payroll from its job.
        progress(payroll.control_count, payroll.control_count, "generated", stoppable=False)
    return _result(payroll)


def _result(payroll: Payroll) -> dict[str, Any]:
    task = (ApprovalTask.objects.filter(entity_type="Payroll", entity_id=str(payroll.pk), action=APPROVE)
            .order_by("-date_created").values_list("pk", flat=True).first())
    return {"payroll_id": str(payroll.pk), "status": payroll.status, "count": payroll.control_count,
            "sum": payroll.control_sum, "task_id": str(task) if task else None, **(payroll.generation_report or {})}


def run_send(ctx: JobContext) -> dict[str, Any]:
    """Send a SENDING payroll; restartable (see sending.py for why a rerun never pays twice).
    A run that stops short leaves the job WAITING, and it resumes by itself."""
    previous = ctx.job.result if isinstance(ctx.job.result, dict) else None
    outcome = send_payroll(ctx.params["payroll_id"], ctx.user, ctx.progress)
    return send_outcome(ctx.params["payroll_id"], outcome, previous)


def run_poll(ctx: JobContext) -> dict[str, Any]:
    """Ask providers about payments still SENT; asking again is harmless (outcomes only move
    forward)."""
    result = poll_sent(ctx.user)
    return {**result, NOTHING_TO_DO: not result["asked"],
            "message": f"Asked the providers about {result['asked']:,} payments; "
                       f"{result['changed']:,} changed status."}
