"""Payment cycles, payment plans and payment points: creating, changing and deleting them.

Changes and deletes lock the row (FOR UPDATE) before checking their rules against the payrolls
and payments using it; generation holds the rows it reads FOR SHARE until it commits
(:func:`held`). So a change either commits before a generation reads the configuration, or
waits for the generation and then sees its payroll. Each function checks the permission and
national scope once and writes directly (no job, no approval).
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef, UniqueConstraint

from core import services
from core.errors import CoreErrorCode, FieldError, NotFound, ServiceError, ValidationFailed
from core.models import User
from core.permissions import require
from modules.location.models import Location
from modules.location.services import require_national
from modules.payroll import rules
from modules.payroll.adaptors import payment_methods
from modules.payroll.adaptors.base import config_problems, reference_problems, url_problems
from modules.payroll.errors import PayrollErrorCode
from modules.payroll.models import (
    BenefitConsumption,
    CycleStatus,
    InstructionStatus,
    PaymentCycle,
    PaymentPlan,
    PaymentPoint,
    Payroll,
    PayrollStatus,
)
from modules.payroll.permissions import CONFIGURATION_MANAGE, PROVIDER_MANAGE
from modules.payroll.services.selectors import get_from

# Changes and deletes lock the row (FOR UPDATE) before checking their rules against the
# payrolls and payments using it; generation holds the rows it reads FOR SHARE until it
# commits (``held``). So a change either commits before a generation reads the
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
# credential references, a separately granted right (``PROVIDER_MANAGE``).


def _may_configure(user: User, permission: str, what: str) -> None:
    require(user, permission)
    require_national(user, what)


def get_live(model: Any, pk: Any, what: str) -> Any:
    """The live row ``pk`` of ``model`` (``NotFound`` naming ``what`` otherwise)."""
    return get_from(model.objects.all(), pk, what)


def _locked(model: Any, pk: Any, what: str, version: int | None) -> Any:
    """The live row, locked until the transaction ends; a stale ``version`` is refused before
    any other rule is checked."""
    row = get_from(model.objects.select_for_update(), pk, what)
    services.check_version(row, version)
    return row


def held(model: Any, pk: Any, what: str) -> Any:
    """The live row, read after taking a FOR SHARE lock that lasts until the transaction ends
    (other generations share it; a change or delete waits for it, or it waits for them)."""
    row = get_live(model, pk, what)
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


def create_cycle(user: User, *, code: str, start_date: datetime.date, end_date: datetime.date,
                 status: str | None = None) -> PaymentCycle:
    _may_configure(user, CONFIGURATION_MANAGE, "Creating a payment cycle")
    status = status or CycleStatus.ACTIVE
    errors = _cycle_problems({"code": code, "start_date": start_date, "end_date": end_date, "status": status})
    if errors:
        raise ValidationFailed(errors)
    cycle = PaymentCycle(code=code.strip(), start_date=start_date, end_date=end_date, status=status)
    return _unique_code(PaymentCycle, "payment cycle", code, lambda: services.create(cycle, user))


def update_cycle(user: User, pk: Any, *, version: int | None = None, **changes: Any) -> PaymentCycle:
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


def delete_cycle(user: User, pk: Any, version: int | None = None) -> PaymentCycle:
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


def create_plan(user: User, *, code: str, name: str, benefit_plan_id: Any, calculation_rule: Any,
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


def update_plan(user: User, pk: Any, *, version: int | None = None, **changes: Any) -> PaymentPlan:
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


def delete_plan(user: User, pk: Any, version: int | None = None) -> PaymentPlan:
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


def create_point(user: User, *, code: str, name: str = "", adaptor: str, config: Any = None,
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


def update_point(user: User, pk: Any, *, version: int | None = None, **changes: Any) -> PaymentPoint:
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


def delete_point(user: User, pk: Any, version: int | None = None) -> PaymentPoint:
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
    unknown = [FieldError("routing", PayrollErrorCode.UNKNOWN_LOCATION,
                          "routing.locations names a location that does not exist.")]
    if not isinstance(ids, list):
        return unknown
    try:  # not an id is not a location; a database error is not "unknown location" and goes up
        wanted = {uuid.UUID(str(i)) for i in ids}
    except ValueError:
        return unknown
    if Location.objects.filter(pk__in=wanted).count() != len(wanted):
        return unknown
    return []
