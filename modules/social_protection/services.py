"""Benefit plans, previews, enrollment and beneficiary status: the service layer."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, QuerySet

from core import services
from core.errors import CoreErrorCode, FieldError, NotFound, ServiceError, ValidationFailed
from core.json_ext import JsonExtSchema
from core.loader import module_config
from core.permissions import require
from modules.individual.models import Group, Individual
from modules.individual.services import visible_groups, visible_individuals
from modules.location.services import require_national
from modules.social_protection import targeting
from modules.social_protection.errors import SocialProtectionErrorCode
from modules.social_protection.models import (
    TRANSITIONS,
    Beneficiary,
    BeneficiaryStatus,
    BenefitPlan,
    GroupBeneficiary,
    PlanStatus,
    PlanType,
)
from modules.social_protection.permissions import (
    BENEFICIARY_ENROLL,
    BENEFICIARY_UPDATE,
    PLAN_CLOSE,
    PLAN_CREATE,
    PLAN_DELETE,
    PLAN_UPDATE,
)

# --- plans -----------------------------------------------------------------------------------
#
# Scope: a benefit plan is one programme for every location, so creating, changing, deleting
# or closing it needs national scope. Enrollment, status changes and duplicate reviews act
# only on the beneficiaries in the user's scope (the maker's, when a checker approves).

PLAN_FIELDS = ("code", "name", "type", "description", "institution", "max_beneficiaries",
               "ceiling_per_beneficiary", "date_valid_from", "date_valid_to",
               "beneficiary_data_schema", "criteria", "json_ext")


def get_plan(pk: Any, include_deleted: bool = False) -> BenefitPlan:
    manager = BenefitPlan.all_objects if include_deleted else BenefitPlan.objects
    plan = manager.filter(pk=pk).first()
    if plan is None:
        raise NotFound("Benefit plan", pk)
    return plan


def code_errors(code: str, exclude: Any = None) -> list[FieldError]:
    code = (code or "").strip()
    if not code:
        return [FieldError("code", CoreErrorCode.REQUIRED, "The code is required.")]
    if len(code) > 50:
        return [FieldError("code", CoreErrorCode.TOO_LONG, "The code is at most 50 characters.")]
    if BenefitPlan.objects.filter(code=code).exclude(pk=exclude).exists():
        return [FieldError("code", SocialProtectionErrorCode.PLAN_CODE_TAKEN, f"Another benefit plan has the code '{code}'.")]
    return []


def name_errors(name: str, exclude: Any = None) -> list[FieldError]:
    if not (name or "").strip():
        return [FieldError("name", CoreErrorCode.REQUIRED, "The name is required.")]
    if BenefitPlan.objects.filter(name=name.strip()).exclude(pk=exclude).exists():
        return [FieldError("name", SocialProtectionErrorCode.PLAN_NAME_TAKEN, f"Another benefit plan is named '{name}'.")]
    return []


def schema_errors(schema: Any) -> list[FieldError]:
    if schema in (None, {}):
        return []
    try:
        JsonExtSchema(schema)
    except Exception as exc:  # jsonschema.SchemaError or a non-dict
        return [FieldError("beneficiaryDataSchema", SocialProtectionErrorCode.INVALID_SCHEMA, f"Not a valid JSON Schema: {exc}")]
    return []


def _check_plan(data: dict[str, Any], exclude: Any = None) -> list[FieldError]:
    errors = code_errors(data["code"], exclude) + name_errors(data["name"], exclude)
    if data["type"] not in PlanType.values:
        errors.append(FieldError("type", CoreErrorCode.INVALID, "type is INDIVIDUAL or GROUP."))
    start, end = data.get("date_valid_from"), data.get("date_valid_to")
    if not isinstance(start, datetime.date) or not isinstance(end, datetime.date):
        errors.append(FieldError("dateValidFrom", CoreErrorCode.REQUIRED, "Both validity dates are required."))
    elif end < start:
        errors.append(FieldError("dateValidTo", SocialProtectionErrorCode.BEFORE_START, "The plan ends before it starts."))
    if data.get("max_beneficiaries") is not None and data["max_beneficiaries"] < 0:
        errors.append(FieldError("maxBeneficiaries", SocialProtectionErrorCode.NEGATIVE, "maxBeneficiaries cannot be negative."))
    ceiling = data.get("ceiling_per_beneficiary")
    if ceiling is not None and Decimal(ceiling) < 0:
        errors.append(FieldError("ceilingPerBeneficiary", SocialProtectionErrorCode.NEGATIVE, "The ceiling cannot be negative."))
    errors += schema_errors(data.get("beneficiary_data_schema"))
    if data["type"] in PlanType.values:
        errors += targeting.validate(data["type"], data.get("criteria"))
    return errors


def create_plan(user: Any, **data: Any) -> BenefitPlan:
    require(user, PLAN_CREATE)
    require_national(user, "Creating a benefit plan")
    values = {k: data.get(k) for k in PLAN_FIELDS}
    values["type"] = values["type"] or PlanType.INDIVIDUAL
    values["beneficiary_data_schema"] = values["beneficiary_data_schema"] or {}
    values["criteria"] = values["criteria"] or {}
    for text in ("description", "institution"):
        values[text] = values[text] or ""
    errors = _check_plan(values)
    if errors:
        raise ValidationFailed(errors)
    values["code"], values["name"] = values["code"].strip(), values["name"].strip()
    return services.create(BenefitPlan(**values), user)


def update_plan(user: Any, pk: Any, *, version: int | None = None, **changes: Any) -> BenefitPlan:
    require(user, PLAN_UPDATE)
    require_national(user, "Changing a benefit plan")
    plan = get_plan(pk)
    if plan.status == PlanStatus.CLOSED:
        raise ServiceError(SocialProtectionErrorCode.PLAN_CLOSED, "A closed plan cannot change.")
    if "type" in changes and changes["type"] != plan.type and _has_beneficiaries(plan):
        raise ValidationFailed([FieldError("type", SocialProtectionErrorCode.HAS_BENEFICIARIES, "The type of a plan with beneficiaries cannot change.")])
    fields = [k for k in PLAN_FIELDS if k in changes]
    values = {k: getattr(plan, k) for k in PLAN_FIELDS} | {k: changes[k] for k in fields}
    errors = _check_plan(values, exclude=plan.pk)
    if errors:
        raise ValidationFailed(errors)
    for name in fields:
        setattr(plan, name, values[name])
    return services.save_versioned(plan, user, fields, version)


def delete_plan(user: Any, pk: Any, version: int | None = None) -> BenefitPlan:
    require(user, PLAN_DELETE)
    require_national(user, "Deleting a benefit plan")
    plan = get_plan(pk)
    if _has_beneficiaries(plan, live_only=True):
        raise ServiceError(SocialProtectionErrorCode.HAS_BENEFICIARIES, "Close the plan instead: it has beneficiaries.", "id")
    return services.set_deleted(plan, user, True, version)


def _has_beneficiaries(plan: BenefitPlan, live_only: bool = False) -> bool:
    rows = beneficiary_model(plan).objects.filter(benefit_plan=plan)
    if live_only:
        rows = rows.exclude(status=BeneficiaryStatus.GRADUATED)
    return rows.exists()


def check_close_plan(user: Any, pk: Any) -> BenefitPlan:
    """Whether ``user`` may close the plan: closing graduates its beneficiaries in every
    location, so it needs national scope (checked before an approval is even asked for)."""
    require(user, PLAN_CLOSE)
    require_national(user, "Closing a benefit plan")
    plan = get_plan(pk)
    if plan.status == PlanStatus.CLOSED:
        raise ServiceError(SocialProtectionErrorCode.PLAN_CLOSED, "The plan is already closed.")
    return plan


def close_plan(user: Any, pk: Any, version: int | None = None) -> dict[str, Any]:
    """Close a plan: every non-graduated beneficiary graduates, in one statement."""
    plan = check_close_plan(user, pk)
    plan.status = PlanStatus.CLOSED
    services.save_versioned(plan, user, ["status"], version)
    graduated = _set_status(plan, beneficiary_model(plan).objects.filter(benefit_plan=plan),
                            BeneficiaryStatus.GRADUATED, user)
    return {"plan": plan, "graduated": graduated}


# --- who is eligible -------------------------------------------------------------------------


def beneficiary_model(plan: BenefitPlan) -> type[Beneficiary] | type[GroupBeneficiary]:
    return GroupBeneficiary if plan.type == PlanType.GROUP else Beneficiary


def subject_field(plan: BenefitPlan) -> str:
    return "group" if plan.type == PlanType.GROUP else "individual"


def eligible(plan: BenefitPlan, user: Any, criteria: Any = None) -> QuerySet:
    """Live individuals or households matching the plan's criteria, within ``user``'s scope."""
    condition = targeting.build(plan.type, plan.criteria if criteria is None else criteria)
    if plan.type == PlanType.GROUP:
        return visible_groups(user, Group.objects.filter(condition))
    return visible_individuals(user, Individual.objects.filter(condition))


def not_enrolled(plan: BenefitPlan, queryset: QuerySet) -> QuerySet:
    model = beneficiary_model(plan)
    enrolled = model.objects.filter(benefit_plan=plan, **{subject_field(plan): OuterRef("pk")})
    return queryset.exclude(Exists(enrolled))


def preview(user: Any, plan_id: Any, criteria: Any = None, sample_size: int | None = None) -> dict[str, Any]:
    """How many match, how many are not yet enrolled, how many would fit under the plan's
    maximum, and a sample; every number is one SQL count."""
    require(user, BENEFICIARY_ENROLL)
    plan = get_plan(plan_id)
    matching = eligible(plan, user, criteria)
    candidates = not_enrolled(plan, matching)
    total, new = matching.count(), candidates.count()
    enrolled = beneficiary_model(plan).objects.filter(benefit_plan=plan).count()
    room = None if plan.max_beneficiaries is None else max(0, plan.max_beneficiaries - enrolled)
    size = module_config("social_protection")["preview_sample_size"] if sample_size is None else sample_size
    return {
        "plan": plan,
        "matching": total,
        "already_enrolled": total - new,
        "not_enrolled": new,
        "would_enroll": new if room is None else min(new, room),
        "capacity_left": room,
        "sample": list(candidates.order_by("pk")[:size]),
    }


# --- enrollment ------------------------------------------------------------------------------


def _insert_sql(plan: BenefitPlan) -> str:
    table = beneficiary_model(plan)._meta.db_table
    subject = f"{subject_field(plan)}_id"
    return (
        f"INSERT INTO {table} (id, date_created, date_updated, user_created_id, user_updated_id, "
        f"version, is_deleted, json_ext, benefit_plan_id, {subject}, status) "
        f"SELECT gen_random_uuid(), now(), now(), %s, %s, 1, false, '{{}}'::jsonb, %s, s.id, %s "
        f"FROM ({{subquery}}) s "
        f"ON CONFLICT (benefit_plan_id, {subject}) WHERE NOT is_deleted DO NOTHING"
    )


def enroll_chunk(plan: BenefitPlan, user: Any, status: str, after: Any, limit: int,
                 criteria: Any = None, selection: list[Any] | None = None) -> tuple[int, Any]:
    """Enroll the next ``limit`` candidates with id > ``after``; returns (inserted, last id).

    The plan row is locked for the chunk so two enrollments cannot together pass the plan's
    maximum; ON CONFLICT makes a re-run (a retried or duplicated job) insert nothing twice.
    """
    with transaction.atomic():
        locked = BenefitPlan.objects.select_for_update().get(pk=plan.pk)
        if locked.status == PlanStatus.CLOSED:
            raise ServiceError(SocialProtectionErrorCode.PLAN_CLOSED, "The plan is closed.")
        if locked.max_beneficiaries is not None:
            live = beneficiary_model(plan).objects.filter(benefit_plan=plan).count()
            limit = min(limit, max(0, locked.max_beneficiaries - live))
            if limit == 0:
                return 0, None
        candidates = not_enrolled(plan, eligible(plan, user, criteria))
        if selection is not None:
            candidates = candidates.filter(pk__in=selection)
        if after is not None:
            candidates = candidates.filter(pk__gt=after)
        page = candidates.order_by("pk").values("pk")[:limit]
        ids_sql, ids_params = page.query.sql_with_params()
        uid = getattr(user, "pk", None)
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH page(id) AS ({ids_sql}), inserted AS ("
                + _insert_sql(plan).replace("{subquery}", "SELECT id FROM page")
                + " RETURNING 1) SELECT (SELECT count(*) FROM inserted), (SELECT max(id::text) FROM page)",
                [*ids_params, uid, uid, plan.pk, status],
            )
            inserted, last = cursor.fetchone()
        return int(inserted), last


def validate_enrollment(user: Any, plan: BenefitPlan, status: str) -> None:
    require(user, BENEFICIARY_ENROLL)
    if status not in (BeneficiaryStatus.POTENTIAL, BeneficiaryStatus.ACTIVE):
        raise ValidationFailed([FieldError("status", CoreErrorCode.INVALID, "Enroll as POTENTIAL or ACTIVE.")])
    if plan.status == PlanStatus.CLOSED:
        raise ServiceError(SocialProtectionErrorCode.PLAN_CLOSED, "The plan is closed.")


# --- status ----------------------------------------------------------------------------------


def _set_status(plan: BenefitPlan, rows: QuerySet, target: str, user: Any) -> int:
    """Move rows to ``target`` where the transition is allowed; one UPDATE, history by trigger."""
    sources = [s for s, nexts in TRANSITIONS.items() if target in nexts]
    from django.db.models import F
    from django.utils import timezone

    return rows.filter(status__in=sources).update(
        status=target, version=F("version") + 1, date_updated=timezone.now(),
        user_updated_id=getattr(user, "pk", None),
    )


def check_transition(beneficiary: Beneficiary | GroupBeneficiary, target: str) -> None:
    if target not in BeneficiaryStatus.values:
        raise ValidationFailed([FieldError("status", CoreErrorCode.INVALID, f"'{target}' is not a beneficiary status.")])
    if target not in TRANSITIONS[beneficiary.status]:
        allowed = ", ".join(sorted(TRANSITIONS[beneficiary.status])) or "none (it is final)"
        raise ValidationFailed([FieldError(
            "status", SocialProtectionErrorCode.INVALID_TRANSITION,
            f"A {beneficiary.status} beneficiary cannot become {target}; allowed: {allowed}.",
        )])


def change_status(user: Any, beneficiary: Beneficiary | GroupBeneficiary, target: str,
                  version: int | None = None) -> Beneficiary | GroupBeneficiary:
    require(user, BENEFICIARY_UPDATE)
    check_transition(beneficiary, target)
    beneficiary.status = target
    return services.save_versioned(beneficiary, user, ["status"], version)


def bulk_change_status(user: Any, plan: BenefitPlan, rows: QuerySet, target: str) -> dict[str, int]:
    require(user, BENEFICIARY_UPDATE)
    if target not in BeneficiaryStatus.values:
        raise ValidationFailed([FieldError("status", CoreErrorCode.INVALID, f"'{target}' is not a beneficiary status.")])
    total = rows.count()
    changed = _set_status(plan, rows, target, user)
    return {"matched": total, "changed": changed, "skipped": total - changed}
