"""Hook implementations of the reconciliation module (imports stay inside the hooks)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.hooks import hookimpl
from core.permissions import Permission


@hookimpl
def coremis_permissions() -> list[Permission]:
    from core.permissions import declared
    from modules.reconciliation import permissions

    return declared(permissions)


@hookimpl
def coremis_graphql_query() -> type:
    from modules.reconciliation.schema import Query

    return Query


@hookimpl
def coremis_graphql_mutation() -> type:
    from modules.reconciliation.schema import Mutation

    return Mutation


@hookimpl
def coremis_jobs() -> dict[str, Callable[..., Any]]:
    from modules.reconciliation.export import EXPORT_JOB, run_export_report
    from modules.reconciliation.jobs import run_deadlines, run_ingest, run_pull_token_purge

    return {"reconciliation.ingest": run_ingest, "reconciliation.deadlines": run_deadlines,
            "reconciliation.pull_token_purge": run_pull_token_purge, EXPORT_JOB: run_export_report}


@hookimpl
def coremis_schedules() -> list[dict[str, Any]]:
    # Silence is a mismatch too: payments past their point's deadline with no word become NOT_REPORTED.
    # Dead pull-API tokens pile up (a provider asks for one every hour or so): a daily purge.
    return [{"kind": "reconciliation.deadlines", "cron": "17 * * * *", "params": {}},
            {"kind": "reconciliation.pull_token_purge", "cron": "43 2 * * *", "params": {}}]


@hookimpl
def coremis_upload_purposes() -> list[Any]:
    from core.uploads import UploadPurpose
    from modules.reconciliation.permissions import REPORT_INGEST

    return [UploadPurpose("reconciliation.result_file", permission=REPORT_INGEST,
                          description="A provider's result file or the filled openIMIS reconciliation CSV")]


@hookimpl
def coremis_urls() -> list[Any]:
    from modules.reconciliation import export, pull
    from modules.reconciliation.views import urlpatterns

    return [*urlpatterns, *pull.urlpatterns, *export.urlpatterns]


@hookimpl
def payroll_urls() -> list[Any]:
    from modules.reconciliation.views import payroll_urlpatterns

    return payroll_urlpatterns


@hookimpl
def payroll_after_outcomes_received(point: Any, source: str, outcomes: list[Any]) -> None:
    from modules.reconciliation.services import record_provider_outcomes

    record_provider_outcomes(point, source, outcomes)


@hookimpl
def payroll_close_problems(payroll: Any) -> list[str]:
    from modules.reconciliation.services import close_problems

    return close_problems(payroll)


@hookimpl
def payroll_create_problems(plan: Any, cycle: Any, location_ids: list[str], follows: Any) -> list[Any]:
    from modules.reconciliation.services import round_problems

    return round_problems(plan, location_ids, follows)
