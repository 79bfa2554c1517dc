"""Hook implementations of the payroll module, including its built-in payment adaptors."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from core.hooks import hookimpl
from core.permissions import PermissionSpec


@hookimpl
def coremis_permissions() -> list[PermissionSpec]:
    return [
        PermissionSpec("payroll.search", "List and read payment cycles, points, payrolls and payments", openimis=(200001, 201001, 202001)),
        PermissionSpec("payroll.configure", "Create and change payment cycles and payment plans (national scope)", openimis=(200002, 200003)),
        PermissionSpec("payroll.configure_providers",
                       "Create and change payment points: provider URLs and credential references (national scope)",
                       openimis=(201002, 201003, 201004)),
        PermissionSpec("payroll.create", "Generate payrolls and re-issue failed payments", openimis=(202002,)),
        PermissionSpec("payroll.approve", "Approve or reject payrolls"),
        PermissionSpec("payroll.pay", "Send approved payrolls to payment providers"),
        PermissionSpec("payroll.close", "Close (reconcile) paid payrolls"),
        PermissionSpec("payroll.delete", "Delete payrolls from which nothing was sent", openimis=(202004,)),
    ]


@hookimpl
def coremis_graphql_query() -> type:
    from modules.payroll.schema import Query

    return Query


@hookimpl
def coremis_graphql_mutation() -> type:
    from modules.payroll.schema import Mutation

    return Mutation


@hookimpl
def coremis_jobs() -> dict[str, Callable[..., Any]]:
    from modules.payroll.jobs import run_generate, run_poll, run_send

    return {"payroll.generate": run_generate, "payroll.send": run_send, "payroll.poll": run_poll}


@hookimpl
def coremis_schedules() -> list[dict[str, Any]]:
    # Final statuses normally arrive by callback; polling catches the ones that never do.
    return [{"kind": "payroll.poll", "cron": "*/15 * * * *", "params": {}}]


@hookimpl
def coremis_urls() -> list[Any]:
    from django.urls import path

    from core.hooks import hook
    from modules.payroll.views import callback_view

    extra = [route for routes in hook().payroll_urls() for route in routes or []]
    return [path("callback/<str:point_code>", callback_view, name="callback"), *extra]


@hookimpl
def coremis_health_checks() -> dict[str, Callable[[], tuple[bool, str]]]:
    return {"payroll_approval": check_payroll_approval}


def check_payroll_approval() -> tuple[bool, str]:
    """Not healthy while money can move without a second person: when ``payroll.approve`` is
    routed to no task group, whoever generates a payroll approves it, and it can be sent."""
    from core.approvals.services import configured_task_group
    from core.models import TaskGroupChecker

    code = configured_task_group("payroll.approve")
    if code is None:
        return False, ("payroll.approve needs no checker: payrolls are approved by whoever generates them, so money "
                       "moves without approval; route it to a task group with setApprovalRoute")
    checkers = TaskGroupChecker.objects.filter(task_group__code=code, task_group__is_deleted=False,
                                               user__is_active=True).count()
    if not checkers:
        return False, f"payroll.approve is routed to task group '{code}', which has no active checker"
    return True, f"payrolls are approved by task group '{code}' ({checkers} checker(s))"


@hookimpl
def coremis_approval_actions() -> dict[str, Any]:
    from modules.payroll.approvals import ACTIONS

    return ACTIONS


# --- built-in adaptors -----------------------------------------------------------------------


def _builtin(adaptor: str) -> Any:
    from modules.payroll.adaptors import file, g2p_connect, mobile_money

    return {file.NAME: file, mobile_money.NAME: mobile_money, g2p_connect.NAME: g2p_connect}.get(adaptor)


@hookimpl
def payroll_payment_methods() -> list[str]:
    return ["file", "g2p_connect", "mobile_money"]


@hookimpl
def payroll_send_batch(adaptor: str, point: Any, instructions: list[Any]) -> Any:
    module = _builtin(adaptor)
    return None if module is None else module.send_batch(point, instructions)


@hookimpl
def payroll_query_status(adaptor: str, point: Any, references: list[str]) -> Any:
    module = _builtin(adaptor)
    return None if module is None else module.query_status(point, references)


@hookimpl
def payroll_parse_callback(adaptor: str, point: Any, body: bytes, headers: Mapping[str, str]) -> Any:
    module = _builtin(adaptor)
    return None if module is None else module.parse_callback(point, body, headers)


# What each built-in adaptor pays to (see the adaptors' send_batch): mobile money to a phone
# number, G2P Connect to the payee's financial address (an account, else the phone).
_IDENTIFIERS = {"file": [], "mobile_money": ["phone"], "g2p_connect": ["account", "phone"]}


@hookimpl
def payroll_recipient_identifiers(adaptor: str, point: Any) -> Any:
    return _IDENTIFIERS.get(adaptor)


@hookimpl(optionalhook=True)  # grievance declares it; without grievance nobody asks
def grievance_payments(payment_ids: list[Any]) -> dict[Any, dict[str, Any]]:
    """Payments as they are now, for "payment not received" tickets (a hook grievance declares)."""
    from modules.payroll.models import BenefitConsumption, effective_status

    return {row["pk"]: {"code": row["code"], "status": effective_status(row["status"], row["payroll__status"]),
                        "amount": row["amount"],
                        "currency": row["currency"], "individual_id": row["individual_id"], "group_id": row["group_id"],
                        "date_paid": row["date_paid"], "provider_transaction_id": row["provider_transaction_id"],
                        "status_message": row["status_message"], "payroll": row["payroll__name"]}
            for row in BenefitConsumption.objects.filter(pk__in=payment_ids).values(
                "pk", "code", "status", "amount", "currency", "individual_id", "group_id", "date_paid",
                                "provider_transaction_id", "status_message", "payroll__name", "payroll__status")}


@hookimpl
def coremis_seed_demo(stdout: Any, actor: Any) -> None:
    from modules.payroll.demo import seed_demo_payroll as seed

    created = seed(actor)
    stdout.write(f"Demo payroll data: {created} created." if created else "Demo payroll data present.")


@hookimpl
def social_protection_plans_with_payment_plans() -> Any:
    from modules.payroll.models import PaymentPlan

    return set(PaymentPlan.objects.filter(is_deleted=False).values_list("benefit_plan_id", flat=True))
