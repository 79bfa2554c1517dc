"""GraphQL surface of payment cycles, points, plans, payrolls and payments (openIMIS shapes).

Amounts are integers in the currency's minor unit; ``currency`` and the plan's ``minorUnit``
say how to display them.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import django_filters
import graphene
from django.db.models import QuerySet

from core.approvals.services import check_can_request, needs_approval
from core.errors import ServiceError
from core.graphql.fields import ProtectedConnectionField, ProtectedField
from core.graphql.jobs import JobType
from core.graphql.mutations import CoreMutation
from core.graphql.scalars import UUID
from core.graphql.types import (
    CoreNode,
    CountableConnection,
    UserType,  # noqa: F401 - user fields resolve to it
)
from core.jobs import start_job
from modules.individual.schema import GroupGQLType, IndividualGQLType  # noqa: F401 - recipients resolve to them
from modules.location.services import in_scope, scope_queryset
from modules.payroll import services
from modules.payroll.adaptors import payment_methods
from modules.payroll.models import (
    BenefitConsumption,
    InstructionStatus,
    PaymentCycle,
    PaymentPlan,
    PaymentPoint,
    Payroll,
    effective_status,
    effective_status_q,
)
from modules.social_protection.schema import BenefitPlanGQLType

AUDIT = ("id", "json_ext", "is_deleted", "version", "date_created", "date_updated", "user_created", "user_updated")


class PaymentCycleGQLType(CoreNode):
    class Meta:
        model = PaymentCycle
        interfaces = (graphene.relay.Node,)
        connection_class = CountableConnection
        fields = (*AUDIT, "code", "start_date", "end_date", "status")
        filter_fields = {"code": ["exact", "icontains"], "status": ["exact"], "start_date": ["gte", "lte"],
                         "end_date": ["gte", "lte"], "is_deleted": ["exact"]}

    status = graphene.String(required=True)


class PaymentPointGQLType(CoreNode):
    """A payment provider; its ``config`` (with credential references) is never returned."""

    class Meta:
        model = PaymentPoint
        interfaces = (graphene.relay.Node,)
        connection_class = CountableConnection
        fields = (*AUDIT, "code", "name", "adaptor", "routing")
        filter_fields = {"code": ["exact", "icontains"], "name": ["icontains"], "adaptor": ["exact"],
                         "is_deleted": ["exact"]}

    configured_keys = graphene.List(graphene.NonNull(graphene.String), required=True,
                                    description="names of the settings the point has, without values")

    def resolve_configured_keys(self, info: Any) -> list[str]:
        return sorted((self.config or {}).keys())

    # --- openIMIS frontend: a payment point there has one location and a manager (ppm). A coremis
    # point serves the locations its routing names; the one it names is openIMIS's location. It
    # has no manager: who may change a point is a right (payroll.configure_providers), not a person.
    location = graphene.Field("modules.location.schema.LocationGQLType",
                              description="openIMIS's field: the location the point's routing names when it names "
                                          "exactly one (null for none or several; routing has them all)")
    ppm = graphene.Field("core.graphql.openimis.CurrentUserType",
                         description="openIMIS's payment point manager; always null (coremis has no such person)")

    def resolve_location(self, info: Any) -> Any:
        location_id = routed_location_id(self)
        if location_id is None:
            return None
        location = routed_locations(info).get(location_id)
        if location is None or not in_scope(info.context.user, location):
            return None
        return location

    def resolve_ppm(self, info: Any) -> None:
        return None


def routed_location_id(point: PaymentPoint) -> str | None:
    """The one location a point's routing names (as a canonical UUID string), or None."""
    locations = (point.routing or {}).get("locations") or []
    if len(locations) != 1:
        return None
    try:
        return str(uuid.UUID(str(locations[0])))
    except ValueError:
        return None  # routing is validated when set; an odd old value is just not shown


def routed_locations(info: Any) -> dict[str, Any]:
    """Once per request, every location a point's routing names alone, with the parents a
    list shows (two statements whatever the page's size: points are few)."""
    cached = getattr(info.context, "_coremis_routed_locations", None)
    if cached is None:
        from modules.location.models import Location

        ids = {routed_location_id(point) for point in PaymentPoint.objects.only("routing")}
        ids.discard(None)
        cached = {str(loc.pk): loc for loc in Location.objects.filter(pk__in=ids, is_deleted=False)
                  .select_related("parent__parent__parent")}
        info.context._coremis_routed_locations = cached
    return cached


def openimis_plan_json(plan: Any) -> str:
    """A benefit plan as openIMIS's payment plan carries it: ``json.dumps`` of the plan's JSON text."""
    fields = {
        "id": str(plan.pk), "uuid": str(plan.pk), "code": plan.code, "name": plan.name, "type": plan.type,
        "description": plan.description, "institution": plan.institution,
        "max_beneficiaries": plan.max_beneficiaries,
        "ceiling_per_beneficiary": (None if plan.ceiling_per_beneficiary is None
                                    else str(plan.ceiling_per_beneficiary)),
        "date_valid_from": plan.date_valid_from.isoformat(), "date_valid_to": plan.date_valid_to.isoformat(),
        "beneficiary_data_schema": plan.beneficiary_data_schema, "json_ext": plan.json_ext,
    }
    return json.dumps(json.dumps(fields))


class PaymentPlanGQLType(CoreNode):
    class Meta:
        model = PaymentPlan
        interfaces = (graphene.relay.Node,)
        connection_class = CountableConnection
        fields = (*AUDIT, "code", "name", "calculation_rule", "currency", "minor_unit")
        filter_fields = {"code": ["exact", "icontains"], "benefit_plan__id": ["exact"], "is_deleted": ["exact"]}

    benefit_plan_detail = graphene.Field(BenefitPlanGQLType, required=True, description="the benefit plan it pays")
    # openIMIS's form (its PaymentPlan.benefitPlan): the plan as JSON text, which its payroll screen
    # decodes twice (a JSON string whose content is the plan's JSON), then reads ``id`` from.
    benefit_plan = graphene.String(required=True, description="openIMIS's form of the plan: a JSON string of the "
                                   "plan's JSON (id, uuid, code, name, type, dates, …); use benefitPlanDetail")

    def resolve_benefit_plan_detail(self, info: Any) -> Any:
        return self.benefit_plan

    def resolve_benefit_plan(self, info: Any) -> str:
        return openimis_plan_json(self.benefit_plan)

    @classmethod
    def list_queryset(cls, queryset: QuerySet, info: Any) -> QuerySet:
        return queryset.select_related("benefit_plan")


class PayrollFilter(django_filters.FilterSet):
    uuid = django_filters.UUIDFilter(field_name="id")
    payment_cycle__id = django_filters.UUIDFilter(field_name="payment_cycle_id")
    payment_point__id = django_filters.UUIDFilter(field_name="payment_point_id")
    payment_plan__id = django_filters.UUIDFilter(field_name="payment_plan_id")
    payment_method = django_filters.CharFilter(field_name="payment_point__adaptor")

    class Meta:
        model = Payroll
        fields = {"name": ["exact", "icontains"], "status": ["exact", "in"], "is_deleted": ["exact"]}


class PayrollGQLType(CoreNode):
    class Meta:
        model = Payroll
        interfaces = (graphene.relay.Node,)
        connection_class = CountableConnection
        filterset_class = PayrollFilter
        fields = (*AUDIT, "name", "payment_plan", "payment_cycle", "payment_point", "location_ids", "follows",
                  "status", "control_count", "control_sum")

    status = graphene.String(required=True)
    payment_method = graphene.String(description="the adaptor of its payment point")
    control_count = graphene.Int(required=True, description="payments generated; for a user with a location "
                                 "scope, those in their locations")
    control_sum = graphene.BigInt(required=True, description="their total in minor units; for a user with a "
                                  "location scope, the total in their locations")

    def resolve_payment_method(self, info: Any) -> str | None:
        return self.payment_point.adaptor if self.payment_point_id else None

    # --- openIMIS frontend: a payroll's validity is its payment cycle's period.
    date_valid_from = graphene.Date(description="openIMIS's name: the payment cycle's start date")
    date_valid_to = graphene.Date(description="openIMIS's name: the payment cycle's end date")

    def resolve_date_valid_from(self, info: Any) -> Any:
        return self.payment_cycle.start_date if self.payment_cycle_id else None

    def resolve_date_valid_to(self, info: Any) -> Any:
        return self.payment_cycle.end_date if self.payment_cycle_id else None

    def resolve_control_count(self, info: Any) -> int:
        return _totals(self, info)[0]

    def resolve_control_sum(self, info: Any) -> int:
        return _totals(self, info)[1]

    @classmethod
    def list_queryset(cls, queryset: QuerySet, info: Any) -> QuerySet:
        # (the plan's benefit plan: openIMIS's ``paymentPlan { benefitPlan }`` on every row)
        queryset = queryset.select_related("payment_plan__benefit_plan", "payment_cycle", "payment_point", "follows",
                                           "user_created", "user_updated")
        queryset = services.visible_payrolls(info.context.user, queryset)
        return services.with_scoped_totals(info.context.user, queryset)


def _totals(payroll: Payroll, info: Any) -> tuple[int, int]:
    """Lists compute a scoped user's totals in their own query; a payroll reached another way
    (a payment's ``payroll``) costs one query per payroll in the request, not one per row."""
    cache: dict[Any, tuple[int, int]] = info.context.__dict__.setdefault("_payroll_totals", {})
    if payroll.pk not in cache:
        cache[payroll.pk] = services.scoped_totals(info.context.user, payroll)
    return cache[payroll.pk]


class BenefitConsumptionFilter(django_filters.FilterSet):
    """``status`` filters on what clients see (:func:`effective_status`): an unsent payment of an
    approved payroll is APPROVED although its row still says CREATED."""

    status = django_filters.CharFilter(method="filter_status")
    status__in = django_filters.BaseInFilter(method="filter_status")

    class Meta:
        model = BenefitConsumption
        fields = {"code": ["exact"], "individual__last_name": ["icontains"], "is_deleted": ["exact"]}

    def filter_status(self, queryset: QuerySet, name: str, value: Any) -> QuerySet:
        statuses = [value] if isinstance(value, str) else list(value or [])
        return queryset.filter(effective_status_q(statuses))


class BenefitConsumptionGQLType(CoreNode):
    """A payment instruction; ``code`` is its reference with the provider."""

    class Meta:
        model = BenefitConsumption
        interfaces = (graphene.relay.Node,)
        connection_class = CountableConnection
        filterset_class = BenefitConsumptionFilter
        fields = (*AUDIT, "code", "payroll", "payment_cycle", "beneficiary_id", "individual", "group",
                  "payment_point", "amount", "currency", "status", "provider_transaction_id", "status_message",
                  "date_paid", "send_attempts", "dispatched_at")

    status = graphene.String(required=True, description="APPROVED for an unsent payment of an approved payroll")
    amount = graphene.Float(required=True, description="minor units")
    receipt = graphene.String(description="the provider's transaction id (openIMIS name)")

    def resolve_status(self, info: Any) -> str:
        # ``payroll`` is joined by every list (list_queryset) and by a payroll's own payments.
        return effective_status(self.status, self.payroll.status)

    def resolve_receipt(self, info: Any) -> str:
        return self.provider_transaction_id

    @classmethod
    def list_queryset(cls, queryset: QuerySet, info: Any) -> QuerySet:
        # (the payroll's point: its ``paymentMethod``; its cycle: its ``dateValidFrom``/``dateValidTo``)
        queryset = queryset.select_related("individual", "group", "payment_point", "payroll__payment_point",
                                           "payroll__payment_cycle", "payment_cycle")
        return scope_queryset(queryset, info.context.user, "individual__location")


def _by_payroll(queryset: QuerySet, info: Any, args: dict[str, Any]) -> QuerySet:
    payroll = services.visible_payrolls(info.context.user, Payroll.objects.filter(pk=args["payroll_uuid"])).first()
    if payroll is None:
        return queryset.none()
    queryset = queryset.filter(payroll=payroll)
    if args.get("filter_only_unpaid"):
        queryset = queryset.exclude(status__in=(InstructionStatus.PAID, InstructionStatus.RECONCILED))
    return queryset


class BenefitsSummaryGQLType(graphene.ObjectType):
    total_amount_received = graphene.Float(required=True, description="paid, minor units")
    total_amount_due = graphene.Float(required=True, description="not yet paid, minor units")
    total_amount_failed = graphene.Float(required=True)
    total_amount = graphene.Float(required=True)
    count = graphene.Int(required=True)


class PaymentMethodGQLType(graphene.ObjectType):
    name = graphene.String(required=True)


class PaymentMethodListGQLType(graphene.ObjectType):
    payment_methods = graphene.List(graphene.NonNull(PaymentMethodGQLType), required=True)


class Query(graphene.ObjectType):
    payment_cycle = ProtectedConnectionField(PaymentCycleGQLType, permission="payroll.search",
                                             order_fields=["code", "start_date", "end_date", "date_created"])
    payment_point = ProtectedConnectionField(PaymentPointGQLType, permission="payroll.search",
                                             order_fields=["code", "name", "date_created"])
    payment_plan = ProtectedConnectionField(PaymentPlanGQLType, permission="payroll.search",
                                            order_fields=["code", "name", "date_created"])
    payroll = ProtectedConnectionField(PayrollGQLType, permission="payroll.search",
                                       order_fields=["name", "status", "date_created", "control_sum"])
    benefit_consumption_by_payroll = ProtectedConnectionField(
        BenefitConsumptionGQLType, permission="payroll.search", queryset_hook=_by_payroll,
        payroll_uuid=UUID(required=True), filter_only_unpaid=graphene.Boolean(),
        order_fields=["code", "amount", "status", "date_paid", "individual__last_name"],
    )
    benefits_summary = ProtectedField(
        BenefitsSummaryGQLType, permission="payroll.search", payroll_id=UUID(),
        individual_id=UUID(), payment_cycle_uuid=UUID(),
    )
    payment_methods = ProtectedField(PaymentMethodListGQLType, permission="payroll.search")

    def resolve_benefits_summary(self, info: Any, payroll_id: Any = None, individual_id: Any = None,
                                 payment_cycle_uuid: Any = None) -> BenefitsSummaryGQLType:
        payrolls = services.visible_payrolls(info.context.user, Payroll.objects.all())
        rows = BenefitConsumption.objects.filter(payroll__in=payrolls).exclude(status=InstructionStatus.CANCELLED)
        rows = scope_queryset(rows, info.context.user, "individual__location")
        if payroll_id:
            rows = rows.filter(payroll_id=payroll_id)
        if individual_id:
            rows = rows.filter(individual_id=individual_id)
        if payment_cycle_uuid:
            rows = rows.filter(payment_cycle_id=payment_cycle_uuid)
        totals = services.benefits_summary(rows)
        return BenefitsSummaryGQLType(total_amount_received=totals["paid"], total_amount_due=totals["unpaid"],
                                      total_amount_failed=totals["failed"], total_amount=totals["total"],
                                      count=totals["count"])

    def resolve_payment_methods(self, info: Any) -> PaymentMethodListGQLType:
        return PaymentMethodListGQLType(payment_methods=[PaymentMethodGQLType(name=n) for n in payment_methods()])


# --- mutations -------------------------------------------------------------------------------


class CreatePaymentCycleMutation(CoreMutation):
    permission = "payroll.configure"
    payment_cycle = graphene.Field(PaymentCycleGQLType)

    class Input(CoreMutation.Input):
        code = graphene.String(required=True)
        start_date = graphene.Date(required=True)
        end_date = graphene.Date(required=True)
        status = graphene.String()

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        return {"payment_cycle": services.create_cycle(user, **data)}


class CreatePaymentPlanMutation(CoreMutation):
    permission = "payroll.configure"
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
        return {"payment_plan": services.create_plan(user, **data)}


class CreatePaymentPointMutation(CoreMutation):
    """Credentials go in ``config`` as ``{"env": "NAME"}`` references under the deployment's
    ``secret_env_prefix``, and provider URLs must be on its ``outbound_urls`` allow-list; needs
    ``payroll.configure_providers`` and national scope."""

    permission = "payroll.configure_providers"
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
        return {"payment_point": services.create_point(user, **data)}


class UpdatePaymentCycleMutation(CoreMutation):
    """Change a cycle; omitted fields stay; send ``version`` to refuse a stale edit. A CLOSED
    cycle is final; a cycle with payrolls keeps its dates."""

    permission = "payroll.configure"
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
        return {"payment_cycle": services.update_cycle(user, pk, version=version, **data)}


class UpdatePaymentPlanMutation(CoreMutation):
    """Change a plan; omitted fields stay. The rule cannot change while a payroll of the plan
    is pending approval, approved or sending, nor the currency or minor unit once it has
    payrolls (``PLAN_IN_USE``)."""

    permission = "payroll.configure"
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
        return {"payment_plan": services.update_plan(user, pk, version=version, **data)}


class UpdatePaymentPointMutation(CoreMutation):
    """Change a point's name, ``config`` (replaced whole; secrets only as ``{"env": "NAME"}``
    references under the ``secret_env_prefix``, URLs only from ``outbound_urls``) or ``routing``;
    the adaptor cannot change. Needs ``payroll.configure_providers`` and national scope."""

    permission = "payroll.configure_providers"
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
        return {"payment_point": services.update_point(user, pk, version=version, **data)}


class DeleteInput(CoreMutation.Input):
    id = UUID(required=True)
    version = graphene.Int()


def _delete_mutation(name: str, doc: str | None, permission: str, field: str, node: type,
                     action: Any) -> type[CoreMutation]:
    """``input: {id, version}`` → ``action(user, id, version)``, the deleted row as ``field``."""

    def perform(cls: Any, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        return {field: action(user, data["id"], data.get("version"))}

    return type(name, (CoreMutation,), {
        "__doc__": doc, "permission": permission, field: graphene.Field(node),
        "Input": type("Input", (DeleteInput,), {}), "perform": classmethod(perform),
    })


DeletePaymentCycleMutation = _delete_mutation(
    "DeletePaymentCycleMutation", "Soft-delete a cycle that has no payrolls (``CYCLE_IN_USE`` otherwise).",
    "payroll.configure", "payment_cycle", PaymentCycleGQLType, services.delete_cycle)
DeletePaymentPlanMutation = _delete_mutation(
    "DeletePaymentPlanMutation", "Soft-delete a plan that has no payrolls (``PLAN_IN_USE`` otherwise).",
    "payroll.configure", "payment_plan", PaymentPlanGQLType, services.delete_plan)
DeletePaymentPointMutation = _delete_mutation(
    "DeletePaymentPointMutation",
    "Soft-delete a point no payment is still open through (``POINT_IN_USE`` otherwise).",
    "payroll.configure_providers", "payment_point", PaymentPointGQLType, services.delete_point)


class CreatePayrollMutation(CoreMutation):
    """Generate a payroll in a background job (``job``; its result names the payroll and,
    when ``payroll.approve`` is routed to a task group, the approval task; otherwise the payroll
    is approved at once). ``fromFailedInvoicesPayrollId`` re-issues another payroll's failed
    payments instead. What can be refused before the job (unknown plan, cycle or location, a
    cycle not ACTIVE, nobody left to pay, a beneficiary no payment point serves, an approval
    route to a task group that does not exist or has no other checker) is refused here, with
    nothing started."""

    permission = "payroll.create"
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
        failed_of = data.pop("from_failed_invoices_payroll_id", None)
        if failed_of:
            request = services.reissue_request(user, failed_of, data.get("name"))
            services.check_payroll_request(user, **request)
            params: dict[str, Any] = {"from_failed_payroll_id": str(failed_of), "name": request["name"]}
        else:
            missing = [k for k in ("payment_plan_id", "payment_cycle_id") if not data.get(k)]
            if missing:
                raise ServiceError("REQUIRED", "paymentPlanId and paymentCycleId are required.", "paymentPlanId")
            services.check_payroll_request(user, **data)
            params = {k: (str(v) if v is not None and k.endswith("_id") else v) for k, v in data.items()
                      if k != "client_mutation_id"}
            params["location_ids"] = [str(i) for i in data.get("location_ids") or []]
        if needs_approval("payroll.approve"):
            check_can_request(user, "payroll.approve")  # not a job that would end unable to ask
        return {"job": start_job("payroll.generate", params, user)}


class PayrollIdInput(CoreMutation.Input):
    id = UUID(required=True)


class MakePaymentForPayrollMutation(CoreMutation):
    """Start (or restart) sending an approved payroll to its providers in a background job."""

    permission = "payroll.pay"
    payroll = graphene.Field(PayrollGQLType)
    job = graphene.Field(JobType)

    class Input(PayrollIdInput):
        pass

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        payroll = services.start_sending(user, data["id"])
        return {"payroll": payroll, "job": start_job("payroll.send", {"payroll_id": str(payroll.pk)}, user)}


class ClosePayrollMutation(CoreMutation):
    """Close (reconcile) a paid payroll, or ask for approval when ``payroll.reconcile`` is routed
    to checkers (``task``; the payroll is closed when they approve)."""

    permission = "payroll.close"
    payroll = graphene.Field(PayrollGQLType)
    task = graphene.Field("core.approvals.schema.TaskGQLType")

    class Input(PayrollIdInput):
        pass

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        from core.models import ApprovalTask

        done = services.close_payroll(user, data["id"])
        if isinstance(done, ApprovalTask):
            return {"task": done, "payroll": services.get_payroll(user, data["id"])}
        return {"payroll": done}


class RejectPayrollMutation(CoreMutation):
    permission = "payroll.approve"
    payroll = graphene.Field(PayrollGQLType)

    class Input(PayrollIdInput):
        pass

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        return {"payroll": services.reject_payroll(user, data["id"])}


DeletePayrollMutation = _delete_mutation(
    "DeletePayrollMutation", None, "payroll.delete", "payroll", PayrollGQLType, services.delete_payroll)


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
