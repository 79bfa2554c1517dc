"""Generating payrolls: the candidates, the routing to payment points, the one ``INSERT …
SELECT`` that writes the instructions, the control totals, re-issues, and the ``createPayroll``
use case (``check_create_payroll`` / ``do_create_payroll``, which starts the job).

Generation runs within the acting user's scope: a scoped user's payroll only pays people in
their locations; the system actor is national.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Case, CharField, Exists, F, OuterRef, QuerySet, Value, When

from core import services
from core.approvals.services import check_can_request, needs_approval
from core.errors import CoreErrorCode, FieldError, ServiceError, ValidationFailed
from core.jobs import start_job
from core.models import Job, User
from core.permissions import require
from modules.individual.models import GroupIndividual, Individual
from modules.location.models import Location
from modules.location.services import in_scope, scope_queryset, within_paths
from modules.payroll import adaptors, rules
from modules.payroll.approvals import APPROVE
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
)
from modules.payroll.permissions import PAYROLL_CREATE
from modules.payroll.services.configuration import get_live, held
from modules.payroll.services.selectors import get_payroll
from modules.social_protection.models import BeneficiaryStatus, BenefitPlan, PlanType
from modules.social_protection.services import beneficiary_model

# the job kind of generation
GENERATE = "payroll.generate"


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


def _candidates(user: User, payroll: Payroll, plan_type: str, selection: QuerySet | None = None) -> QuerySet:
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
    rows = scope_queryset(rows, user, location)  # the system actor is national
    if selection is not None:
        rows = rows.filter(pk__in=selection)
    held = BenefitConsumption.objects.filter(payment_cycle_id=payroll.payment_cycle_id, beneficiary_id=OuterRef("pk"))
    return rows.exclude(Exists(held.exclude(status__in=RELEASED_STATUSES)))


def _routed(user: User, payroll: Payroll, selection: QuerySet | None = None) -> QuerySet:
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


def _generation_sql(user: User, payroll: Payroll, selection: QuerySet | None) -> tuple[str, list[Any], dict[str, Any]]:
    """One row per candidate: ``x_id`` (the beneficiary row), ``x_recipient``, ``x_group``,
    ``x_place`` (the recipient's location), ``x_point`` (the point that will pay it), ``x_amount`` (the rule applied, see
    ``rules.amount_sql``), ``x_routed`` (some point serves its location) and ``x_wanted`` (the
    first such point). Also returns the points in play, by id.

    The recipient of a GROUP plan is the household's PRIMARY recipient, or its head when it has
    none (at most one live PRIMARY per household is a unique index of ``individual``).

    A point pays only recipients who have one of the identifiers its adaptor pays to (a phone
    number for mobile money): a routed payment whose recipient lacks them goes to the next
    routing rule covering the location that can pay them, else ``x_point`` is NULL and the
    recipient is refused.
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
    if plan_type == PlanType.GROUP:  # through the household join the candidates already make
        columns["x_head"] = F("group__head_id")
    if needs and routing:
        columns["x_path"] = F(f"{location}__path")
    base = _routed(user, payroll, selection).values("x_point", **columns)
    base_sql, base_params = base.query.sql_with_params()
    if plan_type == PlanType.GROUP:
        joins, amount, amount_params = rules.amount_sql(compiled, plan_type, "c.x_subject", members="hh.n",
                                                        head="c.x_head")
        # The household size and its PRIMARY recipient in one aggregate over the live
        # memberships (at most one live PRIMARY per household: ``any_value``, or before
        # PostgreSQL 16 the dearer ``array_agg … [1]``), hashed once and joined, instead of a
        # LATERAL probe per household. Only the households of the plan's active beneficiaries
        # are aggregated, so a small plan does not read the whole registry's memberships.
        members = GroupIndividual._meta.db_table
        primary = "m.individual_id) FILTER (WHERE m.recipient_type = 'PRIMARY')"
        primary = f"any_value({primary}" if connection.pg_version >= 160000 else f"(array_agg({primary})[1]"
        plan_households = (f"SELECT b.group_id FROM {beneficiary_model(plan.benefit_plan)._meta.db_table} b "
                           "WHERE b.benefit_plan_id = %s AND b.status = %s AND NOT b.is_deleted")
        joins += (f" LEFT JOIN (SELECT m.group_id, count(*) AS n, {primary} AS primary_id FROM {members} m "
                  f"WHERE NOT m.is_deleted AND m.group_id IN ({plan_households}) GROUP BY m.group_id) hh "
                  "ON hh.group_id = c.x_subject")
        amount_params = [*amount_params, plan.benefit_plan_id, BeneficiaryStatus.ACTIVE.value]
        recipient, group = "coalesce(hh.primary_id, c.x_head)", "c.x_subject"
    else:
        joins, amount, amount_params = rules.amount_sql(compiled, plan_type, "c.x_subject")
        recipient, group = "c.x_subject", "NULL::uuid"
    pay, pay_params = "c.x_point", []
    # the recipient's row: its place (``x_place``) and the identifiers points pay to
    joins += f" LEFT JOIN {Individual._meta.db_table} r ON r.id = {recipient}"
    if needs:

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
    sql = (f"SELECT c.x_id, {recipient} AS x_recipient, {group} AS x_group, r.location_id AS x_place, "
           f"({pay})::uuid AS x_point, "
           f"({amount})::bigint AS x_amount, c.x_point IS NOT NULL AS x_routed, c.x_point AS x_wanted "
           f"FROM ({base_sql}) c {joins}")
    return sql, [*pay_params, *base_params, *amount_params], {str(p.pk): p for p in points}


def _like_prefix(path: str) -> str:
    return path.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


BIGINT_MAX = 2**63 - 1
# For the generation's transaction: its statement hashes the recipients (a million people at
# national scale), materialises the candidates and the inserted rows, and the history and
# reference triggers read its 315,000 new rows from a transition table; with the server's
# default (4 MB) all of these spill to temporary files.
GENERATION_WORK_MEM = "256MB"


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


def generate(user: User, payroll: Payroll, selection: QuerySet | None = None) -> dict[str, int]:
    """Insert one CREATED instruction per candidate in one ``INSERT … SELECT`` and set the
    payroll's control totals from what was inserted. Call it inside a transaction.

    Locking: generations of one payment cycle run one at a time. Each takes the cycle's
    transaction-level advisory lock (:func:`cycle_lock_name`) before its statement reads the
    candidates, so a second one waits for the first to commit or roll back, and its statement
    (a new snapshot, READ COMMITTED) then sees the payments the first made and leaves those
    beneficiaries out: nobody is paid twice, and with everyone paid it inserts nothing
    (``NOTHING_TO_PAY``). The one-payment-per-cycle unique index stays the last word: a plain
    INSERT that met a live payment anyway (a write that bypassed the lock) fails whole.

    The statement guarantees what the instruction table's reference trigger checks (the payroll
    was just created, the points are held, the recipient and household come from joins), so it
    runs with ``coremis.payroll_generation`` set for its own duration (migration 0010), and
    every other write keeps the full check. A beneficiary no payment point serves is counted by
    the same statement and refuses the whole generation (``NO_PAYMENT_POINT``).
    """
    plan = payroll.payment_plan
    select_sql, params, points = _generation_sql(user, payroll, selection)
    ceiling = ceiling_in_minor_units(plan)
    uid = getattr(user, "pk", None)
    table = BenefitConsumption._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                       [cycle_lock_name(payroll.payment_cycle_id)])
        # Compiling this one statement to machine code costs about a second and saves less.
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(f"SET LOCAL work_mem = '{GENERATION_WORK_MEM}'")
        cursor.execute("SELECT set_config('coremis.payroll_generation', 'on', true)")
        cursor.execute(
            f"WITH candidates AS MATERIALIZED ({select_sql}), "
            f"inserted AS (INSERT INTO {table} (id, date_created, date_updated, user_created_id, "
            "user_updated_id, version, is_deleted, code, payroll_id, payment_cycle_id, beneficiary_id, "
            "individual_id, group_id, place_id, payment_point_id, amount, currency, status, send_attempts, "
            "provider_transaction_id, status_message) "
            "SELECT coremis_uuid7(), now(), now(), %s, %s, 1, false, "
            "'PAY-' || upper(replace(coremis_uuid7()::text, '-', '')), %s, %s, s.x_id, "
            "s.x_recipient, s.x_group, s.x_place, s.x_point, s.x_amount, %s, 'CREATED', 0, '', '' "
            "FROM candidates s WHERE s.x_recipient IS NOT NULL AND s.x_point IS NOT NULL RETURNING amount) "
            # one pass over what was inserted and one over the candidates, not one per figure
            "SELECT i.n, i.total, c.no_recipient, c.unrouted, i.over_ceiling, i.largest, c.unpayable, "
            "(SELECT coalesce(json_agg(t), '[]') FROM (SELECT x_id AS beneficiary_id, x_recipient AS recipient_id, "
            f"x_group AS household_id, x_wanted AS point FROM candidates WHERE {UNPAYABLE} ORDER BY x_id "
            "LIMIT %s) t) "
            "FROM (SELECT count(*) AS n, coalesce(sum(amount), 0) AS total, count(*) FILTER (WHERE amount > %s) "
            "AS over_ceiling, max(amount) AS largest FROM inserted) i, "
            "(SELECT count(*) FILTER (WHERE x_recipient IS NULL) AS no_recipient, count(*) FILTER (WHERE NOT x_routed) "
            f"AS unrouted, count(*) FILTER (WHERE {UNPAYABLE}) AS unpayable FROM candidates) c",
            [*params, uid, uid, payroll.pk, payroll.payment_cycle_id, plan.currency, LISTED_REFUSALS, ceiling],
        )
        count, total, no_recipient, unrouted, over_ceiling, largest, unpayable, listed = cursor.fetchone()
        cursor.execute("SELECT set_config('coremis.payroll_generation', '', true)")
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


def cycle_lock_name(cycle_id: Any) -> str:
    """The name of the transaction-level advisory lock that lets one generation at a time pay
    in the cycle ``cycle_id`` (taken as ``hashtextextended(name, 0)``, like ``payroll.send``'s;
    a collision with another lock only makes a generation wait, never pay twice)."""
    return f"payroll.generate:{cycle_id}"


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


def check_payroll_request(user: User, **request: Any) -> dict[str, Any]:
    """Everything ``createPayroll`` can refuse before any row is written (see
    :func:`_validated`), for a user who may create payrolls."""
    require(user, PAYROLL_CREATE)
    return _validated(user, **request)


def _validated(user: User, *, name: str, payment_plan_id: Any, payment_cycle_id: Any,
               payment_point_id: Any = None, location_ids: list[Any] | None = None,
               selection: QuerySet | None = None, check_rows: bool = True, lock: bool = False,
               follows: Payroll | None = None, **_: Any) -> dict[str, Any]:
    """Everything ``createPayroll`` can refuse before any row is written, so bad input gets a
    specific error at once rather than from a background job: unknown plan, cycle, point or
    location, a cycle that is not ACTIVE, nobody left to pay, a beneficiary no payment point
    serves. The generation job checks all of it again inside its own transaction, with
    ``lock``: the plan, cycle and point then stay locked FOR SHARE until it commits, so no rule,
    status or routing changes under a generation (see ``configuration.held``)."""
    get = held if lock else get_live
    plan = get(PaymentPlan, payment_plan_id, "Payment plan")
    cycle = get(PaymentCycle, payment_cycle_id, "Payment cycle")
    point = get(PaymentPoint, payment_point_id, "Payment point") if payment_point_id else None
    errors: list[FieldError] = []
    if not (name or "").strip():
        errors.append(FieldError("name", CoreErrorCode.REQUIRED, "The name is required."))
    if cycle.status != CycleStatus.ACTIVE:
        errors.append(FieldError("paymentCycleId", PayrollErrorCode.CYCLE_NOT_ACTIVE, f"The payment cycle is {cycle.status}."))
    if lock:  # the benefit plan's validity and ceiling are read again by generation
        plan.benefit_plan = held(BenefitPlan, plan.benefit_plan_id, "Benefit plan")
    outside = validity_problem(plan, cycle)
    if outside is not None:
        errors.append(outside)
    ids = [str(i) for i in location_ids or []]
    found = list(Location.objects.filter(pk__in=ids)) if ids else []
    if ids and len(found) != len(set(ids)):
        errors.append(FieldError("locationIds", PayrollErrorCode.UNKNOWN_LOCATION, "A location does not exist."))
    elif not all(in_scope(user, location) for location in found):
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


def create_payroll(user: User, *, name: str, payment_plan_id: Any, payment_cycle_id: Any,
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


def _create_problems(plan: PaymentPlan, cycle: PaymentCycle, location_ids: list[str],
                     follows: Payroll | None) -> list[FieldError]:
    """What other modules refuse about a new payroll (``payroll_create_problems``)."""
    from core.hooks import hook

    return [p for found in hook().payroll_create_problems(plan=plan, cycle=cycle, location_ids=location_ids,
                                                          follows=follows) for p in found or []]


def reissue_request(user: User, payroll_id: Any, name: str | None = None) -> dict[str, Any]:
    """The ``create_payroll`` arguments of a follow-up payroll, in the same cycle, for the
    beneficiaries whose payment in ``payroll_id`` failed."""
    require(user, PAYROLL_CREATE)
    return _reissue_arguments(user, payroll_id, name)


def _reissue_arguments(user: User, payroll_id: Any, name: str | None) -> dict[str, Any]:
    original = get_payroll(user, payroll_id)
    failed = BenefitConsumption.objects.filter(payroll=original, status=InstructionStatus.FAILED).values("beneficiary_id")
    if not failed.exists():
        raise ServiceError(PayrollErrorCode.NOTHING_TO_REISSUE, "No payment of this payroll failed.")
    return {"name": name or f"{original.name} (re-issue)", "payment_plan_id": original.payment_plan_id,
            "payment_cycle_id": original.payment_cycle_id, "payment_point_id": original.payment_point_id,
            "location_ids": original.location_ids, "follows": original, "selection": failed}


def reissue_failed(user: User, payroll_id: Any, name: str | None = None,
                   job_id: Any = None) -> tuple[Payroll, dict[str, int]]:
    """A follow-up payroll, in the same cycle, for the beneficiaries whose payment failed."""
    return create_payroll(user, **reissue_request(user, payroll_id, name), job_id=job_id)


# --- the use case: createPayroll -------------------------------------------------------------------


@dataclass(frozen=True)
class CreatePayrollRequest:
    """A checked ``createPayroll``: the generation job's parameters (JSON)."""

    actor: User
    params: dict[str, Any]


def check_create_payroll(actor: User, *, name: str, payment_plan_id: Any = None, payment_cycle_id: Any = None,
                         from_failed_invoices_payroll_id: Any = None, **fields: Any) -> CreatePayrollRequest:
    """``createPayroll``: the right (once), what can be refused before the job (see
    :func:`_validated`), a re-issue's original, and, when approval is routed, a task group that
    can decide (so no job ends unable to ask)."""
    require(actor, PAYROLL_CREATE)
    fields.pop("client_mutation_id", None)
    if from_failed_invoices_payroll_id:
        arguments = _reissue_arguments(actor, from_failed_invoices_payroll_id, name)
        _validated(actor, **arguments)
        params: dict[str, Any] = {"from_failed_payroll_id": str(from_failed_invoices_payroll_id),
                                  "name": arguments["name"]}
    else:
        if not (payment_plan_id and payment_cycle_id):
            raise ServiceError(CoreErrorCode.REQUIRED, "paymentPlanId and paymentCycleId are required.",
                               "paymentPlanId")
        data = {"name": name, "payment_plan_id": payment_plan_id, "payment_cycle_id": payment_cycle_id, **fields}
        _validated(actor, **data)
        params = {k: (str(v) if v is not None and k.endswith("_id") else v) for k, v in data.items()}
        params["location_ids"] = [str(i) for i in data.get("location_ids") or []]
    if needs_approval(APPROVE):
        check_can_request(actor, APPROVE)
    return CreatePayrollRequest(actor, params)


def do_create_payroll(request: CreatePayrollRequest) -> Job:
    """Start the generation job (``jobs.generate_payroll``), which checks everything again."""
    return start_job(GENERATE, request.params, request.actor)
