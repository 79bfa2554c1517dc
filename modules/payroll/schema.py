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

from core.graphql.choices import ChoiceCodeFilter, ChoiceCodesFilter, ChoiceTextFilter, choice_enum
from core.graphql.fields import (
    ProtectedConnectionField,
    ProtectedField,
    once_per_page,
    select_list_selection,
)
from core.graphql.jobs import JobType  # noqa: F401 - job fields resolve to it
from core.graphql.openimis import request_speaks_openimis, speaks_openimis
from core.graphql.scalars import UUID
from core.graphql.types import (
    CoreNode,
    CountableConnection,
    UserType,  # noqa: F401 - user fields resolve to it
)
from modules.individual.schema import GroupGQLType, IndividualGQLType  # noqa: F401 - recipients resolve to them
from modules.location.services import in_scope, scope_queryset
from modules.payroll.adaptors import payment_methods
from modules.payroll.models import (
    BenefitConsumption,
    CycleStatus,
    InstructionStatus,
    PaymentCycle,
    PaymentPlan,
    PaymentPoint,
    Payroll,
    PayrollStatus,
    effective_status,
    effective_status_q,
)
from modules.payroll.permissions import (
    PAYROLL_SEARCH,
)
from modules.payroll.services import selectors
from modules.social_protection.schema import BenefitPlanGQLType

AUDIT = ("id", "json_ext", "is_deleted", "version", "date_created", "date_updated", "user_created", "user_updated")


PaymentCycleStatus = choice_enum("PaymentCycleStatus", CycleStatus, "Where a payment cycle stands.")
# openIMIS's words for the same facts, answered at its address (core.graphql.openimis): four
# payroll statuses, and its payment statuses; with the payment method named as its strategies.
OPENIMIS_PAYROLL_WORDS = {
    PayrollStatus.APPROVED: "APPROVE_FOR_PAYMENT", PayrollStatus.SENDING: "APPROVE_FOR_PAYMENT",
    PayrollStatus.SENT: "APPROVE_FOR_PAYMENT", PayrollStatus.PARTIALLY_PAID: "APPROVE_FOR_PAYMENT",
    PayrollStatus.PAID: "APPROVE_FOR_PAYMENT",
}
OPENIMIS_PAYMENT_WORDS = {
    InstructionStatus.APPROVED: "APPROVE_FOR_PAYMENT", InstructionStatus.SENT: "ACCEPTED",
    InstructionStatus.PAID: "RECONCILED", InstructionStatus.FAILED: "REJECTED", InstructionStatus.CANCELLED: "REJECTED",
}
# what openIMIS's payment status picker means, at its address (its RECONCILED: the provider paid)
OPENIMIS_PAYMENT_STATUSES = {
    "APPROVE_FOR_PAYMENT": (InstructionStatus.APPROVED,), "ACCEPTED": (InstructionStatus.SENT,),
    "RECONCILED": (InstructionStatus.PAID, InstructionStatus.RECONCILED),
    "REJECTED": (InstructionStatus.FAILED, InstructionStatus.CANCELLED),
}
OPENIMIS_PAYMENT_METHODS = {"file": "StrategyOfflinePayment", "mobile_money": "StrategyMobilePayment",
                            "g2p_connect": "StrategyOnlinePayment"}

PayrollStatusEnum = choice_enum("PayrollStatus", [
    *PayrollStatus.choices,
    ("APPROVE_FOR_PAYMENT", "openIMIS's word, at /api/graphql: approved and not yet reconciled")],
    "Where a payroll stands.")
BenefitConsumptionStatus = choice_enum("BenefitConsumptionStatus", [
    *InstructionStatus.choices,
    ("APPROVE_FOR_PAYMENT", "openIMIS's word, at /api/graphql: approved, not yet sent"),
    ("ACCEPTED", "openIMIS's word, at /api/graphql: sent, the provider has it"),
    ("REJECTED", "openIMIS's word, at /api/graphql: failed or cancelled")],
    "Where a payment stands (APPROVED for an unsent payment of an approved payroll).")


class PaymentCycleFilter(django_filters.FilterSet):
    status = ChoiceCodeFilter(field_name="status", choices=CycleStatus.choices)

    class Meta:
        model = PaymentCycle
        # (status is declared above; named here to keep the arguments' order)
        fields = {"code": ["exact", "icontains"], "status": ["exact"], "start_date": ["gte", "lte"],
                  "end_date": ["gte", "lte"], "is_deleted": ["exact"]}


class PaymentCycleGQLType(CoreNode):
    class Meta:
        model = PaymentCycle
        interfaces = (graphene.relay.Node,)
        connection_class = CountableConnection
        fields = (*AUDIT, "code", "start_date", "end_date", "status")
        filterset_class = PaymentCycleFilter

    status = graphene.Field(PaymentCycleStatus, required=True)


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

    # (core.graphql.fields.select_selection: the wide columns these resolvers read)
    selection_reads = {"configuredKeys": ("config",), "location": ("routing",)}

    def resolve_configured_keys(self, info: Any) -> list[str]:
        return sorted((self.config or {}).keys())

    # --- openIMIS frontend: a payment point there has one location and a manager (ppm). A coremis
    # point serves the locations its routing names; the one it names is openIMIS's location. It
    # has no manager: who may change a point is a right (payroll.provider.manage), not a person.
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

    # (core.graphql.fields.select_selection: what these resolvers read, joined when asked for)
    selection_reads = {"benefitPlanDetail": ("benefit_plan",), "benefitPlan": ("benefit_plan",)}

    benefit_plan_detail = graphene.Field(BenefitPlanGQLType, required=True, description="the benefit plan it pays")
    # openIMIS's form (its PaymentPlan.benefitPlan): the plan as JSON text, which its payroll screen
    # decodes twice (a JSON string whose content is the plan's JSON), then reads ``id`` from.
    benefit_plan = graphene.String(required=True, description="openIMIS's form of the plan: a JSON string of the "
                                   "plan's JSON (id, uuid, code, name, type, dates, …); use benefitPlanDetail")

    def resolve_benefit_plan_detail(self, info: Any) -> Any:
        return self.benefit_plan

    def resolve_benefit_plan(self, info: Any) -> str:
        return openimis_plan_json(self.benefit_plan)



# openIMIS's payroll statuses are four; its "Approved payrolls" page asks for
# ``status: APPROVE_FOR_PAYMENT``: every approved payroll not yet reconciled.
OPENIMIS_PAYROLL_STATUSES = {
    "APPROVE_FOR_PAYMENT": (PayrollStatus.APPROVED, PayrollStatus.SENDING, PayrollStatus.SENT,
                            PayrollStatus.PARTIALLY_PAID, PayrollStatus.PAID),
}


class PayrollFilter(django_filters.FilterSet):
    uuid = django_filters.UUIDFilter(field_name="id")
    # openIMIS's payroll page asks for one payroll as ``payroll(id: "<uuid>")``
    id = django_filters.UUIDFilter(field_name="id", label="the payroll's UUID (openIMIS's form of uuid)")
    payment_cycle__id = django_filters.UUIDFilter(field_name="payment_cycle_id")
    payment_point__id = django_filters.UUIDFilter(field_name="payment_point_id")
    payment_plan__id = django_filters.UUIDFilter(field_name="payment_plan_id")
    payment_method = django_filters.CharFilter(field_name="payment_point__adaptor")
    # quoted or not (openIMIS's frontend sends ``status: PENDING_APPROVAL``, an enum value)
    status = ChoiceTextFilter(field_name="status", method="filter_status", choices=[
        *PayrollStatus.choices, ("APPROVE_FOR_PAYMENT", "openIMIS: approved, not yet reconciled")])
    status__in = ChoiceCodesFilter(field_name="status", choices=PayrollStatus.choices)

    class Meta:
        model = Payroll
        fields = {"name": ["exact", "icontains"], "status": ["exact", "in"], "is_deleted": ["exact"]}

    def filter_status(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(status__in=OPENIMIS_PAYROLL_STATUSES.get(value, (value,)))


class PayrollGQLType(CoreNode):
    class Meta:
        model = Payroll
        interfaces = (graphene.relay.Node,)
        connection_class = CountableConnection
        filterset_class = PayrollFilter
        fields = (*AUDIT, "name", "payment_plan", "payment_cycle", "payment_point", "location_ids", "follows",
                  "status", "control_count", "control_sum")

    status = graphene.Field(PayrollStatusEnum, required=True)
    payment_method = graphene.String(description="the adaptor of its payment point")
    control_count = graphene.Int(required=True, description="payments generated; for a user with a location "
                                 "scope, those in their locations")
    control_sum = graphene.BigInt(required=True, description="their total in minor units; for a user with a "
                                  "location scope, the total in their locations")

    selection_reads = {"paymentMethod": ("payment_point__adaptor",), "dateValidFrom": ("payment_cycle__start_date",),
                       "dateValidTo": ("payment_cycle__end_date",)}

    def resolve_status(self, info: Any) -> str:
        status = str(self.status)
        return OPENIMIS_PAYROLL_WORDS.get(status, status) if speaks_openimis(info) else status

    def resolve_payment_method(self, info: Any) -> str | None:
        if not self.payment_point_id:
            return None
        adaptor = self.payment_point.adaptor
        return OPENIMIS_PAYMENT_METHODS.get(adaptor, adaptor) if speaks_openimis(info) else adaptor

    # --- openIMIS frontend: a payroll's validity is its payment cycle's period.
    date_valid_from = graphene.Date(description="openIMIS's name: the payment cycle's start date")
    date_valid_to = graphene.Date(description="openIMIS's name: the payment cycle's end date")

    def resolve_date_valid_from(self, info: Any) -> Any:
        return self.payment_cycle.start_date if self.payment_cycle_id else None

    def resolve_date_valid_to(self, info: Any) -> Any:
        return self.payment_cycle.end_date if self.payment_cycle_id else None

    # --- openIMIS frontend: its payroll page reads every payment of the payroll inline (its
    # summary counts them in the browser). Bounded: a national payroll is paged by
    # ``benefitConsumptionByPayroll`` and counted by ``benefitsSummary`` instead.
    benefit_consumption = graphene.List(
        graphene.NonNull("modules.payroll.schema.BenefitConsumptionGQLType"),
        description="openIMIS's field: the payroll's payments in your locations, by code, at most "
                    "COREMIS_INLINE_PAYMENTS_LIMIT (10,000) for the whole request (RESPONSE_TOO_LARGE above it); "
                    "use benefitConsumptionByPayroll and benefitsSummary for larger payrolls")

    def resolve_benefit_consumption(self, info: Any) -> list[Any]:
        by_payroll = once_per_page(self, "benefit_consumption", lambda page: _inline_payments(page, info))
        return by_payroll.get(self.pk, [])

    def resolve_control_count(self, info: Any) -> int:
        return _totals(self, info)[0]

    def resolve_control_sum(self, info: Any) -> int:
        return _totals(self, info)[1]

    @classmethod
    def list_queryset(cls, queryset: QuerySet, info: Any) -> QuerySet:
        # What the request selects, and what its fields read (``selection_reads``), the list
        # joins itself. No field shows the generation report (the job's result does).
        queryset = queryset.defer("generation_report")
        queryset = selectors.visible_payrolls(info.context.user, queryset)
        return selectors.with_scoped_totals(info.context.user, queryset)


def inline_payments_limit() -> int:
    from django.conf import settings

    return int(settings.COREMIS.get("INLINE_PAYMENTS_LIMIT", 10_000))


def _inline_payments(payrolls: list[Payroll], info: Any) -> dict[Any, list[Any]]:
    """The payments of a page of payrolls in one statement, in the caller's scope, at most
    :func:`inline_payments_limit` in all (one more is read to tell that there are more)."""
    from graphql import GraphQLError

    from core.errors import RequestErrorCode

    limit = inline_payments_limit()
    rows = BenefitConsumptionGQLType.list_queryset(
        BenefitConsumption.objects.filter(payroll__in=[p.pk for p in payrolls], is_deleted=False), info)
    rows = select_list_selection(rows, info)
    found = list(rows.order_by("payroll_id", "code")[: limit + 1])
    if len(found) > limit:
        raise GraphQLError(
            f"benefitConsumption lists at most {limit:,} payments per request and these payrolls have more: "
            "page them with benefitConsumptionByPayroll(payrollUuid:) and total them with benefitsSummary.",
            extensions={"code": RequestErrorCode.RESPONSE_TOO_LARGE})
    by_payroll: dict[Any, list[Any]] = {}
    for row in found:
        by_payroll.setdefault(row.payroll_id, []).append(row)
    return by_payroll


def _totals(payroll: Payroll, info: Any) -> tuple[int, int]:
    """Lists compute a scoped user's totals in their own query; a payroll reached another way
    (a payment's ``payroll``) costs one query per payroll in the request, not one per row."""
    cache: dict[Any, tuple[int, int]] = info.context.__dict__.setdefault("_payroll_totals", {})
    if payroll.pk not in cache:
        cache[payroll.pk] = selectors.scoped_totals(info.context.user, payroll)
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
        if request_speaks_openimis(self.request):  # openIMIS's words, as its status picker sends them
            statuses = [ours for word in statuses for ours in OPENIMIS_PAYMENT_STATUSES.get(word, (word,))]
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

    status = graphene.Field(BenefitConsumptionStatus, required=True,
                            description="APPROVED for an unsent payment of an approved payroll")
    amount = graphene.Float(required=True, description="minor units")
    receipt = graphene.String(description="the provider's transaction id (openIMIS name)")

    selection_reads = {"status": ("payroll__status",), "dateValidFrom": ("payroll__payment_cycle__start_date",),
                       "dateValidTo": ("payroll__payment_cycle__end_date",),
                       "dateDue": ("payroll__payment_cycle__end_date",), "type": ("payment_point__adaptor",),
                       "benefitAttachment": ("payroll__name", "code", "amount", "date_paid")}

    def resolve_status(self, info: Any) -> str:
        # ``payroll`` is joined by the lists that show ``status`` (selection_reads)
        status = str(effective_status(self.status, self.payroll.status))
        return OPENIMIS_PAYMENT_WORDS.get(status, status) if speaks_openimis(info) else status

    def resolve_receipt(self, info: Any) -> str:
        return self.provider_transaction_id

    # --- openIMIS frontend: its payment fields. A payment is valid for its payroll's cycle and
    # due by the cycle's end; its ``type`` is how it is paid (the point's adaptor); coremis keeps
    # no photo of a payment, and its bill is the payment itself (no separate invoice).
    date_valid_from = graphene.Date(description="openIMIS's name: the payment cycle's start date")
    date_valid_to = graphene.Date(description="openIMIS's name: the payment cycle's end date")
    date_due = graphene.Date(description="openIMIS's name: the day it is due, its payment cycle's end date")
    type = graphene.String(description="openIMIS's name: how it is paid, its payment point's adaptor")
    photo = graphene.String(description="openIMIS's field; always null (coremis keeps no photo of a payment)")
    benefit_attachment = graphene.List(
        graphene.NonNull(lambda: BenefitAttachmentGQLType), required=True,
        description="openIMIS's field: the payment's bill, one per payment (the payment itself)")

    def resolve_date_valid_from(self, info: Any) -> Any:
        return self.payroll.payment_cycle.start_date

    def resolve_date_valid_to(self, info: Any) -> Any:
        return self.payroll.payment_cycle.end_date

    def resolve_date_due(self, info: Any) -> Any:
        return self.payroll.payment_cycle.end_date

    def resolve_type(self, info: Any) -> str:
        return self.payment_point.adaptor

    def resolve_photo(self, info: Any) -> None:
        return None

    def resolve_benefit_attachment(self, info: Any) -> list[Any]:
        return [self]  # the payment is its own bill (BenefitAttachmentGQLType reads both from it)

    @classmethod
    def list_queryset(cls, queryset: QuerySet, info: Any) -> QuerySet:
        return scope_queryset(queryset, info.context.user, "individual__location")


class BillGQLType(graphene.ObjectType):
    """openIMIS's invoice of a payment; in coremis the payment is its own bill."""

    id = graphene.ID(required=True, description="the payment's UUID")
    code = graphene.String(required=True, description="the payment's reference")
    terms = graphene.String(required=True, description="the payroll's name")
    amount_total = graphene.Float(required=True, description="the amount, minor units")
    date_payed = graphene.Date(description="the day the provider paid it")


def bill_of(payment: BenefitConsumption) -> BillGQLType:
    return BillGQLType(id=str(payment.pk), code=payment.code, terms=payment.payroll.name, amount_total=payment.amount,
                       date_payed=payment.date_paid.date() if payment.date_paid else None)


class BenefitAttachmentFilter(django_filters.FilterSet):
    class Meta:
        model = BenefitConsumption
        fields = {"is_deleted": ["exact"]}


class BenefitAttachmentGQLType(CoreNode):
    """openIMIS's pairing of a payment (``benefit``) with its invoice (``bill``); a coremis
    payment is its own bill, so there is one per payment. Its reconciliation summary lists them
    (``benefitAttachmentByPayroll``)."""

    class Meta:
        model = BenefitConsumption
        name = "BenefitAttachmentGQLType"
        interfaces = (graphene.relay.Node,)
        connection_class = CountableConnection
        filterset_class = BenefitAttachmentFilter
        fields = ("id",)
        skip_registry = True  # BenefitConsumptionGQLType is the payment's type everywhere else

    benefit = graphene.Field(BenefitConsumptionGQLType, required=True)
    bill = graphene.Field(BillGQLType, required=True)
    # ``benefit`` is this same row, shown as a payment: what its fields read, joined whole
    selection_reads = {"benefit": ("individual", "payroll__status", "payroll__payment_cycle", "payment_point",
                                   "json_ext"),
                       "bill": ("payroll__name", "code", "amount", "date_paid")}

    def resolve_benefit(self, info: Any) -> Any:
        return self

    def resolve_bill(self, info: Any) -> BillGQLType:
        return bill_of(self)

    @classmethod
    def list_queryset(cls, queryset: QuerySet, info: Any) -> QuerySet:
        return BenefitConsumptionGQLType.list_queryset(queryset, info)


def _by_payroll(queryset: QuerySet, info: Any, args: dict[str, Any]) -> QuerySet:
    if not selectors.is_visible_payroll(info.context.user, args["payroll_uuid"]):
        return queryset.none()
    queryset = queryset.filter(payroll_id=args["payroll_uuid"])
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
    payment_cycle = ProtectedConnectionField(PaymentCycleGQLType, permission=PAYROLL_SEARCH,
                                             order_fields=["code", "start_date", "end_date", "date_created"])
    payment_point = ProtectedConnectionField(PaymentPointGQLType, permission=PAYROLL_SEARCH,
                                             order_fields=["code", "name", "date_created"])
    payment_plan = ProtectedConnectionField(PaymentPlanGQLType, permission=PAYROLL_SEARCH,
                                            order_fields=["code", "name", "date_created"])
    payroll = ProtectedConnectionField(PayrollGQLType, permission=PAYROLL_SEARCH,
                                       order_fields=["name", "status", "date_created", "control_sum"])
    benefit_consumption_by_payroll = ProtectedConnectionField(
        BenefitConsumptionGQLType, permission=PAYROLL_SEARCH, queryset_hook=_by_payroll,
        payroll_uuid=UUID(required=True), filter_only_unpaid=graphene.Boolean(),
        order_fields=["code", "amount", "status", "date_paid", "individual__last_name"],
    )
    benefit_attachment_by_payroll = ProtectedConnectionField(
        BenefitAttachmentGQLType, permission=PAYROLL_SEARCH, queryset_hook=_by_payroll,
        payroll_uuid=UUID(required=True), filter_only_unpaid=graphene.Boolean(),
        order_fields=["code", "status"],
        description="openIMIS's reconciliation summary: a payroll's payments with their bills, in your locations",
    )
    benefits_summary = ProtectedField(
        BenefitsSummaryGQLType, permission=PAYROLL_SEARCH, payroll_id=UUID(),
        individual_id=UUID(), payment_cycle_uuid=UUID(),
    )
    payment_methods = ProtectedField(PaymentMethodListGQLType, permission=PAYROLL_SEARCH)

    def resolve_benefits_summary(self, info: Any, payroll_id: Any = None, individual_id: Any = None,
                                 payment_cycle_uuid: Any = None) -> BenefitsSummaryGQLType:
        payrolls = selectors.visible_payrolls(info.context.user, Payroll.objects.all())
        rows = BenefitConsumption.objects.filter(payroll__in=payrolls).exclude(status=InstructionStatus.CANCELLED)
        rows = scope_queryset(rows, info.context.user, "individual__location")
        if payroll_id:
            rows = rows.filter(payroll_id=payroll_id)
        if individual_id:
            rows = rows.filter(individual_id=individual_id)
        if payment_cycle_uuid:
            rows = rows.filter(payment_cycle_id=payment_cycle_uuid)
        totals = selectors.benefits_summary(rows)
        return BenefitsSummaryGQLType(total_amount_received=totals["paid"], total_amount_due=totals["unpaid"],
                                      total_amount_failed=totals["failed"], total_amount=totals["total"],
                                      count=totals["count"])

    def resolve_payment_methods(self, info: Any) -> PaymentMethodListGQLType:
        names = payment_methods()
        if speaks_openimis(info):  # the names its payroll form picks from, as its payrolls say them
            names = [OPENIMIS_PAYMENT_METHODS.get(n, n) for n in names]
        return PaymentMethodListGQLType(payment_methods=[PaymentMethodGQLType(name=n) for n in names])
