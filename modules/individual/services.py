"""Individual and household services: validation, scoping, writes, membership rules."""

from __future__ import annotations

import datetime
import logging
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, QuerySet
from django.db.models.fields.json import KT
from django.utils import timezone

from core import events, services
from core.actors import checked_actor
from core.errors import (
    CoreErrorCode,
    FieldError,
    NotFound,
    ServiceError,
    StaleVersion,
    ValidationFailed,
)
from core.hooks import hook
from core.permissions import require
from modules.individual.errors import IndividualErrorCode
from modules.individual.models import Group, GroupIndividual, Individual, RecipientType, Role, Sex
from modules.individual.permissions import REGISTRY_CREATE, REGISTRY_DELETE, REGISTRY_UPDATE
from modules.individual.unique_keys import index_name, unique_keys
from modules.individual.validation import group_schema, individual_schema
from modules.location import services as locations
from modules.location.models import Location

log = logging.getLogger("coremis.individual")

# --- reading ---------------------------------------------------------------------------------


def visible_individuals(user: Any, queryset: QuerySet | None = None) -> QuerySet:
    qs = Individual.objects.all() if queryset is None else queryset
    return locations.scope_queryset(qs, checked_actor(user), "location")


def visible_groups(user: Any, queryset: QuerySet | None = None) -> QuerySet:
    qs = Group.objects.all() if queryset is None else queryset
    return locations.scope_queryset(qs, checked_actor(user), "location")


def visible_memberships(user: Any, queryset: QuerySet | None = None) -> QuerySet:
    qs = GroupIndividual.objects.all() if queryset is None else queryset
    return locations.scope_queryset(qs, checked_actor(user), "group__location")


def _individual(user: Any, pk: Any, include_deleted: bool = False) -> Individual:
    manager = Individual.all_objects if include_deleted else Individual.objects
    found = visible_individuals(user, manager.filter(pk=pk)).first()
    if found is None:
        raise NotFound("Individual", pk)
    return found


def _group(user: Any, pk: Any, include_deleted: bool = False) -> Group:
    manager = Group.all_objects if include_deleted else Group.objects
    found = visible_groups(user, manager.filter(pk=pk)).first()
    if found is None:
        raise NotFound("Household", pk)
    return found


# Location rules, the same as the bulk import's: everyone has a location (a person nobody's
# scope includes could be seen and corrected by national users only), in the writer's scope,
# and a household's members live where the household does.


def _location(user: Any, pk: Any, errors: list[FieldError], field: str = "locationId") -> Location | None:
    if not pk:
        errors.append(FieldError(field, IndividualErrorCode.LOCATION_REQUIRED, "A location is required."))
        return None
    location = Location.objects.filter(pk=pk).first()
    if location is None:
        errors.append(FieldError(field, IndividualErrorCode.LOCATION_NOT_FOUND, f"No location {pk}."))
    elif not locations.in_scope(checked_actor(user), location):
        errors.append(FieldError(field, CoreErrorCode.OUT_OF_SCOPE, "This location is outside your locations."))
    return location


# --- individuals -----------------------------------------------------------------------------


def _check_individual(user: Any, data: dict[str, Any], exclude: Any = None) -> list[FieldError]:
    errors: list[FieldError] = []
    for name, label in (("first_name", "firstName"), ("last_name", "lastName")):
        value = (data.get(name) or "").strip()
        if not value:
            errors.append(FieldError(label, CoreErrorCode.REQUIRED, f"{label} is required."))
        elif len(value) > 255:
            errors.append(FieldError(label, CoreErrorCode.TOO_LONG, f"{label} is at most 255 characters."))
    dob = data.get("dob")
    if not isinstance(dob, datetime.date):
        errors.append(FieldError("dob", CoreErrorCode.REQUIRED, "The date of birth is required."))
    elif dob > datetime.date.today():
        errors.append(FieldError("dob", IndividualErrorCode.IN_FUTURE, "The date of birth is in the future."))
    elif dob.year < 1900:
        errors.append(FieldError("dob", IndividualErrorCode.TOO_OLD, "The date of birth is before 1900."))
    if data.get("sex") not in (None, "", *Sex.values):
        errors.append(FieldError("sex", CoreErrorCode.INVALID, "sex is M, F or O."))
    json_ext = data.get("json_ext") or {}
    errors.extend(individual_schema().errors(json_ext))
    for key in unique_keys():
        value = json_ext.get(key) if isinstance(json_ext, dict) else None
        if value is None:
            continue
        if _key_taken(key, value, exclude):
            errors.append(FieldError(
                f"jsonExt.{key}", IndividualErrorCode.DUPLICATE_KEY, f"Another individual already has {key} '{value}'."
            ))
    return errors


def _key_taken(key: str, value: Any, exclude: Any = None) -> bool:
    # Same expression and predicate as the unique index, so this is an index lookup.
    return (
        Individual.objects.filter(json_ext__has_key=key)
        .alias(_key=KT(f"json_ext__{key}"))
        .filter(_key=str(value))
        .exclude(pk=exclude)
        .exists()
    )


def _violated_constraint(exc: IntegrityError) -> str:
    """The name of the constraint or index PostgreSQL refused the write for ("" if unknown)."""
    diag = getattr(exc.__cause__, "diag", None)
    return str(getattr(diag, "constraint_name", "") or "")


def _save_unique(write: Any) -> Any:
    """Concurrent writers can pass the check above together; the unique index decides. Only a
    unique key's own index is ``DUPLICATE_KEY`` (naming the key); any other refusal of the
    database is a ``CONFLICT`` (the database's own text stays in the log)."""
    try:
        with transaction.atomic():
            return write()
    except IntegrityError as exc:
        constraint = _violated_constraint(exc)
        key = next((k for k in unique_keys() if index_name(k) == constraint), None)
        if key is not None:
            raise ServiceError(IndividualErrorCode.DUPLICATE_KEY,
                               f"Another individual already has this {key} (registered at the same moment).",
                               f"jsonExt.{key}") from exc
        log.warning("registry write refused by the database", extra={"constraint": constraint})
        raise ServiceError(CoreErrorCode.CONFLICT, "The change conflicts with data saved at the same moment; "
                                                   "nothing changed. Reload and try again.") from exc


def create_individual(user: Any, *, first_name: str, last_name: str, dob: datetime.date,
                      sex: str = "", location_id: Any = None, json_ext: Any = None) -> Individual:
    require(user, REGISTRY_CREATE)
    data = {"first_name": first_name, "last_name": last_name, "dob": dob, "sex": sex or "", "json_ext": json_ext}
    errors = _check_individual(user, data)
    location = _location(user, location_id, errors)
    if errors:
        raise ValidationFailed(errors)
    individual = Individual(first_name=first_name.strip(), last_name=last_name.strip(), dob=dob,
                            sex=sex or "", location=location, json_ext=json_ext or {})
    _save_unique(lambda: services.create(individual, user))
    created = [str(individual.pk)]
    transaction.on_commit(lambda: events.announce("individual_after_created", individual_ids=created, source="mutation"))
    return individual


UNSET: Any = ...


def update_individual(user: Any, pk: Any, *, version: int | None = None, **changes: Any) -> Individual:
    require(user, REGISTRY_UPDATE)
    individual = _individual(user, pk)
    fields = [k for k in ("first_name", "last_name", "dob", "sex", "json_ext") if changes.get(k, UNSET) is not UNSET]
    data = {k: getattr(individual, k) for k in ("first_name", "last_name", "dob", "sex", "json_ext")}
    data.update({k: changes[k] for k in fields})
    errors = _check_individual(user, data, exclude=individual.pk)
    if changes.get("location_id", UNSET) is not UNSET:
        individual.location = _location(user, changes["location_id"], errors)
        fields.append("location")
        membership = GroupIndividual.objects.filter(individual=individual).select_related("group").first()
        if (membership is not None and individual.location is not None
                and individual.location_id != membership.group.location_id):
            errors.append(FieldError(
                "locationId", IndividualErrorCode.LOCATION_MISMATCH,
                f"{individual} lives in household {membership.group.code}, whose location is another; move the "
                "household (updateGroup) or move them to a household in the new location."))
    if errors:
        raise ValidationFailed(errors)
    for name in fields:
        if name != "location":
            value = data[name]
            setattr(individual, name, value.strip() if isinstance(value, str) else value)
    return _save_unique(lambda: services.save_versioned(individual, user, fields, version))


def delete_individual(user: Any, pk: Any, version: int | None = None) -> Individual:
    require(user, REGISTRY_DELETE)
    individual = _individual(user, pk)
    hook().individual_validate_delete(individual=individual)
    membership = GroupIndividual.objects.filter(individual=individual).first()
    if membership is not None:
        _remove_membership(user, membership)
    return services.set_deleted(individual, user, True, version)


def restore_individual(user: Any, pk: Any, version: int | None = None) -> Individual:
    require(user, REGISTRY_DELETE)
    individual = _individual(user, pk, include_deleted=True)
    errors = [e for e in _check_individual(None, {
        "first_name": individual.first_name, "last_name": individual.last_name, "dob": individual.dob,
        "sex": individual.sex, "json_ext": individual.json_ext}, exclude=individual.pk) if e.code == "DUPLICATE_KEY"]
    if errors:
        raise ValidationFailed(errors)
    return services.set_deleted(individual, user, False, version)


# --- households ------------------------------------------------------------------------------


def _check_group(code: str, json_ext: Any, exclude: Any = None) -> list[FieldError]:
    errors: list[FieldError] = []
    code = (code or "").strip()
    if not code:
        errors.append(FieldError("code", CoreErrorCode.REQUIRED, "The household code is required."))
    elif len(code) > 64:
        errors.append(FieldError("code", CoreErrorCode.TOO_LONG, "The household code is at most 64 characters."))
    elif Group.objects.filter(code=code).exclude(pk=exclude).exists():
        errors.append(FieldError("code", IndividualErrorCode.GROUP_CODE_TAKEN, f"Another household has the code '{code}'."))
    errors.extend(group_schema().errors(json_ext or {}))
    return errors


def create_group(user: Any, *, code: str, location_id: Any = None, json_ext: Any = None) -> Group:
    require(user, REGISTRY_CREATE)
    errors = _check_group(code, json_ext)
    location = _location(user, location_id, errors)
    if errors:
        raise ValidationFailed(errors)
    group = Group(code=code.strip(), location=location, json_ext=json_ext or {})
    return _save_unique(lambda: services.create(group, user))


def update_group(user: Any, pk: Any, *, version: int | None = None, code: Any = UNSET,
                 location_id: Any = UNSET, json_ext: Any = UNSET) -> Group:
    require(user, REGISTRY_UPDATE)
    group = _group(user, pk)
    new_code = group.code if code is UNSET else code
    new_ext = group.json_ext if json_ext is UNSET else json_ext
    errors = _check_group(new_code, new_ext, exclude=group.pk)
    fields = ["code", "json_ext"]
    moved = False
    if location_id is not UNSET:
        previous = group.location_id
        group.location = _location(user, location_id, errors)
        fields.append("location")
        moved = group.location is not None and group.location_id != previous
    if errors:
        raise ValidationFailed(errors)
    group.code, group.json_ext = new_code.strip(), new_ext
    with transaction.atomic():
        saved = _save_unique(lambda: services.save_versioned(group, user, fields, version))
        if moved:
            _move_members(user, group)
    return saved


def _move_members(user: Any, group: Group) -> None:
    """A household that moves takes its members along (one UPDATE; history by trigger), so
    they keep living where it does; each of them must be someone the user may change."""
    members = Individual.objects.filter(memberships__group=group, memberships__is_deleted=False)
    locations.require_all_in_scope(user, members, "location", "Moving this household", "members")
    members.update(location=group.location, version=F("version") + 1, date_updated=timezone.now(),
                   user_updated_id=getattr(user, "pk", None))


def delete_group(user: Any, pk: Any, version: int | None = None) -> Group:
    """Soft-delete a household and its memberships (the people stay registered)."""
    require(user, REGISTRY_DELETE)
    group = _group(user, pk)
    hook().group_validate_delete(group=group)
    if version is not None and version != group.version:
        raise StaleVersion(f"household {group.pk}", version, group.version)
    for membership in GroupIndividual.objects.filter(group=group):
        _remove_membership(user, membership)  # also clears group.head through _sync_head
    group.refresh_from_db()
    return services.set_deleted(group, user, True)


def restore_group(user: Any, pk: Any, version: int | None = None) -> Group:
    require(user, REGISTRY_DELETE)
    group = _group(user, pk, include_deleted=True)
    if Group.objects.filter(code=group.code).exists():
        raise ServiceError(IndividualErrorCode.GROUP_CODE_TAKEN, f"Another household now has the code '{group.code}'.", "code")
    return services.set_deleted(group, user, False, version)


# --- memberships -----------------------------------------------------------------------------


def _check_membership(group: Group, role: str, recipient_type: str | None, exclude: Any = None) -> list[FieldError]:
    errors: list[FieldError] = []
    if role not in Role.values:
        errors.append(FieldError("role", CoreErrorCode.INVALID, f"'{role}' is not a household role."))
    if recipient_type not in (None, *RecipientType.values):
        errors.append(FieldError("recipientType", CoreErrorCode.INVALID, "recipientType is PRIMARY or SECONDARY."))
    others = GroupIndividual.objects.filter(group=group).exclude(pk=exclude)
    if role == Role.HEAD and others.filter(role=Role.HEAD).exists():
        errors.append(FieldError("role", IndividualErrorCode.HEAD_EXISTS, "This household already has a head."))
    if recipient_type == RecipientType.PRIMARY and others.filter(recipient_type=RecipientType.PRIMARY).exists():
        errors.append(FieldError("recipientType", IndividualErrorCode.PRIMARY_EXISTS, "This household already has a primary recipient."))
    return errors


def _sync_head(user: Any, group: Group) -> None:
    head = GroupIndividual.objects.filter(group=group, role=Role.HEAD).values_list("individual_id", flat=True).first()
    if group.head_id != head:
        group.head_id = head
        services.save_versioned(group, user, ["head"])


def _membership_write(write: Any) -> Any:
    try:
        with transaction.atomic():
            return write()
    except IntegrityError as exc:
        raise ServiceError(
            IndividualErrorCode.MEMBERSHIP_CONFLICT,
            "Someone changed this household at the same time (a head, primary recipient or member "
            "already exists). Reload it and try again.",
        ) from exc


def _same_location(individual: Individual, group: Group) -> list[FieldError]:
    if group.location_id is None:
        return [FieldError("groupId", IndividualErrorCode.LOCATION_REQUIRED,
                           f"Household {group.code} has no location; give it one first (updateGroup).")]
    if individual.location_id is None:
        return [FieldError("individualId", IndividualErrorCode.LOCATION_REQUIRED,
                           f"{individual} has no location; give them the household's first (updateIndividual).")]
    if individual.location_id != group.location_id:
        return [FieldError("individualId", IndividualErrorCode.LOCATION_MISMATCH,
                           f"{individual} lives in another location than household {group.code}; a household's "
                           "members live where it does (update the person's location first).")]
    return []


def add_member(user: Any, *, group_id: Any, individual_id: Any, role: str,
               recipient_type: str | None = None) -> GroupIndividual:
    require(user, REGISTRY_UPDATE)
    group = _group(user, group_id)
    individual = _individual(user, individual_id)
    errors = _check_membership(group, role, recipient_type)
    current = GroupIndividual.objects.filter(individual=individual).select_related("group").first()
    if current is not None:
        errors.append(FieldError(
            "individualId", IndividualErrorCode.ALREADY_MEMBER,
            f"{individual} already belongs to household {current.group.code}; move them instead.",
        ))
    errors += _same_location(individual, group)
    if errors:
        raise ValidationFailed(errors)
    membership = GroupIndividual(group=group, individual=individual, role=role, recipient_type=recipient_type)
    _membership_write(lambda: services.create(membership, user))
    _sync_head(user, group)
    return membership


def edit_member(user: Any, pk: Any, *, version: int | None = None, role: Any = UNSET,
                recipient_type: Any = UNSET) -> GroupIndividual:
    require(user, REGISTRY_UPDATE)
    membership = visible_memberships(user, GroupIndividual.objects.filter(pk=pk)).select_related("group").first()
    if membership is None:
        raise NotFound("Membership", pk)
    new_role = membership.role if role is UNSET else role
    new_type = membership.recipient_type if recipient_type is UNSET else recipient_type
    errors = _check_membership(membership.group, new_role, new_type, exclude=membership.pk)
    if errors:
        raise ValidationFailed(errors)
    membership.role, membership.recipient_type = new_role, new_type
    _membership_write(lambda: services.save_versioned(membership, user, ["role", "recipient_type"], version))
    _sync_head(user, membership.group)
    return membership


def _remove_membership(user: Any, membership: GroupIndividual) -> GroupIndividual:
    services.set_deleted(membership, user, True)
    _sync_head(user, membership.group)
    return membership


def remove_member(user: Any, pk: Any) -> GroupIndividual:
    require(user, REGISTRY_UPDATE)
    membership = visible_memberships(user, GroupIndividual.objects.filter(pk=pk)).select_related("group").first()
    if membership is None:
        raise NotFound("Membership", pk)
    return _remove_membership(user, membership)


def move_member(user: Any, *, individual_id: Any, group_id: Any, role: str,
                recipient_type: str | None = None) -> GroupIndividual:
    """Leave the current household (if any) and join another, in one transaction. The person,
    both households and the move itself are checked before anything changes: a person is never
    taken out of a household the user may not see, nor put into one of another location."""
    require(user, REGISTRY_UPDATE)
    individual = _individual(user, individual_id)
    group = _group(user, group_id)
    errors = _same_location(individual, group)
    if errors:
        raise ValidationFailed(errors)
    current = GroupIndividual.objects.filter(individual=individual).first()
    with transaction.atomic():
        if current is not None:
            if current.group_id == group.pk:
                raise ServiceError(IndividualErrorCode.SAME_HOUSEHOLD, "The individual is already in this household.", "groupId")
            if not visible_memberships(user, GroupIndividual.objects.filter(pk=current.pk)).exists():
                raise ServiceError(CoreErrorCode.OUT_OF_SCOPE, "The individual's current household is outside your locations.",
                                   "individualId")
            _remove_membership(user, current)
        return add_member(user, group_id=group.pk, individual_id=individual.pk, role=role,
                          recipient_type=recipient_type)
