"""Payment cycles, plans and points; payroll generation, approval and closing.

Locking: every status change of a payroll is a conditional ``UPDATE … WHERE status IN``, so
two requests (or a request and the sending job) racing on the same payroll cannot both move
it; the loser gets ``INVALID_PAYROLL_STATUS``.
"""

from __future__ import annotations

import datetime
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    F,
    OuterRef,
    QuerySet,
    Subquery,
    Sum,
    UniqueConstraint,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from core import services
from core.approvals.services import needs_approval, request_approval
from core.errors import CoreErrorCode, FieldError, NotFound, ServiceError, ValidationFailed
from core.permissions import require
from modules.individual.models import Group, GroupIndividual, Individual
from modules.location.models import Location
from modules.location.services import (
    in_scope,
    require_all_in_scope,
    require_national,
    scope_paths,
    scope_queryset,
    within_paths,
)
from modules.payroll import adaptors, rules
from modules.payroll.adaptors import payment_methods
from modules.payroll.adaptors.base import config_problems, reference_problems, url_problems
from modules.payroll.errors import PayrollErrorCode
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
from modules.payroll.permissions import (
    CONFIGURATION_MANAGE,
    PAYROLL_APPROVE,
    PAYROLL_CLOSE,
    PAYROLL_CREATE,
    PAYROLL_DELETE,
    PAYROLL_PAY,
    PROVIDER_MANAGE,
)
from modules.social_protection.models import BeneficiaryStatus, BenefitPlan, PlanType
from modules.social_protection.services import beneficiary_model

# --- cycles, plans, points -------------------------------------------------------------------
#
# Changes and deletes lock the row (FOR UPDATE) before checking their rules against the
# payrolls and payments using it; generation holds the rows it reads FOR SHARE until it
# commits (``_held``). So a change either commits before a generation reads the
# configuration, or waits for the generation and then sees its payroll.

# A payroll in these statuses still has its amounts ahead of it: approval and sending use
# what generation computed, with the plan's minor unit.
UNFINISHED_PAYROLLS = (PayrollStatus.PENDING_APPROVAL, PayrollStatus.APPROVED, PayrollStatus.SENDING)
# Payments a provider may still be asked to make, or is making, through their payment point.
OPEN_INSTRUCTIONS = (InstructionStatus.CREATED, InstructionStatus.SENT)

CYCLE_FIELDS = ("code", "start_date", "end_date", "status")
PLAN_FIELDS = ("name", "calculation_rule", "currency", "minor_unit", "json_ext")
POINT_FIELDS = ("name", "config", "routing")

# Who may configure what. Cycles, payment plans and payment points apply to every location at
# once, so changing them needs national scope; payment points also hold the providers' URLs and
# credential references, a separately granted right (``payroll.configure_providers``).
# A payment is where its recipient lives: lists, totals and payroll-wide actions all scope
# payments by this.
PAYMENT_LOCATION = "individual__location"


def _may_configure(user: Any, permission: str, what: str) -> None:
    require(user, permission)
    require_national(user, what)


def _get(model: Any, pk: Any, what: str) -> Any:
    return _get_from(model.objects.all(), pk, what)


def _locked(model: Any, pk: Any, what: str, version: int | None) -> Any:
    """The live row, locked until the transaction ends; a stale ``version`` is refused before
    any other rule is checked."""
    row = _get_from(model.objects.select_for_update(), pk, what)
    services.check_version(row, version)
    return row


def _held(model: Any, pk: Any, what: str) -> Any:
    """The live row, read after taking a FOR SHARE lock that lasts until the transaction ends
    (other generations share it; a change or delete waits for it, or it waits for them)."""
    row = _get(model, pk, what)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {model._meta.db_table} WHERE id = %s AND NOT is_deleted FOR SHARE", [row.pk])
        if cursor.fetchone() is None:  # deleted while we waited
            raise NotFound(what, pk)
    row.refresh_from_db()
    return row


def _code_taken(model: Any, code: Any, what: str, exclude: Any = None) -> list[FieldError]:
    if not isinstance(code, str) or not code.strip():
        return [FieldError("code", CoreErrorCode.REQUIRED, "The code is required.")]
    rows = model.objects.filter(code=code.strip())
    if exclude is not None:
        rows = rows.exclude(pk=exclude)
    if rows.exists():
        return [FieldError("code", PayrollErrorCode.CODE_TAKEN, f"Another {what} has the code '{code.strip()}'.")]
    return []


def _unique_code(model: Any, what: str, code: str, write: Any) -> Any:
    """Two writers can pass ``_code_taken`` together; the partial unique index decides, and the
    loser gets CODE_TAKEN rather than a crash."""
    constraints = {c.name for c in model._meta.constraints if isinstance(c, UniqueConstraint) and c.fields == ("code",)}
    try:
        with transaction.atomic():
            return write()
    except IntegrityError as exc:
        if getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None) not in constraints:
            raise
        raise ValidationFailed([FieldError("code", PayrollErrorCode.CODE_TAKEN, f"Another {what} has the code '{code.strip()}'.")]) from exc


def _cycle_problems(values: dict[str, Any], exclude: Any = None) -> list[FieldError]:
    errors = _code_taken(PaymentCycle, values["code"], "payment cycle", exclude)
    start, end = values["start_date"], values["end_date"]
    for field, value in (("startDate", start), ("endDate", end)):
        if value is None:
            errors.append(FieldError(field, CoreErrorCode.REQUIRED, f"{field} is required."))
    if start is not None and end is not None and end < start:
        errors.append(FieldError("endDate", PayrollErrorCode.BEFORE_START, "The cycle ends before it starts."))
    if values["status"] not in CycleStatus.values:
        errors.append(FieldError("status", CoreErrorCode.INVALID, f"status is one of {', '.join(CycleStatus.values)}."))
    return errors


def create_cycle(user: Any, *, code: str, start_date: datetime.date, end_date: datetime.date,
                 status: str | None = None) -> PaymentCycle:
    _may_configure(user, CONFIGURATION_MANAGE, "Creating a payment cycle")
    status = status or CycleStatus.ACTIVE
    errors = _cycle_problems({"code": code, "start_date": start_date, "end_date": end_date, "status": status})
    if errors:
        raise ValidationFailed(errors)
    cycle = PaymentCycle(code=code.strip(), start_date=start_date, end_date=end_date, status=status)
    return _unique_code(PaymentCycle, "payment cycle", code, lambda: services.create(cycle, user))


def update_cycle(user: Any, pk: Any, *, version: int | None = None, **changes: Any) -> PaymentCycle:
    """Change a cycle; omitted fields stay. A CLOSED cycle is final, and the dates of a cycle
    that has live payrolls are fixed (its payments were made for that period)."""
    _may_configure(user, CONFIGURATION_MANAGE, "Changing a payment cycle")
    with transaction.atomic():
        cycle = _locked(PaymentCycle, pk, "Payment cycle", version)
        if cycle.status == CycleStatus.CLOSED:
            raise ServiceError(PayrollErrorCode.CYCLE_CLOSED, f"The payment cycle {cycle.code} is closed; it can no longer change.",
                               "status")
        fields = [k for k in CYCLE_FIELDS if k in changes]
        values = {k: getattr(cycle, k) for k in CYCLE_FIELDS} | {k: changes[k] for k in fields}
        errors = _cycle_problems(values, exclude=cycle.pk)
        moved = [k for k in ("start_date", "end_date") if values[k] is not None and values[k] != getattr(cycle, k)]
        if moved and Payroll.objects.filter(payment_cycle=cycle).exists():
            errors += [FieldError("startDate" if k == "start_date" else "endDate", PayrollErrorCode.CYCLE_IN_USE,
                                  "The cycle has payrolls; its dates can no longer change.") for k in moved]
        if errors:
            raise ValidationFailed(errors)
        for name in fields:
            setattr(cycle, name, values[name].strip() if name == "code" else values[name])
        return _unique_code(PaymentCycle, "payment cycle", cycle.code,
                            lambda: services.save_versioned(cycle, user, fields, version))


def delete_cycle(user: Any, pk: Any, version: int | None = None) -> PaymentCycle:
    """Only a cycle without live payrolls (deleted payrolls do not count) can be deleted."""
    _may_configure(user, CONFIGURATION_MANAGE, "Deleting a payment cycle")
    with transaction.atomic():
        cycle = _locked(PaymentCycle, pk, "Payment cycle", version)
        count = Payroll.objects.filter(payment_cycle=cycle).count()
        if count:
            raise ServiceError(PayrollErrorCode.CYCLE_IN_USE, f"The payment cycle has {count} payroll(s); delete them first "
                               "(only pending or rejected payrolls can be deleted).", "id")
        return services.set_deleted(cycle, user, True, version)


def _plan_problems(values: dict[str, Any], plan_type: str, check: Any = PLAN_FIELDS) -> list[FieldError]:
    """The plan's ``check``ed fields; the rule is compiled again when the minor unit changes
    (its amounts must be whole in it)."""
    errors: list[FieldError] = []
    name, currency, minor_unit = values["name"], values["currency"], values["minor_unit"]
    if "name" in check and not (isinstance(name, str) and name.strip()):
        errors.append(FieldError("name", CoreErrorCode.REQUIRED, "The name is required."))
    if "currency" in check and not (isinstance(currency, str) and len(currency) == 3 and currency.isalpha()):
        errors.append(FieldError("currency", CoreErrorCode.INVALID, "The currency is a three-letter ISO 4217 code."))
    if not (isinstance(minor_unit, int) and 0 <= minor_unit <= 4):
        if "minor_unit" in check:
            errors.append(FieldError("minorUnit", CoreErrorCode.INVALID, "The minor unit is 0 to 4 digits."))
    elif {"calculation_rule", "minor_unit"} & set(check):
        try:
            rules.compile_rule(values["calculation_rule"], plan_type, minor_unit)
        except ValidationFailed as exc:
            errors += exc.errors
    return errors


def create_plan(user: Any, *, code: str, name: str, benefit_plan_id: Any, calculation_rule: Any,
                currency: str, minor_unit: int = 2, json_ext: Any = None) -> PaymentPlan:
    _may_configure(user, CONFIGURATION_MANAGE, "Creating a payment plan")
    from modules.social_protection.services import get_plan

    benefit_plan = get_plan(benefit_plan_id)
    values = {"name": name, "calculation_rule": calculation_rule, "currency": currency, "minor_unit": minor_unit}
    errors = _code_taken(PaymentPlan, code, "payment plan") + _plan_problems(values, benefit_plan.type)
    if errors:
        raise ValidationFailed(errors)
    plan = PaymentPlan(code=code.strip(), name=name.strip(), benefit_plan=benefit_plan,
                       calculation_rule=calculation_rule, currency=currency.upper(), minor_unit=minor_unit,
                       json_ext=json_ext)
    return _unique_code(PaymentPlan, "payment plan", code, lambda: services.create(plan, user))


def _plan_in_use(plan: PaymentPlan, changed: list[str]) -> list[FieldError]:
    """The rule cannot change under a payroll whose amounts are still to be approved or sent;
    the currency and minor unit cannot change under any live payroll, whose amounts are
    integers in them."""
    payrolls = Payroll.objects.filter(payment_plan=plan)
    errors = []
    if "calculation_rule" in changed and payrolls.filter(status__in=UNFINISHED_PAYROLLS).exists():
        errors.append(FieldError(
            "calculationRule", PayrollErrorCode.PLAN_IN_USE,
            "A payroll of this plan is pending approval, approved or sending with amounts computed by the "
            "current rule; finish, reject or delete it before changing the rule."))
    for name, field in (("currency", "currency"), ("minor_unit", "minorUnit")):
        if name in changed and payrolls.exists():
            errors.append(FieldError(
                field, PayrollErrorCode.PLAN_IN_USE,
                f"The plan's payrolls hold amounts in {plan.currency} with {plan.minor_unit} decimal places; "
                "changing the currency or minor unit would misstate them. Create another payment plan."))
    return errors


def update_plan(user: Any, pk: Any, *, version: int | None = None, **changes: Any) -> PaymentPlan:
    """Change a plan's name, rule, currency, minor unit or ``jsonExt``; omitted fields stay."""
    _may_configure(user, CONFIGURATION_MANAGE, "Changing a payment plan")
    with transaction.atomic():
        plan = _locked(PaymentPlan, pk, "Payment plan", version)
        fields = [k for k in PLAN_FIELDS if k in changes]
        values = {k: getattr(plan, k) for k in PLAN_FIELDS} | {k: changes[k] for k in fields}
        if isinstance(values["currency"], str):
            values["currency"] = values["currency"].upper()
        errors = _plan_problems(values, plan.benefit_plan.type, fields)
        changed = [k for k in ("calculation_rule", "currency", "minor_unit") if k in fields
                   and values[k] != getattr(plan, k)]
        errors += _plan_in_use(plan, changed)
        if errors:
            raise ValidationFailed(errors)
        for name in fields:
            setattr(plan, name, values[name].strip() if name == "name" else values[name])
        return services.save_versioned(plan, user, fields, version)


def delete_plan(user: Any, pk: Any, version: int | None = None) -> PaymentPlan:
    """Only a plan without live payrolls (deleted payrolls do not count) can be deleted."""
    _may_configure(user, CONFIGURATION_MANAGE, "Deleting a payment plan")
    with transaction.atomic():
        plan = _locked(PaymentPlan, pk, "Payment plan", version)
        count = Payroll.objects.filter(payment_plan=plan).count()
        if count:
            raise ServiceError(PayrollErrorCode.PLAN_IN_USE, f"The payment plan has {count} payroll(s); delete them first "
                               "(only pending or rejected payrolls can be deleted).", "id")
        return services.set_deleted(plan, user, True, version)


def _point_problems(values: dict[str, Any], check: Any = POINT_FIELDS) -> list[FieldError]:
    errors: list[FieldError] = []
    if "name" in check and not (isinstance(values["name"], str) and values["name"].strip()):
        errors.append(FieldError("name", CoreErrorCode.REQUIRED, "The name is required."))
    if "config" in check:
        if not isinstance(values["config"], dict):
            errors.append(FieldError("config", CoreErrorCode.INVALID, "config is a JSON object."))
        for code, problems in ((PayrollErrorCode.LITERAL_SECRET, config_problems), (CoreErrorCode.SECRET_NOT_ALLOWED, reference_problems),
                               (CoreErrorCode.URL_NOT_ALLOWED, url_problems)):
            errors += [FieldError("config", code, problem) for problem in problems(values["config"])]
    if "routing" in check:
        errors += _routing_problems(values["routing"])
    return errors


def create_point(user: Any, *, code: str, name: str = "", adaptor: str, config: Any = None,
                 routing: Any = None) -> PaymentPoint:
    _may_configure(user, PROVIDER_MANAGE, "Creating a payment point")
    errors = _code_taken(PaymentPoint, code, "payment point")
    if adaptor not in payment_methods():
        errors.append(FieldError("adaptor", PayrollErrorCode.UNKNOWN_ADAPTOR,
                                 f"'{adaptor}' is not one of {', '.join(payment_methods())}."))
    values = {"name": name or code, "config": config or {}, "routing": routing or {}}
    errors += _point_problems(values)
    if errors:
        raise ValidationFailed(errors)
    point = PaymentPoint(code=code.strip(), name=values["name"].strip(), adaptor=adaptor,
                         config=values["config"], routing=values["routing"])
    return _unique_code(PaymentPoint, "payment point", code, lambda: services.create(point, user))


def update_point(user: Any, pk: Any, *, version: int | None = None, **changes: Any) -> PaymentPoint:
    """Change a point's name, ``config`` (replaced whole; secrets still only as references)
    or ``routing``; omitted fields stay. The adaptor never changes: in-flight payments are
    queried and confirmed through the adaptor that sent them."""
    _may_configure(user, PROVIDER_MANAGE, "Changing a payment point")
    with transaction.atomic():
        point = _locked(PaymentPoint, pk, "Payment point", version)
        fields = [k for k in POINT_FIELDS if k in changes]
        values = {k: getattr(point, k) for k in POINT_FIELDS} | {k: changes[k] for k in fields}
        for name in ("config", "routing"):
            if values[name] is None:
                values[name] = {}
        errors = _point_problems(values, fields)
        if errors:
            raise ValidationFailed(errors)
        for name in fields:
            setattr(point, name, values[name].strip() if name == "name" else values[name])
        return services.save_versioned(point, user, fields, version)


def delete_point(user: Any, pk: Any, version: int | None = None) -> PaymentPoint:
    """Only a point no payment is still open through (created, approved or sent, on a live
    payroll) can be deleted: callbacks and status queries for those need it."""
    _may_configure(user, PROVIDER_MANAGE, "Deleting a payment point")
    with transaction.atomic():
        point = _locked(PaymentPoint, pk, "Payment point", version)
        open_payments = BenefitConsumption.objects.filter(payroll=OuterRef("pk"), payment_point=point,
                                                         status__in=OPEN_INSTRUCTIONS)
        names = list(Payroll.objects.filter(Exists(open_payments)).order_by("name").values_list("name", flat=True)[:5])
        if names:
            raise ServiceError(PayrollErrorCode.POINT_IN_USE, "Payments through this point are not final yet in the payroll(s) "
                               f"{', '.join(names)}; delete the point once they are paid, failed or cancelled.", "id")
        return services.set_deleted(point, user, True, version)


def _routing_problems(routing: Any) -> list[FieldError]:
    if not isinstance(routing, dict) or set(routing) - {"locations", "priority"}:
        return [FieldError("routing", CoreErrorCode.INVALID, 'routing is {"locations": [ids], "priority": n}.')]
    ids = routing.get("locations", [])
    try:
        found = Location.objects.filter(pk__in=ids).count()
    except Exception:
        found = -1
    if not isinstance(ids, list) or found != len(set(map(str, ids))):
        return [FieldError("routing", PayrollErrorCode.UNKNOWN_LOCATION, "routing.locations names a location that does not exist.")]
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


def _routing(payroll: Payroll) -> list[tuple[PaymentPoint, list[str]]]:
    """The routed payment points in the order they are tried (lower priority first), with the
    location paths each serves; empty when the payroll has a point of its own."""
    if payroll.payment_point_id:
        return []
    with connection.cursor() as cursor:  # held like the plan and cycle (see create_payroll)
        cursor.execute(f"SELECT 1 FROM {PaymentPoint._meta.db_table} WHERE NOT is_deleted "
                       "AND routing <> '{}'::jsonb FOR SHARE")
    points = sorted(PaymentPoint.objects.exclude(routing={}),
                    key=lambda p: (p.routing.get("priority", 0), p.code))
    found = []
    for point in points:
        paths = list(Location.objects.filter(pk__in=point.routing.get("locations", [])).values_list("path", flat=True))
        if paths:
            found.append((point, paths))
    return found


def _point_expression(payroll: Payroll, plan_type: str) -> Any:
    """Which payment point serves a row's location: the payroll's own, or the first routing
    rule covering the beneficiary's location."""
    if payroll.payment_point_id:
        return Value(str(payroll.payment_point_id), output_field=CharField())
    location = "group__location" if plan_type == PlanType.GROUP else "individual__location"
    whens = [When(within_paths(paths, location), then=Value(str(point.pk))) for point, paths in _routing(payroll)]
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


def _routed(user: Any, payroll: Payroll, selection: QuerySet | None = None) -> QuerySet:
    """The candidates with the payment point each is routed to (``x_point``)."""
    plan_type = payroll.payment_plan.benefit_plan.type
    return _candidates(user, payroll, plan_type, selection).annotate(x_point=_point_expression(payroll, plan_type))


def _refuse_unrouted(rows: QuerySet) -> None:
    _refuse_count(rows.filter(x_point__isnull=True).count())


def _refuse_count(unrouted: int) -> None:
    if unrouted:
        raise ServiceError(PayrollErrorCode.NO_PAYMENT_POINT,
                           f"{unrouted} beneficiaries are in no payment point's locations; choose a payment "
                           "point for the payroll or extend the routing.", "paymentPointId")


def _generation_sql(user: Any, payroll: Payroll, selection: QuerySet | None) -> tuple[str, list[Any], dict[str, Any]]:
    """One row per candidate: ``x_id`` (the beneficiary row), ``x_recipient``, ``x_group``,
    ``x_point`` (the point that will pay it), ``x_amount`` (the rule applied, see
    ``rules.amount_sql``), ``x_routed`` (some point serves its location) and ``x_wanted`` (the
    first such point). Also returns the points in play, by id.

    The recipient of a GROUP plan is the household's PRIMARY recipient, or its head when it has
    none (at most one live PRIMARY per household is a unique index of ``individual``).

    A point pays only recipients who have one of the identifiers its adaptor pays to (a phone
    number for mobile money): a routed payment whose recipient lacks them goes to the next
    routing rule covering the location that can pay them, else ``x_point`` is NULL and the
    recipient is refused. When no point in play needs an identifier the recipient's row is not
    even read.
    """
    plan = payroll.payment_plan
    plan_type = plan.benefit_plan.type
    compiled = rules.compile_rule(plan.calculation_rule, plan_type, plan.minor_unit)
    subject = "group_id" if plan_type == PlanType.GROUP else "individual_id"
    location = "group__location" if plan_type == PlanType.GROUP else "individual__location"
    routing = _routing(payroll)
    points = [payroll.payment_point] if payroll.payment_point_id else [p for p, _ in routing]
    needs = {str(p.pk): keys for p in points if (keys := adaptors.recipient_identifiers(p))}
    columns: dict[str, Any] = {"x_id": F("pk"), "x_subject": F(subject)}
    if needs and routing:
        columns["x_path"] = F(f"{location}__path")
    base = _routed(user, payroll, selection).values("x_point", **columns)
    base_sql, base_params = base.query.sql_with_params()
    joins, amount, amount_params = rules.amount_sql(compiled, plan_type, "c.x_subject")
    if plan_type == PlanType.GROUP:
        joins += (f" JOIN {Group._meta.db_table} g ON g.id = c.x_subject"
                  f" LEFT JOIN {GroupIndividual._meta.db_table} p ON p.group_id = c.x_subject"
                  " AND p.recipient_type = 'PRIMARY' AND NOT p.is_deleted")
        recipient, group = "coalesce(p.individual_id, g.head_id)", "c.x_subject"
    else:
        recipient, group = "c.x_subject", "NULL::uuid"
    pay, pay_params = "c.x_point", []
    if needs:
        joins += f" LEFT JOIN {Individual._meta.db_table} r ON r.id = {recipient}"

        def has(keys: list[str]) -> str:
            pay_params.extend(keys)
            return "(" + " OR ".join(["coalesce(btrim(r.json_ext ->> %s), '') <> ''"] * len(keys)) + ")"

        pay = "CASE WHEN c.x_point IS NULL THEN NULL"
        for point_id, keys in needs.items():
            pay_params.append(point_id)
            pay += f" WHEN c.x_point = %s THEN CASE WHEN {has(keys)} THEN c.x_point END"
        pay += " ELSE c.x_point END"
        if routing:  # the next rule covering the location that can pay them
            fallback = "CASE"
            for point, paths in routing:
                pay_params.append([_like_prefix(path) for path in paths])
                condition = "c.x_path LIKE ANY(%s)"
                if str(point.pk) in needs:
                    condition += f" AND {has(needs[str(point.pk)])}"
                pay_params.append(str(point.pk))
                fallback += f" WHEN {condition} THEN %s"
            pay = f"coalesce({pay}, {fallback} END)"
    sql = (f"SELECT c.x_id, {recipient} AS x_recipient, {group} AS x_group, ({pay})::uuid AS x_point, "
           f"({amount})::bigint AS x_amount, c.x_point IS NOT NULL AS x_routed, c.x_point AS x_wanted "
           f"FROM ({base_sql}) c {joins}")
    return sql, [*pay_params, *base_params, *amount_params], {str(p.pk): p for p in points}


def _like_prefix(path: str) -> str:
    return path.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


BIGINT_MAX = 2**63 - 1


def ceiling_in_minor_units(plan: PaymentPlan) -> int | None:
    """The benefit plan's ceiling per beneficiary (in the payment plan's currency), in minor
    units, rounded down: amounts are whole minor units, so none may pass the ceiling."""
    ceiling = plan.benefit_plan.ceiling_per_beneficiary
    if ceiling is None:
        return None
    return int(Decimal(ceiling).scaleb(plan.minor_unit).to_integral_value(rounding=ROUND_FLOOR))


def validity_problem(plan: PaymentPlan, cycle: PaymentCycle) -> FieldError | None:
    """A cycle pays for its period: the benefit plan must be valid for all of it."""
    benefit = plan.benefit_plan
    if cycle.start_date < benefit.date_valid_from or cycle.end_date > benefit.date_valid_to:
        return FieldError(
            "paymentCycleId", PayrollErrorCode.OUTSIDE_PLAN_VALIDITY,
            f"The payment cycle {cycle.code} ({cycle.start_date} to {cycle.end_date}) is not within the validity "
            f"of benefit plan {benefit.code} ({benefit.date_valid_from} to {benefit.date_valid_to}).")
    return None


def generate(user: Any, payroll: Payroll, selection: QuerySet | None = None) -> dict[str, int]:
    """Insert one CREATED instruction per candidate in one ``INSERT … SELECT`` and set the
    payroll's control totals from what was inserted.

    ``ON CONFLICT DO NOTHING`` on the one-payment-per-cycle index means a concurrent
    generation for the same cycle cannot pay anyone twice: the second one skips them. A
    beneficiary no payment point serves is counted by the same statement and refuses the
    whole generation (``NO_PAYMENT_POINT``); call it inside a transaction.
    """
    plan = payroll.payment_plan
    select_sql, params, points = _generation_sql(user, payroll, selection)
    ceiling = ceiling_in_minor_units(plan)
    uid = getattr(user, "pk", None)
    table = BenefitConsumption._meta.db_table
    with connection.cursor() as cursor:
        # Compiling this one statement to machine code costs about a second and saves less.
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(
            f"WITH candidates AS MATERIALIZED ({select_sql}), "
            f"inserted AS (INSERT INTO {table} (id, date_created, date_updated, user_created_id, "
            "user_updated_id, version, is_deleted, code, payroll_id, payment_cycle_id, beneficiary_id, "
            "individual_id, group_id, payment_point_id, amount, currency, status, send_attempts, "
            "provider_transaction_id, status_message) "
            "SELECT coremis_uuid7(), now(), now(), %s, %s, 1, false, "
            "'PAY-' || upper(replace(coremis_uuid7()::text, '-', '')), %s, %s, s.x_id, "
            "s.x_recipient, s.x_group, s.x_point, s.x_amount, %s, 'CREATED', 0, '', '' "
            "FROM candidates s WHERE s.x_recipient IS NOT NULL AND s.x_point IS NOT NULL "
            "ON CONFLICT (payment_cycle_id, beneficiary_id) WHERE NOT is_deleted "
            "AND NOT status IN ('FAILED', 'CANCELLED') DO NOTHING RETURNING amount) "
            "SELECT (SELECT count(*) FROM inserted), (SELECT coalesce(sum(amount), 0) FROM inserted), "
            "(SELECT count(*) FROM candidates WHERE x_recipient IS NULL), "
            "(SELECT count(*) FROM candidates WHERE NOT x_routed), "
            "(SELECT count(*) FROM inserted WHERE amount > %s), (SELECT max(amount) FROM inserted), "
            f"(SELECT count(*) FROM candidates WHERE {UNPAYABLE}), "
            "(SELECT coalesce(json_agg(t), '[]') FROM (SELECT x_id AS beneficiary_id, x_recipient AS recipient_id, "
            f"x_group AS household_id, x_wanted AS point FROM candidates WHERE {UNPAYABLE} ORDER BY x_id "
            "LIMIT %s) t)",
            [*params, uid, uid, payroll.pk, payroll.payment_cycle_id, plan.currency, ceiling, LISTED_REFUSALS],
        )
        count, total, no_recipient, unrouted, over_ceiling, largest, unpayable, listed = cursor.fetchone()
    # On a refusal, the caller's transaction takes the inserted rows back.
    _refuse_count(int(unrouted))
    if over_ceiling:
        raise ServiceError(
            PayrollErrorCode.CEILING_EXCEEDED,
            f"{over_ceiling} beneficiaries of benefit plan {plan.benefit_plan.code} would receive more than its "
            f"ceiling per beneficiary ({plan.benefit_plan.ceiling_per_beneficiary} {plan.currency}); the largest "
            f"amount is {Decimal(largest).scaleb(-plan.minor_unit)} {plan.currency}. Change the calculation rule "
            "or the ceiling; nothing was generated.", "paymentPlanId")
    if total > BIGINT_MAX:
        raise ServiceError(PayrollErrorCode.AMOUNT_TOO_LARGE, f"The payroll would total {total} minor units, more than can be "
                           "recorded; split it by location.", "paymentPlanId")
    report = {"skipped_no_recipient": int(no_recipient),
              "refused_no_identifier": _refusals(int(unpayable), listed, points)}
    Payroll.objects.filter(pk=payroll.pk).update(control_count=count, control_sum=total, generation_report=report)
    payroll.control_count, payroll.control_sum, payroll.generation_report = int(count), int(total), report
    return {"count": int(count), "sum": int(total), **report}


# Routed (some point serves the location), with a recipient, but no point there can pay them.
UNPAYABLE = "x_routed AND x_recipient IS NOT NULL AND x_point IS NULL"
# How many refused recipients a job's result names (the count is always complete).
LISTED_REFUSALS = 100


def _refusals(count: int, listed: list[dict[str, Any]], points: dict[str, PaymentPoint]) -> dict[str, Any]:
    """The recipients generation left out because their payment point cannot pay them, for the
    job's result: the first ``LISTED_REFUSALS`` of them, each with the identifier missing."""
    named = []
    for row in listed:
        point = points.get(str(row.pop("point")))
        keys = adaptors.recipient_identifiers(point) if point else []
        named.append({**row, "payment_point": point.code if point else None, "missing": " or ".join(keys)})
    return {"count": count, "recipients": named}


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
            PayrollErrorCode.CONTROL_TOTALS_MISMATCH,
            f"The payroll's instructions add up to {count} payments totalling {total}, but its control "
            f"totals say {payroll.control_count} totalling {payroll.control_sum}. Nothing was changed.",
        )


def check_payroll_request(user: Any, *, name: str, payment_plan_id: Any, payment_cycle_id: Any,
                          payment_point_id: Any = None, location_ids: list[Any] | None = None,
                          selection: QuerySet | None = None, check_rows: bool = True, lock: bool = False,
                          follows: Payroll | None = None, **_: Any) -> dict[str, Any]:
    """Everything ``createPayroll`` can refuse before any row is written, so bad input gets a
    specific error at once rather than from a background job: unknown plan, cycle, point or
    location, a cycle that is not ACTIVE, nobody left to pay, a beneficiary no payment point
    serves. The generation job checks all of it again inside its own transaction, with
    ``lock``: the plan, cycle and point then stay locked FOR SHARE until it commits, so no rule,
    status or routing changes under a generation (see ``_held``)."""
    require(user, PAYROLL_CREATE)
    get = _held if lock else _get
    plan = get(PaymentPlan, payment_plan_id, "Payment plan")
    cycle = get(PaymentCycle, payment_cycle_id, "Payment cycle")
    point = get(PaymentPoint, payment_point_id, "Payment point") if payment_point_id else None
    errors: list[FieldError] = []
    if not (name or "").strip():
        errors.append(FieldError("name", CoreErrorCode.REQUIRED, "The name is required."))
    if cycle.status != CycleStatus.ACTIVE:
        errors.append(FieldError("paymentCycleId", PayrollErrorCode.CYCLE_NOT_ACTIVE, f"The payment cycle is {cycle.status}."))
    if lock:  # the benefit plan's validity and ceiling are read again by generation
        plan.benefit_plan = _held(BenefitPlan, plan.benefit_plan_id, "Benefit plan")
    outside = validity_problem(plan, cycle)
    if outside is not None:
        errors.append(outside)
    ids = [str(i) for i in location_ids or []]
    found = list(Location.objects.filter(pk__in=ids)) if ids else []
    if ids and len(found) != len(set(ids)):
        errors.append(FieldError("locationIds", PayrollErrorCode.UNKNOWN_LOCATION, "A location does not exist."))
    elif user is not None and not all(in_scope(user, location) for location in found):
        errors.append(FieldError("locationIds", CoreErrorCode.OUT_OF_SCOPE, "A location is outside your locations."))
    if not errors:
        errors += _create_problems(plan, cycle, ids, follows)
    if errors:
        raise ValidationFailed(errors)
    if check_rows:
        draft = Payroll(name=name.strip(), payment_plan=plan, payment_cycle=cycle, payment_point=point,
                        location_ids=ids)
        rows = _routed(user, draft, selection)
        if not rows.exists():
            raise ServiceError(PayrollErrorCode.NOTHING_TO_PAY, "No active beneficiary is left to pay in this cycle.")
        _refuse_unrouted(rows)
    return {"plan": plan, "cycle": cycle, "point": point, "location_ids": ids, "name": name.strip()}


def create_payroll(user: Any, *, name: str, payment_plan_id: Any, payment_cycle_id: Any,
                   payment_point_id: Any = None, location_ids: list[Any] | None = None,
                   json_ext: Any = None, follows: Payroll | None = None,
                   selection: QuerySet | None = None, job_id: Any = None) -> tuple[Payroll, dict[str, int]]:
    """Create a payroll in PENDING_APPROVAL with its instructions and control totals, in one
    transaction: a failure leaves no payroll and no instruction behind."""
    with transaction.atomic():
        checked = check_payroll_request(user, name=name, payment_plan_id=payment_plan_id,
                                        payment_cycle_id=payment_cycle_id, payment_point_id=payment_point_id,
                                        location_ids=location_ids, check_rows=False, lock=True, follows=follows)
        payroll = services.create(Payroll(
            name=checked["name"], payment_plan=checked["plan"], payment_cycle=checked["cycle"],
            payment_point=checked["point"], location_ids=checked["location_ids"], json_ext=json_ext,
            follows=follows, job_id=job_id), user)
        result = generate(user, payroll, selection)
        if result["count"] == 0:
            refused = result["refused_no_identifier"]["count"]
            why = (f" {refused} recipients lack the identifier their payment point pays to (a phone number for "
                   "mobile money)." if refused else "")
            raise ServiceError(PayrollErrorCode.NOTHING_TO_PAY, "No active beneficiary is left to pay in this cycle." + why)
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
        raise ServiceError(PayrollErrorCode.INVALID_PAYROLL_STATUS,
                           f"The payroll is {current}; this needs it to be {' or '.join(sources)}.", "status")
    payroll.refresh_from_db()
    return payroll


def _move_instructions(payroll: Payroll, user: Any, sources: tuple[str, ...], target: str) -> int:
    return BenefitConsumption.objects.filter(payroll=payroll, status__in=sources).update(
        status=target, version=F("version") + 1, date_updated=timezone.now(), user_updated_id=getattr(user, "pk", None))


# Scope of payroll-wide actions: generating (and re-issuing) acts within the user's scope, so a
# scoped user's payroll only pays people in their locations. Approving, rejecting, sending,
# closing and deleting act on every payment of a payroll at once, so they need every one of
# them in the user's scope (``OUT_OF_SCOPE`` otherwise); national users may do them all.


def require_whole_payroll(user: Any, payroll: Payroll, action: str) -> None:
    """Refuse ``action`` ("Rejecting this payroll") unless every payment of the payroll is in
    the user's scope."""
    require_all_in_scope(user, BenefitConsumption.all_objects.filter(payroll=payroll), PAYMENT_LOCATION,
                         action, "payments")


def check_may_approve(user: Any, payroll_id: Any) -> Payroll:
    require(user, PAYROLL_APPROVE)
    payroll = get_payroll(user, payroll_id)
    require_whole_payroll(user, payroll, "Approving this payroll")
    return payroll


def approve_payroll(user: Any, payroll_id: Any) -> Payroll:
    """PENDING_APPROVAL → APPROVED once the control totals still hold."""
    if user is not None:
        check_may_approve(user, payroll_id)
    return mark_approved(user, payroll_id)


def mark_approved(user: Any, payroll_id: Any) -> Payroll:
    """The approval itself, for a deployment where payrolls need no checker (the maker's
    ``createPayroll`` approves) and for an approved task."""
    with transaction.atomic():
        payroll = get_payroll(None, payroll_id, for_update=True)
        check_control_totals(payroll)
        # One row: the instructions stay CREATED and read as APPROVED through their payroll
        # (models.effective_status); the payroll's history version names who approved which totals.
        payroll = _move(payroll, user, (PayrollStatus.PENDING_APPROVAL,), PayrollStatus.APPROVED)
    return payroll


def reject_payroll(user: Any, payroll_id: Any) -> Payroll:
    """A rejected payroll releases its beneficiaries: another payroll may pay them this cycle."""
    require(user, PAYROLL_APPROVE)
    with transaction.atomic():
        payroll = get_payroll(user, payroll_id, for_update=True)
        require_whole_payroll(user, payroll, "Rejecting this payroll")
        payroll = _move(payroll, user, (PayrollStatus.PENDING_APPROVAL, PayrollStatus.APPROVED),
                        PayrollStatus.REJECTED)
        _move_instructions(payroll, user, (InstructionStatus.CREATED,), InstructionStatus.CANCELLED)
    return payroll


def delete_payroll(user: Any, payroll_id: Any, version: int | None = None) -> Payroll:
    """Only a payroll from which nothing was sent can be deleted."""
    require(user, PAYROLL_DELETE)
    with transaction.atomic():
        payroll = get_payroll(user, payroll_id, for_update=True)
        require_whole_payroll(user, payroll, "Deleting this payroll")
        if payroll.status not in (PayrollStatus.PENDING_APPROVAL, PayrollStatus.REJECTED):
            raise ServiceError(PayrollErrorCode.INVALID_PAYROLL_STATUS,
                               f"A {payroll.status} payroll cannot be deleted; only pending or rejected ones.", "status")
        _move_instructions(payroll, user, (InstructionStatus.CREATED,), InstructionStatus.CANCELLED)
        BenefitConsumption.objects.filter(payroll=payroll).update(is_deleted=True, version=F("version") + 1)
        return services.set_deleted(payroll, user, True, version)


def close_payroll(user: Any, payroll_id: Any) -> Payroll | Any:
    """PAID / PARTIALLY_PAID → RECONCILED; paid instructions become RECONCILED. Refused while a
    module says it does not add up (``payroll_close_problems``). When the deployment routes
    ``payroll.reconcile`` to checkers, a user's request opens an approval task instead (returned),
    and the approved task closes it (``user`` is then ``None``: the checks run again)."""
    require(user, PAYROLL_CLOSE)
    with transaction.atomic():
        payroll = get_payroll(user, payroll_id, for_update=True)
        require_whole_payroll(user, payroll, "Closing this payroll")
        if payroll.status not in (PayrollStatus.PAID, PayrollStatus.PARTIALLY_PAID):
            raise ServiceError(PayrollErrorCode.INVALID_PAYROLL_STATUS, f"The payroll is {payroll.status}; this needs it to be "
                               "PAID or PARTIALLY_PAID.", "status")
        check_close_problems(payroll)
        if user is not None and needs_approval("payroll.reconcile"):
            return request_approval(user, "payroll.reconcile", "Payroll", payroll.pk, {
                "id": str(payroll.pk), "name": payroll.name, "status": payroll.status,
                "count": payroll.control_count, "sum": payroll.control_sum})
        payroll = _move(payroll, user, (PayrollStatus.PAID, PayrollStatus.PARTIALLY_PAID), PayrollStatus.RECONCILED)
        _move_instructions(payroll, user, (InstructionStatus.PAID,), InstructionStatus.RECONCILED)
    return payroll


def _create_problems(plan: PaymentPlan, cycle: PaymentCycle, location_ids: list[str],
                     follows: Payroll | None) -> list[FieldError]:
    """What other modules refuse about a new payroll (``payroll_create_problems``)."""
    from core.hooks import hook

    return [p for found in hook().payroll_create_problems(plan=plan, cycle=cycle, location_ids=location_ids,
                                                          follows=follows) for p in found or []]


def check_close_problems(payroll: Payroll) -> None:
    """Refuse closing while a module (reconciliation) says the payroll does not add up yet."""
    from core.hooks import hook

    problems = [p for found in hook().payroll_close_problems(payroll=payroll) for p in found or []]
    if problems:
        raise ServiceError(PayrollErrorCode.NOT_RECONCILED, "The payroll cannot be closed yet: " + "; ".join(problems[:20]) +
                           (f"; and {len(problems) - 20} more" if len(problems) > 20 else ""), "id")


def start_sending(user: Any, payroll_id: Any) -> Payroll:
    """APPROVED → SENDING; a payroll left SENDING (crash, unknown outcomes) may be restarted."""
    require(user, PAYROLL_PAY)
    with transaction.atomic():
        payroll = get_payroll(user, payroll_id, for_update=True)
        require_whole_payroll(user, payroll, "Sending this payroll")
        check_control_totals(payroll)
        if payroll.status != PayrollStatus.SENDING:
            payroll = _move(payroll, user, (PayrollStatus.APPROVED,), PayrollStatus.SENDING)
    return payroll


def reissue_request(user: Any, payroll_id: Any, name: str | None = None) -> dict[str, Any]:
    """The ``create_payroll`` arguments of a follow-up payroll, in the same cycle, for the
    beneficiaries whose payment in ``payroll_id`` failed."""
    require(user, PAYROLL_CREATE)
    original = get_payroll(user, payroll_id)
    failed = BenefitConsumption.objects.filter(payroll=original, status=InstructionStatus.FAILED).values("beneficiary_id")
    if not failed.exists():
        raise ServiceError(PayrollErrorCode.NOTHING_TO_REISSUE, "No payment of this payroll failed.")
    return {"name": name or f"{original.name} (re-issue)", "payment_plan_id": original.payment_plan_id,
            "payment_cycle_id": original.payment_cycle_id, "payment_point_id": original.payment_point_id,
            "location_ids": original.location_ids, "follows": original, "selection": failed}


def reissue_failed(user: Any, payroll_id: Any, name: str | None = None,
                   job_id: Any = None) -> tuple[Payroll, dict[str, int]]:
    """A follow-up payroll, in the same cycle, for the beneficiaries whose payment failed."""
    return create_payroll(user, **reissue_request(user, payroll_id, name), job_id=job_id)


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
    if user is None:  # the system itself (approved tasks, jobs without a user)
        return queryset
    paths = scope_paths(user)
    if paths is None:
        return queryset
    return queryset.filter(Exists(BenefitConsumption.objects.filter(payroll=OuterRef("pk")).filter(
        within_paths(paths, PAYMENT_LOCATION))))


def scoped_totals(user: Any, payroll: Payroll) -> tuple[int, int]:
    """The control totals ``user`` may see: the payroll's own for national users; for a scoped
    user, the count and sum of its payments in their locations (every status, as generation
    counted them), so a province officer never sees money paid elsewhere."""
    if user is None or scope_paths(user) is None:
        return payroll.control_count, payroll.control_sum
    annotated = getattr(payroll, "scoped_count", None)
    if annotated is not None:
        return int(annotated), int(payroll.scoped_sum)
    rows = scope_queryset(BenefitConsumption.all_objects.filter(payroll=payroll), user, PAYMENT_LOCATION)
    totals = rows.aggregate(n=Count("id"), s=Coalesce(Sum("amount"), 0))
    return int(totals["n"]), int(totals["s"])


def with_scoped_totals(user: Any, queryset: QuerySet) -> QuerySet:
    """``queryset`` with ``scoped_count`` / ``scoped_sum`` (see :func:`scoped_totals`) computed
    in the list's own query, for scoped users."""
    paths = None if user is None else scope_paths(user)
    if paths is None:
        return queryset
    rows = (BenefitConsumption.all_objects.filter(payroll=OuterRef("pk")).filter(within_paths(paths, PAYMENT_LOCATION))
            .order_by().values("payroll"))
    return queryset.annotate(
        scoped_count=Coalesce(Subquery(rows.annotate(n=Count("id")).values("n")), 0),
        scoped_sum=Coalesce(Subquery(rows.annotate(s=Sum("amount")).values("s")), 0),
    )

