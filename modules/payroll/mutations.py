"""GraphQL mutations of payment cycles, plans, points and payrolls (openIMIS shapes). Each
``perform`` calls the use cases of ``services`` and nothing else; refusals are
``PayrollErrorCode`` members."""

from __future__ import annotations

from typing import Any

import graphene

from core.errors import CoreErrorCode, FieldError, ValidationFailed
from core.graphql.jobs import JobType
from core.graphql.mutations import CoreMutation
from core.graphql.scalars import UUID
from modules.payroll.errors import PayrollErrorCode
from modules.payroll.permissions import (
    CONFIGURATION_MANAGE,
    PAYROLL_APPROVE,
    PAYROLL_CLOSE,
    PAYROLL_CREATE,
    PAYROLL_DELETE,
    PAYROLL_PAY,
    PROVIDER_MANAGE,
)
from modules.payroll.schema import (
    PaymentCycleGQLType,
    PaymentPlanGQLType,
    PaymentPointGQLType,
    PayrollGQLType,
)
from modules.payroll.services import configuration, generation, lifecycle


class CreatePaymentCycleMutation(CoreMutation):
    permission = CONFIGURATION_MANAGE
    error_codes = PayrollErrorCode
    payment_cycle = graphene.Field(PaymentCycleGQLType)

    class Input(CoreMutation.Input):
        code = graphene.String(required=True)
        start_date = graphene.Date(required=True)
        end_date = graphene.Date(required=True)
        status = graphene.String()

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        return {"payment_cycle": configuration.create_cycle(user, **data)}


class CreatePaymentPlanMutation(CoreMutation):
    permission = CONFIGURATION_MANAGE
    error_codes = PayrollErrorCode
    payment_plan = graphene.Field(PaymentPlanGQLType)

    class Input(CoreMutation.Input):
        code = graphene.String(required=True)
        name = graphene.String(required=True)
        benefit_plan_id = UUID(required=True)
        calculation_rule = graphene.JSONString(required=True)
        currency = graphene.String(required=True)
        minor_unit = graphene.Int(default_value=2)
        json_ext = graphene.JSONString()

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        return {"payment_plan": configuration.create_plan(user, **data)}


class CreatePaymentPointMutation(CoreMutation):
    """Credentials go in ``config`` as ``{"env": "NAME"}`` references under the deployment's
    ``secret_env_prefix``, and provider URLs must be on its ``outbound_urls`` allow-list; needs
    ``payroll.provider.manage`` and national scope."""

    permission = PROVIDER_MANAGE
    error_codes = PayrollErrorCode
    unlogged_inputs = frozenset({"config"})
    payment_point = graphene.Field(PaymentPointGQLType)

    class Input(CoreMutation.Input):
        code = graphene.String(required=True)
        name = graphene.String()
        adaptor = graphene.String(required=True)
        config = graphene.JSONString()
        routing = graphene.JSONString()

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        return {"payment_point": configuration.create_point(user, **data)}


class UpdatePaymentCycleMutation(CoreMutation):
    """Change a cycle; omitted fields stay; send ``version`` to refuse a stale edit. A CLOSED
    cycle is final; a cycle with payrolls keeps its dates."""

    permission = CONFIGURATION_MANAGE
    error_codes = PayrollErrorCode
    payment_cycle = graphene.Field(PaymentCycleGQLType)

    class Input(CoreMutation.Input):
        id = UUID(required=True)
        version = graphene.Int()
        code = graphene.String()
        start_date = graphene.Date()
        end_date = graphene.Date()
        status = graphene.String()

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        pk, version = data.pop("id"), data.pop("version", None)
        return {"payment_cycle": configuration.update_cycle(user, pk, version=version, **data)}


class UpdatePaymentPlanMutation(CoreMutation):
    """Change a plan; omitted fields stay. The rule cannot change while a payroll of the plan
    is pending approval, approved or sending, nor the currency or minor unit once it has
    payrolls (``PLAN_IN_USE``)."""

    permission = CONFIGURATION_MANAGE
    error_codes = PayrollErrorCode
    payment_plan = graphene.Field(PaymentPlanGQLType)

    class Input(CoreMutation.Input):
        id = UUID(required=True)
        version = graphene.Int()
        name = graphene.String()
        calculation_rule = graphene.JSONString()
        currency = graphene.String()
        minor_unit = graphene.Int()
        json_ext = graphene.JSONString()

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        pk, version = data.pop("id"), data.pop("version", None)
        return {"payment_plan": configuration.update_plan(user, pk, version=version, **data)}


class UpdatePaymentPointMutation(CoreMutation):
    """Change a point's name, ``config`` (replaced whole; secrets only as ``{"env": "NAME"}``
    references under the ``secret_env_prefix``, URLs only from ``outbound_urls``) or ``routing``;
    the adaptor cannot change. Needs ``payroll.provider.manage`` and national scope."""

    permission = PROVIDER_MANAGE
    error_codes = PayrollErrorCode
    unlogged_inputs = frozenset({"config"})
    payment_point = graphene.Field(PaymentPointGQLType)

    class Input(CoreMutation.Input):
        id = UUID(required=True)
        version = graphene.Int()
        name = graphene.String()
        config = graphene.JSONString()
        routing = graphene.JSONString()

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        pk, version = data.pop("id"), data.pop("version", None)
        return {"payment_point": configuration.update_point(user, pk, version=version, **data)}


class DeleteInput(CoreMutation.Input):
    id = UUID(required=True)
    version = graphene.Int()


def one_payroll_id(data: dict[str, Any]) -> Any:
    """The payroll a payroll mutation acts on: ``id``, or openIMIS's form ``ids: [<one uuid>]``
    (its payroll screens send that). Exactly one is required."""
    ids = [i for i in [data.get("id"), *(data.get("ids") or [])] if i is not None]
    if len(set(ids)) != 1:
        raise ValidationFailed([FieldError("id", CoreErrorCode.REQUIRED if not ids else CoreErrorCode.INVALID,
                                           "Name one payroll: id, or ids with one id." if not ids else
                                           "These mutations act on one payroll at a time; send one id.")])
    return ids[0]


class PayrollsInput(CoreMutation.Input):
    id = UUID(description="the payroll")
    ids = graphene.List(graphene.NonNull(UUID), description="openIMIS's form: a list holding the one payroll's id")


def _delete_mutation(name: str, doc: str | None, permission: str, field: str, node: type,
                     action: Any) -> type[CoreMutation]:
    """``input: {id, version}`` → ``action(user, id, version)``, the deleted row as ``field``."""

    def perform(cls: Any, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        return {field: action(user, data["id"], data.get("version"))}

    return type(name, (CoreMutation,), {
        "__doc__": doc, "permission": permission, "error_codes": PayrollErrorCode, field: graphene.Field(node),
        "Input": type("Input", (DeleteInput,), {}), "perform": classmethod(perform),
    })


DeletePaymentCycleMutation = _delete_mutation(
    "DeletePaymentCycleMutation", "Soft-delete a cycle that has no payrolls (``CYCLE_IN_USE`` otherwise).",
    CONFIGURATION_MANAGE, "payment_cycle", PaymentCycleGQLType, configuration.delete_cycle)
DeletePaymentPlanMutation = _delete_mutation(
    "DeletePaymentPlanMutation", "Soft-delete a plan that has no payrolls (``PLAN_IN_USE`` otherwise).",
    CONFIGURATION_MANAGE, "payment_plan", PaymentPlanGQLType, configuration.delete_plan)
DeletePaymentPointMutation = _delete_mutation(
    "DeletePaymentPointMutation",
    "Soft-delete a point no payment is still open through (``POINT_IN_USE`` otherwise).",
    PROVIDER_MANAGE, "payment_point", PaymentPointGQLType, configuration.delete_point)


class CreatePayrollMutation(CoreMutation):
    """Generate a payroll in a background job (``job``; its result names the payroll and,
    when ``payroll.approve`` is routed to a task group, the approval task; otherwise the payroll
    is approved at once). ``fromFailedInvoicesPayrollId`` re-issues another payroll's failed
    payments instead. What can be refused before the job (unknown plan, cycle or location, a
    cycle not ACTIVE, nobody left to pay, a beneficiary no payment point serves, an approval
    route to a task group that does not exist or has no other checker) is refused here, with
    nothing started."""

    permission = PAYROLL_CREATE
    error_codes = PayrollErrorCode
    job = graphene.Field(JobType)

    class Input(CoreMutation.Input):
        name = graphene.String(required=True)
        payment_plan_id = UUID()
        payment_cycle_id = UUID()
        payment_point_id = UUID()
        location_ids = graphene.List(graphene.NonNull(UUID))
        json_ext = graphene.JSONString()
        from_failed_invoices_payroll_id = UUID()

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        return {"job": generation.do_create_payroll(generation.check_create_payroll(user, **data))}




class MakePaymentForPayrollMutation(CoreMutation):
    """Start (or restart) sending an approved payroll to its providers in a background job."""

    permission = PAYROLL_PAY
    error_codes = PayrollErrorCode
    payroll = graphene.Field(PayrollGQLType)
    job = graphene.Field(JobType)

    class Input(PayrollsInput):
        pass

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        payroll, job = lifecycle.do_send_payroll(lifecycle.check_send_payroll(user, one_payroll_id(data)))
        return {"payroll": payroll, "job": job}


class ClosePayrollMutation(CoreMutation):
    """Close (reconcile) a paid payroll, or ask for approval when ``payroll.reconcile`` is routed
    to checkers (``task``; the payroll is closed when they approve)."""

    permission = PAYROLL_CLOSE
    error_codes = PayrollErrorCode
    payroll = graphene.Field(PayrollGQLType)
    task = graphene.Field("core.approvals.schema.TaskGQLType")

    class Input(PayrollsInput):
        pass

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        closure = lifecycle.do_close_payroll(lifecycle.check_close_payroll(user, one_payroll_id(data)))
        return {"payroll": closure.payroll, "task": closure.task}


class RejectPayrollMutation(CoreMutation):
    permission = PAYROLL_APPROVE
    error_codes = PayrollErrorCode
    payroll = graphene.Field(PayrollGQLType)

    class Input(PayrollsInput):
        pass

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        return {"payroll": lifecycle.reject_payroll(user, one_payroll_id(data))}


class DeletePayrollMutation(CoreMutation):
    permission = PAYROLL_DELETE
    error_codes = PayrollErrorCode
    payroll = graphene.Field(PayrollGQLType)

    class Input(PayrollsInput):
        version = graphene.Int()

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        return {"payroll": lifecycle.delete_payroll(user, one_payroll_id(data), data.get("version"))}


class Mutation(graphene.ObjectType):
    create_payment_cycle = CreatePaymentCycleMutation.Field()
    create_payment_plan = CreatePaymentPlanMutation.Field()
    create_payment_point = CreatePaymentPointMutation.Field()
    update_payment_cycle = UpdatePaymentCycleMutation.Field()
    update_payment_plan = UpdatePaymentPlanMutation.Field()
    update_payment_point = UpdatePaymentPointMutation.Field()
    delete_payment_cycle = DeletePaymentCycleMutation.Field()
    delete_payment_plan = DeletePaymentPlanMutation.Field()
    delete_payment_point = DeletePaymentPointMutation.Field()
    create_payroll = CreatePayrollMutation.Field()
    make_payment_for_payroll = MakePaymentForPayrollMutation.Field()
    close_payroll = ClosePayrollMutation.Field()
    reject_payroll = RejectPayrollMutation.Field()
    delete_payroll = DeletePayrollMutation.Field()
