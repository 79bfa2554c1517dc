"""Background jobs: reading a handed-in file, flagging payments nobody reported on, and purging
dead pull-API tokens."""

from __future__ import annotations

from typing import Any

from core.jobs import NOTHING_TO_DO, JobContext


def run_ingest(ctx: JobContext) -> dict[str, Any]:
    from modules.reconciliation.services import run_ingest as ingest

    return ingest(ctx)


def run_deadlines(ctx: JobContext) -> dict[str, Any]:
    from modules.reconciliation.services import flag_unreported

    result = flag_unreported(ctx)
    return {**result, NOTHING_TO_DO: not result["flagged"]}


def run_pull_token_purge(ctx: JobContext) -> dict[str, Any]:
    from modules.reconciliation.services import purge_pull_tokens

    result = purge_pull_tokens(ctx)
    return {**result, NOTHING_TO_DO: not result["deleted"]}
