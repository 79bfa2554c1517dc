"""Background jobs: reading a handed-in file, and flagging payments nobody reported on."""

from __future__ import annotations

from typing import Any

from core.jobs import JobContext


def run_ingest(ctx: JobContext) -> dict[str, Any]:
    from modules.reconciliation.services import run_ingest as ingest

    return ingest(ctx)


def run_deadlines(ctx: JobContext) -> dict[str, Any]:
    from modules.reconciliation.services import flag_unreported

    return flag_unreported(ctx)
