"""Payment cycles, plans and points; payroll generation, approval and closing.

Locking: every status change of a payroll is a conditional ``UPDATE … WHERE status IN``, so
two requests (or a request and the sending job) racing on the same payroll cannot both move
it; the loser gets ``INVALID_PAYROLL_STATUS``.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connection, transaction
from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    QuerySet,
    Subquery,
    Sum,
    UUIDField,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from core import services
from core.errors import FieldError, NotFound, ServiceError, ValidationFailed
from core.permissions import require
from modules.individual.models import GroupIndividual
from modules.location.models import Location
from modules.location.services import scope_queryset, within_paths
from modules.payroll import rules
from modules.payroll.adaptors import payment_methods
from modules.payroll.adaptors.base import config_problems
from modules.payroll.models import (
    RELEASED_STATUSES,
    BenefitConsumption,
    CycleStatus,
    InstructionStatus,
    PaymentCycle,
    PaymentPlan,
    PaymentPoint,
    Payroll,
    PayrollStatus,
)
from modules.social_protection.models import BeneficiaryStatus, PlanType
from modules.social_protection.services import beneficiary_model

# --- cycles, plans, points -------------------------------------------------------------------


def _get(model: Any, pk: Any, what: str) -> Any:
    return _get_from(model.objects.all(), pk, what)


def _code_taken(model: Any, code: str, what: str) -> list[FieldError]:
    if not (code or "").strip():
        return [FieldError("code", "REQUIRED", "The code is required.")]
    if model.objects.filter(code=code.strip()).exists():
        return [FieldError("code", "CODE_TAKEN", f"Another {what} has the code '{code}'.")]
    return []


def create_cycle(user: Any, *, code: str, start_date: datetime.date, end_date: datetime.date,
                 status: str | None = None) -> PaymentCycle:
    require(user, "payroll.configure")
    errors = _code_taken(PaymentCycle, code, "payment cycle")
    if end_date < start_date:
        errors.append(FieldError("endDate", "BEFORE_START", "The cycle ends before it starts."))
    status = status or CycleStatus.ACTIVE
    if status not in CycleStatus.values:
        errors.append(FieldError("status", "INVALID", f"status is one of {', '.join(CycleStatus.values)}."))
    if errors:
        raise ValidationFailed(errors)
    return services.create(PaymentCycle(code=code.strip(), start_date=start_date, end_date=end_date, status=status), user)


def create_plan(user: Any, *, code: str, name: str, benefit_plan_id: Any, calculation_rule: Any,
                currency: str, minor_unit: int = 2, json_ext: Any = None) -> PaymentPlan:
    require(user, "payroll.configure")
    from modules.social_protection.services import get_plan

    benefit_plan = get_plan(benefit_plan_id)
    errors = _code_taken(PaymentPlan, code, "payment plan")
    if not (name or "").strip():
        errors.append(FieldError("name", "REQUIRED", "The name is required."))
    if not (isinstance(currency, str) and len(currency) == 3 and currency.isalpha()):
        errors.append(FieldError("currency", "INVALID", "The currency is a three-letter ISO 4217 code."))
    if not 0 <= minor_unit <= 4:
        errors.append(FieldError("minorUnit", "INVALID", "The minor unit is 0 to 4 digits."))
    if errors:
        raise ValidationFailed(errors)
    rules.compile_rule(calculation_rule, benefit_plan.type, minor_unit)
    plan = PaymentPlan(code=code.strip(), name=name.strip(), benefit_plan=benefit_plan,
                       calculation_rule=calculation_rule, currency=currency.upper(), minor_unit=minor_unit,
                       json_ext=json_ext)
    return services.create(plan, user)


def create_point(user: Any, *, code: str, name: str = "", adaptor: str, config: Any = None,
                 routing: Any = None) -> PaymentPoint:
    require(user, "payroll.configure")
    errors = _code_taken(PaymentPoint, code, "payment point")
    if adaptor not in payment_methods():
        errors.append(FieldError("adaptor", "UNKNOWN_ADAPTOR",
                                 f"'{adaptor}' is not one of {', '.join(payment_methods())}."))
    for problem in config_problems(config or {}):
        errors.append(FieldError("config", "LITERAL_SECRET", problem))
    errors += _routing_problems(routing or {})
    if errors:
        raise ValidationFailed(errors)
    point = PaymentPoint(code=code.strip(), name=(name or code).strip(), adaptor=adaptor,
                         config=config or {}, routing=routing or {})
    return services.create(point, user)


def _routing_problems(routing: Any) -> list[FieldError]:
    if not isinstance(routing, dict) or set(routing) - {"locations", "priority"}:
        return [FieldError("routing", "INVALID", 'routing is {"locations": [ids], "priority": n}.')]
    ids = routing.get("locations", [])
    try:
        found = Location.objects.filter(pk__in=ids).count()
    except Exception:
        found = -1
    if not isinstance(ids, list) or found != len(set(map(str, ids))):
        return [FieldError("routing", "UNKNOWN_LOCATION", "routing.locations names a location that does not exist.")]
    return []


def get_payroll(user: Any, pk: Any, *, for_update: bool = False) -> Payroll:
    rows = visible_payrolls(user, Payroll.objects.all())
    if for_update:
        rows = Payroll.objects.select_for_update().filter(pk__in=rows.values("pk"))
    return _get_from(rows, pk, "Payroll")


def _get_from(rows: QuerySet, pk: Any, what: str) -> Any:
    try:
        row = rows.filter(pk=pk).first()
    except (ValueError, TypeError, DjangoValidationError):
        row = None
    if row is None:
        raise NotFound(what, pk)
    return row


# --- generation ------------------------------------------------------------------------------


def _point_expression(payroll: Payroll, plan_type: str) -> Any:
    """Which payment point pays a row: the payroll's own, or the first routing rule covering
    the beneficiary's location (lower priority first)."""
    if payroll.payment_point_id:
        return Value(str(payroll.payment_point_id), output_field=CharField())
    location = "group__location" if plan_type == PlanType.GROUP else "individual__location"
    points = sorted(PaymentPoint.objects.exclude(routing={}),
                    key=lambda p: (p.routing.get("priority", 0), p.code))
    whens = []
    for point in points:
        paths = list(Location.objects.filter(pk__in=point.routing.get("locations", [])).values_list("path", flat=True))
        if paths:
            whens.append(When(within_paths(paths, location), then=Value(str(point.pk))))
    return Case(*whens, default=Value(None), output_field=CharField())


def _candidates(user: Any, payroll: Payroll, plan_type: str, selection: QuerySet | None = None) -> QuerySet:
    """Active beneficiaries of the plan, in the payroll's locations and the user's scope, not
    yet holding a payment in this cycle."""
    plan = payroll.payment_plan
    model = beneficiary_model(plan.benefit_plan)
    location = "group__location" if plan_type == PlanType.GROUP else "individual__location"
    rows = model.objects.filter(benefit_plan_id=plan.benefit_plan_id, status=BeneficiaryStatus.ACTIVE)
    rows = rows.filter(**{("group__is_deleted" if plan_type == PlanType.GROUP else "individual__is_deleted"): False})
    if payroll.location_ids:
        paths = list(Location.objects.filter(pk__in=payroll.location_ids).values_list("path", flat=True))
        rows = rows.filter(within_paths(paths, location))
    if user is not None:  # None is the system itself, which sees everyone
        rows = scope_queryset(rows, user, location)
    if selection is not None:
        rows = rows.filter(pk__in=selection)
    held = BenefitConsumption.objects.filter(payment_cycle_id=payroll.payment_cycle_id, beneficiary_id=OuterRef("pk"))
    return rows.exclude(Exists(held.exclude(status__in=RELEASED_STATUSES)))


def _recipient_expression(plan_type: str) -> Any:
    if plan_type != PlanType.GROUP:
        return ExpressionWrapper(F("individual_id"), output_field=UUIDField())
    primary = GroupIndividual.objects.filter(group_id=OuterRef("group_id"), recipient_type="PRIMARY").values("individual_id")
    # A household without a designated primary recipient is paid through its head.
    return Coalesce(Subquery(primary[:1], output_field=UUIDField()), F("group__head_id"), output_field=UUIDField())


def generate(user: Any, payroll: Payroll, selection: QuerySet | None = None) -> dict[str, int]:
    """Insert one CREATED instruction per candidate in one ``INSERT … SELECT`` and set the
    payroll's control totals from what was inserted.

    ``ON CONFLICT DO NOTHING`` on the one-payment-per-cycle index means a concurrent
    generation for the same cycle cannot pay anyone twice: the second one skips them.
    """
    plan = payroll.payment_plan
    plan_type = plan.benefit_plan.type
    compiled = rules.compile_rule(plan.calculation_rule, plan_type, plan.minor_unit)
    rows = _candidates(user, payroll, plan_type, selection).annotate(
        x_amount=rules.amount_expression(compiled, plan_type),
        x_recipient=_recipient_expression(plan_type),
        x_point=_point_expression(payroll, plan_type),
        x_id=F("pk"),
        x_group=F("group_id") if plan_type == PlanType.GROUP else Value(None, output_field=CharField()),
    )
    unrouted = rows.filter(x_point__isnull=True).count()
    if unrouted:
        raise ServiceError("NO_PAYMENT_POINT",
                           f"{unrouted} beneficiaries are in no payment point's locations; choose a payment "
                           "point for the payroll or extend the routing.", "paymentPointId")
    no_recipient = rows.filter(x_recipient__isnull=True).count()
    rows = rows.filter(x_recipient__isnull=False).values("x_id", "x_amount", "x_recipient", "x_point", "x_group")
    select_sql, params = rows.query.sql_with_params()
    uid = getattr(user, "pk", None)
    table = BenefitConsumption._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH inserted AS (INSERT INTO {table} (id, date_created, date_updated, user_created_id, "
            "user_updated_id, version, is_deleted, code, payroll_id, payment_cycle_id, beneficiary_id, "
            "individual_id, group_id, payment_point_id, amount, currency, status, send_attempts, "
            "provider_transaction_id, status_message) "
            "SELECT gen_random_uuid(), now(), now(), %s, %s, 1, false, "
            "'PAY-' || upper(replace(gen_random_uuid()::text, '-', '')), %s, %s, s.x_id, "
            "s.x_recipient, s.x_group::uuid, s.x_point::uuid, s.x_amount, %s, 'CREATED', 0, '', '' "
            f"FROM ({select_sql}) s "
            "ON CONFLICT (payment_cycle_id, beneficiary_id) WHERE NOT is_deleted "
            "AND NOT status IN ('FAILED', 'CANCELLED') DO NOTHING RETURNING amount) "
            "SELECT count(*), coalesce(sum(amount), 0) FROM inserted",
            [uid, uid, payroll.pk, payroll.payment_cycle_id, plan.currency, *params],
        )
        count, total = cursor.fetchone()
    Payroll.objects.filter(pk=payroll.pk).update(control_count=count, control_sum=total)
    payroll.control_count, payroll.control_sum = int(count), int(total)
    return {"count": int(count), "sum": int(total), "skipped_no_recipient": no_recipient}


def actual_totals(payroll: Payroll) -> tuple[int, int]:
    totals = BenefitConsumption.objects.filter(payroll=payroll).exclude(status=InstructionStatus.CANCELLED).aggregate(
        n=Count("id"), s=Coalesce(Sum("amount"), 0))
    return int(totals["n"]), int(totals["s"])


def check_control_totals(payroll: Payroll) -> None:
    """The instructions must still add up to what generation recorded: any row added, removed
    or changed since (by hand, by a bug) stops the payroll before money moves."""
    count, total = actual_totals(payroll)
    if (count, total) != (payroll.control_count, payroll.control_sum):
        raise ServiceError(
            "CONTROL_TOTALS_MISMATCH",
            f"The payroll's instructions add up to {count} payments totalling {total}, but its control "
            f"totals say {payroll.control_count} totalling {payroll.control_sum}. Nothing was changed.",
        )


def create_payroll(user: Any, *, name: str, payment_plan_id: Any, payment_cycle_id: Any,
                   payment_point_id: Any = None, location_ids: list[Any] | None = None,
                   json_ext: Any = None, follows: Payroll | None = None,
                   selection: QuerySet | None = None) -> tuple[Payroll, dict[str, int]]:
    """Create a payroll in PENDING_APPROVAL with its instructions and control totals."""
    require(user, "payroll.create")
    plan = _get(PaymentPlan, payment_plan_id, "Payment plan")
    cycle = _get(PaymentCycle, payment_cycle_id, "Payment cycle")
    point = _get(PaymentPoint, payment_point_id, "Payment point") if payment_point_id else None
    errors: list[FieldError] = []
    if not (name or "").strip():
        errors.append(FieldError("name", "REQUIRED", "The name is required."))
    if cycle.status != CycleStatus.ACTIVE:
        errors.append(FieldError("paymentCycleId", "CYCLE_NOT_ACTIVE", f"The payment cycle is {cycle.status}."))
    ids = [str(i) for i in location_ids or []]
    if ids and Location.objects.filter(pk__in=ids).count() != len(set(ids)):
        errors.append(FieldError("locationIds", "UNKNOWN_LOCATION", "A location does not exist."))
    if errors:
        raise ValidationFailed(errors)
    with transaction.atomic():
        payroll = services.create(Payroll(
            name=name.strip(), payment_plan=plan, payment_cycle=cycle, payment_point=point,
            location_ids=ids, json_ext=json_ext, follows=follows), user)
        result = generate(user, payroll, selection)
        if result["count"] == 0:
            raise ServiceError("NOTHING_TO_PAY", "No active beneficiary is left to pay in this cycle.")
        if follows is not None:
            _link_reissues(payroll, follows)
    return payroll, result


def _link_reissues(payroll: Payroll, follows: Payroll) -> None:
    """Each re-issued payment points at the failed one it replaces (one UPDATE)."""
    table = BenefitConsumption._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} b SET reissue_of_id = f.id FROM {table} f "
            "WHERE b.payroll_id = %s AND f.payroll_id = %s AND f.beneficiary_id = b.beneficiary_id "
            "AND f.status = 'FAILED'",
            [payroll.pk, follows.pk],
        )


def _move(payroll: Payroll, user: Any, sources: tuple[str, ...], target: str) -> Payroll:
    moved = Payroll.objects.filter(pk=payroll.pk, status__in=sources).update(
        status=target, version=F("version") + 1, date_updated=timezone.now(), user_updated_id=getattr(user, "pk", None))
    if not moved:
        current = Payroll.all_objects.values_list("status", flat=True).get(pk=payroll.pk)
        raise ServiceError("INVALID_PAYROLL_STATUS",
                           f"The payroll is {current}; this needs it to be {' or '.join(sources)}.", "status")
    payroll.refresh_from_db()
    return payroll


def _move_instructions(payroll: Payroll, user: Any, sources: tuple[str, ...], target: str) -> int:
    return BenefitConsumption.objects.filter(payroll=payroll, status__in=sources).update(
        status=target, version=F("version") + 1, date_updated=timezone.now(), user_updated_id=getattr(user, "pk", None))


def approve_payroll(user: Any, payroll_id: Any) -> Payroll:
    """PENDING_APPROVAL → APPROVED once the control totals still hold."""
    require(user, "payroll.approve")
    return mark_approved(user, payroll_id)


def mark_approved(user: Any, payroll_id: Any) -> Payroll:
    """The approval itself, for a deployment where payrolls need no checker (the maker's
    ``createPayroll`` approves) and for an approved task."""
    with transaction.atomic():
        payroll = get_payroll(None, payroll_id, for_update=True)
        check_control_totals(payroll)
        payroll = _move(payroll, user, (PayrollStatus.PENDING_APPROVAL,), PayrollStatus.APPROVED)
        _move_instructions(payroll, user, (InstructionStatus.CREATED,), InstructionStatus.APPROVED)
    return payroll


def reject_payroll(user: Any, payroll_id: Any) -> Payroll:
    """A rejected payroll releases its beneficiaries: another payroll may pay them this cycle."""
    require(user, "payroll.approve")
    with transaction.atomic():
        payroll = get_payroll(user, payroll_id, for_update=True)
        payroll = _move(payroll, user, (PayrollStatus.PENDING_APPROVAL, PayrollStatus.APPROVED),
                        PayrollStatus.REJECTED)
        _move_instructions(payroll, user, (InstructionStatus.CREATED, InstructionStatus.APPROVED),
                           InstructionStatus.CANCELLED)
    return payroll


def delete_payroll(user: Any, payroll_id: Any, version: int | None = None) -> Payroll:
    """Only a payroll from which nothing was sent can be deleted."""
    require(user, "payroll.delete")
    with transaction.atomic():
        payroll = get_payroll(user, payroll_id, for_update=True)
        if payroll.status not in (PayrollStatus.PENDING_APPROVAL, PayrollStatus.REJECTED):
            raise ServiceError("INVALID_PAYROLL_STATUS",
                               f"A {payroll.status} payroll cannot be deleted; only pending or rejected ones.", "status")
        _move_instructions(payroll, user, (InstructionStatus.CREATED,), InstructionStatus.CANCELLED)
        BenefitConsumption.objects.filter(payroll=payroll).update(is_deleted=True, version=F("version") + 1)
        return services.set_deleted(payroll, user, True, version)


def close_payroll(user: Any, payroll_id: Any) -> Payroll:
    """PAID / PARTIALLY_PAID → RECONCILED; paid instructions become RECONCILED."""
    require(user, "payroll.close")
    with transaction.atomic():
        payroll = get_payroll(user, payroll_id, for_update=True)
        payroll = _move(payroll, user, (PayrollStatus.PAID, PayrollStatus.PARTIALLY_PAID), PayrollStatus.RECONCILED)
        _move_instructions(payroll, user, (InstructionStatus.PAID,), InstructionStatus.RECONCILED)
    return payroll


def start_sending(user: Any, payroll_id: Any) -> Payroll:
    """APPROVED → SENDING; a payroll left SENDING (crash, unknown outcomes) may be restarted."""
    require(user, "payroll.pay")
    with transaction.atomic():
        payroll = get_payroll(user, payroll_id, for_update=True)
        check_control_totals(payroll)
        if payroll.status != PayrollStatus.SENDING:
            payroll = _move(payroll, user, (PayrollStatus.APPROVED,), PayrollStatus.SENDING)
    return payroll


def reissue_failed(user: Any, payroll_id: Any, name: str | None = None) -> tuple[Payroll, dict[str, int]]:
    """A follow-up payroll, in the same cycle, for the beneficiaries whose payment failed."""
    require(user, "payroll.create")
    original = get_payroll(user, payroll_id)
    failed = BenefitConsumption.objects.filter(payroll=original, status=InstructionStatus.FAILED).values("beneficiary_id")
    if not failed.exists():
        raise ServiceError("NOTHING_TO_REISSUE", "No payment of this payroll failed.")
    return create_payroll(
        user, name=name or f"{original.name} (re-issue)", payment_plan_id=original.payment_plan_id,
        payment_cycle_id=original.payment_cycle_id, payment_point_id=original.payment_point_id,
        location_ids=original.location_ids, follows=original, selection=failed,
    )


# --- summaries -------------------------------------------------------------------------------


def benefits_summary(queryset: QuerySet) -> dict[str, int]:
    """Amounts by outcome over instructions (openIMIS ``benefitsSummary``), in minor units."""
    totals = queryset.aggregate(
        total=Coalesce(Sum("amount"), 0),
        paid=Coalesce(Sum("amount", filter=_q(InstructionStatus.PAID, InstructionStatus.RECONCILED)), 0),
        failed=Coalesce(Sum("amount", filter=_q(InstructionStatus.FAILED)), 0),
        count=Count("id"),
    )
    totals["unpaid"] = totals["total"] - totals["paid"]
    return {k: int(v) for k, v in totals.items()}


def _q(*statuses: str) -> Any:
    from django.db.models import Q

    return Q(status__in=statuses)


def visible_payrolls(user: Any, queryset: QuerySet) -> QuerySet:
    """Payrolls limited to locations outside the user's scope are hidden; national users see all."""
    from modules.location.services import scope_paths

    if user is None:  # the system itself (approved tasks, jobs without a user)
        return queryset
    paths = scope_paths(user)
    if paths is None:
        return queryset
    return queryset.filter(Exists(BenefitConsumption.objects.filter(payroll=OuterRef("pk")).filter(
        within_paths(paths, "individual__location"))))

