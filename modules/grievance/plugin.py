"""Hook implementations of the grievance module (imports stay inside the hooks: the loader
imports this before Django is set up)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.hooks import hookimpl
from core.permissions import Permission


@hookimpl
def coremis_permissions() -> list[Permission]:
    from core.permissions import declared
    from modules.grievance import permissions

    return declared(permissions)


@hookimpl
def coremis_graphql_query() -> type:
    from modules.grievance.schema import Query

    return Query


@hookimpl
def coremis_graphql_mutation() -> type:
    from modules.grievance.schema import Mutation

    return Mutation


@hookimpl
def coremis_jobs() -> dict[str, Callable[..., Any]]:
    from modules.grievance.jobs import run_delivery, run_escalation, run_export

    return {"grievance.escalate": run_escalation, "grievance.deliver": run_delivery, "grievance.export": run_export}


@hookimpl
def coremis_schedules() -> list[dict[str, Any]]:
    from modules.grievance.configuration import config

    return [{"kind": "grievance.escalate", "cron": config().escalation_cron, "params": {}},
            # what a failed delivery left for later, and what a lost on-commit start missed
            {"kind": "grievance.deliver", "cron": "* * * * *", "params": {}}]


@hookimpl
def coremis_upload_purposes() -> list[Any]:
    from core.uploads import UploadPurpose
    from modules.grievance.permissions import ATTACHMENT_CREATE

    return [UploadPurpose("grievance.attachment", permission=ATTACHMENT_CREATE,
                          description="A file (PDF, photo, recording) for createTicketAttachment")]


@hookimpl
def coremis_urls() -> list[Any]:
    from modules.grievance.views import urlpatterns

    return urlpatterns


@hookimpl
def coremis_approval_actions() -> dict[str, Any]:
    from modules.grievance.services.workflows import ACTIONS

    return ACTIONS


@hookimpl
def coremis_seed_demo(stdout: Any, actor: Any) -> None:
    from modules.grievance.demo import seed_demo_tickets

    created = seed_demo_tickets(actor)
    stdout.write(f"Demo grievance tickets: {created} created." if created else "Demo grievance tickets present.")


@hookimpl
def coremis_health_checks() -> dict[str, Callable[[], tuple[bool, str]]]:
    return {"grievance_roles": check_roles}


def check_roles() -> tuple[bool, str]:
    """Failing while the configuration names a role nobody could hold: tickets would route to
    nobody, and sensitive ones would be readable by nobody."""
    from core.models import Role
    from modules.grievance.configuration import config

    named = config().roles
    existing = set(Role.objects.filter(name__in=named).values_list("name", flat=True))
    missing = sorted(named - existing)
    if missing:
        return False, f"modules_config.json (grievance) names roles that do not exist: {', '.join(missing)}"
    return True, f"every role the grievance configuration names exists ({len(named)})"


@hookimpl
def grievance_notification_channels() -> dict[str, Any]:
    from modules.grievance.adaptors import email

    return {email.NAME: email.send}


@hookimpl
def grievance_notification_address(channel: str, user: Any) -> str | None:
    from modules.grievance.adaptors import email

    return email.address(user) if channel == email.NAME else None
