"""Background jobs of the payroll module."""

from __future__ import annotations

from typing import Any

from core.jobs import JobContext
from modules.payroll.sending import poll_sent, send_payroll


def run_send(ctx: JobContext) -> dict[str, Any]:
    """Send a SENDING payroll; restartable (see sending.py for why a rerun never pays twice)."""
    return send_payroll(ctx.params["payroll_id"], ctx.user, ctx.progress)


def run_poll(ctx: JobContext) -> dict[str, Any]:
    return poll_sent(ctx.user)
