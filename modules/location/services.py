"""Location services: the use cases on locations (``check_*`` / ``do_*``), the CSV import's
entry point, and the user scoping every module reuses."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet

from core import services
from core.actors import checked_actor
from core.auth.errors import AuthErrorCode
from core.errors import CoreErrorCode, FieldError, NotFound, ServiceError, ValidationFailed
from core.hooks import hook
from core.imports import ImportMode
from core.jobs import start_job
from core.loader import module_config
from core.models import Role, User
from core.permissions import has_permission, require
from core.uploads import get_upload
from modules.location.errors import LocationErrorCode
from modules.location.models import Location, UserLocation
from modules.location.permissions import (
    LOCATION_CREATE,
    LOCATION_DELETE,
    LOCATION_IMPORT,
    LOCATION_UPDATE,
    SCOPE_MANAGE,
    SCOPE_NATIONAL,
)

if TYPE_CHECKING:
    from core.models import Job, Upload

IMPORT_JOB = "location.import"  # the job kind
IMPORT_PURPOSE = "location.import"  # the upload purpose (another vocabulary, same name on purpose)


def levels() -> list[str]:
    return list(module_config("location")["levels"])


def path_for(location_id: uuid.UUID, parent: Location | None) -> str:
    return (parent.path if parent else "") + location_id.hex + "/"


# --- scoping ---------------------------------------------------------------------------------


def is_national(user: Any) -> bool:
    return bool(user.is_superuser) or has_permission(user, SCOPE_NATIONAL)


def scope_paths(user: Any) -> list[str] | None:
    """The path prefixes a user is limited to; ``None`` means no limit (national users)."""
    if is_national(user):
        return None
    cached: list[str] | None = getattr(user, "_location_scope_paths", None)
    if cached is None:
        cached = list(
            UserLocation.objects.filter(user=user, location__is_deleted=False).values_list(
                "location__path", flat=True
            )
        )
        user._location_scope_paths = cached
    return cached


def within_paths(paths: list[str], location_field: str = "") -> Q:
    """Rows whose location is one of ``paths`` or under it (``location_field`` = FK path)."""
    lookup = f"{location_field}__path__startswith" if location_field else "path__startswith"
    condition = Q(pk__in=[])
    for path in paths:
        condition |= Q(**{lookup: path})
    return condition


def scope_queryset(queryset: QuerySet, user: Any, location_field: str = "location") -> QuerySet:
    """Limit any queryset with a location foreign key to what ``user`` may see.

    Every list, export and job a user starts goes through this; a user with no scope and no
    national permission sees nothing.
    """
    paths = scope_paths(user)
    if paths is None:
        return queryset
    return queryset.filter(within_paths(paths, location_field))


def in_scope(user: Any, location: Location) -> bool:
    paths = scope_paths(user)
    return paths is None or any(location.path.startswith(p) for p in paths)


def require_national(user: Any, action: str) -> None:
    """Refuse ``action`` (a sentence: "Closing a benefit plan") to a user with a location scope.

    For actions on a whole plan, a whole configuration, or anything else that changes rows in
    every location at once. The system actor is national.
    """
    if not is_national(checked_actor(user)):
        raise ServiceError(CoreErrorCode.OUT_OF_SCOPE, f"{action} affects every location; it needs national scope "
                                           "(location.scope.national).")


def outside_scope(user: Any, queryset: QuerySet, location_field: str = "location") -> QuerySet:
    """The rows of ``queryset`` that ``user`` may not see (rows without a location included)."""
    paths = scope_paths(user)
    if paths is None:
        return queryset.none()
    return queryset.exclude(within_paths(paths, location_field))


def require_all_in_scope(user: Any, queryset: QuerySet, location_field: str, action: str, what: str) -> None:
    """Refuse ``action`` on a set of rows (``what``: "payments") unless every one of them is in
    the user's scope, so an action meant for one place never changes another's."""
    if scope_paths(checked_actor(user)) is None:
        return
    outside = outside_scope(user, queryset, location_field)
    if outside.exists():
        raise ServiceError(CoreErrorCode.OUT_OF_SCOPE, f"{action} would change {outside.count()} {what} outside your "
                                           "locations; only a user whose scope covers all of them may do it.", "id")


def descendants_of(location_ids: list[Any], location_field: str = "") -> Q:
    """Rows at any of ``location_ids`` or anywhere under them."""
    paths = list(Location.objects.filter(pk__in=location_ids).values_list("path", flat=True))
    return within_paths(paths, location_field)


# --- users' scope (the core reaches these through its user hooks) -----------------------------


def users_visible_to(actor: Any, queryset: QuerySet) -> QuerySet:
    """Users whose whole scope lies within ``actor``'s. A scoped actor never sees a national
    user (superuser or ``location.scope.national``), nor one with no scope at all."""
    paths = scope_paths(actor)
    if paths is None:
        return queryset
    scopes = UserLocation.objects.filter(user=OuterRef("pk"), location__is_deleted=False)
    national = Role.objects.filter(users=OuterRef("pk"), permissions__contains=[SCOPE_NATIONAL])
    return (queryset.filter(is_superuser=False)
            .filter(Exists(scopes))
            .exclude(Exists(scopes.exclude(within_paths(paths, "location"))))
            .exclude(Exists(national)))


def users_at(queryset: QuerySet, location_id: Any) -> QuerySet:
    """Users scoped to ``location_id`` or to a place under it."""
    return queryset.filter(Exists(
        UserLocation.objects.filter(user=OuterRef("pk")).filter(descendants_of([location_id], "location"))
    ))


def user_location_problems(actor: Any, location_ids: list[Any], field: str) -> list[FieldError]:
    """Why ``actor`` may not scope a user to exactly ``location_ids``."""
    found = list(Location.objects.filter(pk__in=location_ids))
    problems: list[FieldError] = []
    missing = {str(i) for i in location_ids} - {str(loc.pk) for loc in found}
    if missing:
        problems.append(FieldError(field, AuthErrorCode.LOCATION_NOT_FOUND, f"Unknown locations: {', '.join(sorted(missing))}"))
    outside = sorted(loc.code for loc in found if not in_scope(actor, loc))
    if outside:
        problems.append(FieldError(field, CoreErrorCode.OUT_OF_SCOPE,
                                   f"You cannot give a user locations outside your own: {', '.join(outside)}."))
    if not location_ids and not is_national(actor):
        # A user with no location would be outside every scoped administrator's sight.
        problems.append(FieldError(field, AuthErrorCode.LOCATION_REQUIRED, "Give the user at least one of your locations."))
    return problems


def assign_user_locations(user: Any, location_ids: list[Any]) -> list[Location]:
    """Scope ``user`` to exactly these (checked) locations."""
    found = list(Location.objects.filter(pk__in=location_ids))
    UserLocation.objects.filter(user=user).exclude(location__in=found).delete()
    UserLocation.objects.bulk_create(
        [UserLocation(user=user, location=loc) for loc in found], ignore_conflicts=True
    )
    return found


@dataclass(frozen=True)
class SetUserLocationsRequest:
    actor: User
    user: User
    location_ids: list[Any]


def check_set_user_locations(actor: User, user_id: Any, location_ids: list[Any]) -> SetUserLocationsRequest:
    """``setUserLocations``: the same rules as the core's user mutations (the user must be
    within the actor's scope, and so must every location given)."""
    require(actor, SCOPE_MANAGE)
    user = users_visible_to(actor, User.objects.filter(pk=user_id)).first()
    if user is None:
        raise NotFound("User", user_id)
    problems = [FieldError(p.field, _own(p.code), p.message)
                for p in user_location_problems(actor, location_ids, "locationUuids")]
    if problems:
        raise ValidationFailed(problems)
    return SetUserLocationsRequest(actor, user, list(location_ids))


def _own(code: str) -> str:
    # The hook answers the core's codes; this module's mutation answers its own of the same name.
    return LocationErrorCode(code) if code in LocationErrorCode.__members__ else code


def do_set_user_locations(request: SetUserLocationsRequest) -> list[Location]:
    return assign_user_locations(request.user, request.location_ids)


def set_user_locations(actor: User, user: User, location_ids: list[Any]) -> list[Location]:
    """One step, for scripts and tests."""
    return do_set_user_locations(check_set_user_locations(actor, user.pk, location_ids))


# --- locations ---------------------------------------------------------------------------------


def _get(user: Any, location_id: Any, include_deleted: bool = False, lock: bool = False) -> Location:
    manager = Location.all_objects if include_deleted else Location.objects
    rows = manager.select_related("parent").filter(pk=location_id)
    location = (rows.select_for_update(of=("self",)) if lock else rows).first()
    if location is None or not in_scope(user, location):
        raise NotFound("Location", location_id)
    return location


def _check_fields(user: Any, code: str, name: str, type_: str, parent: Location | None,
                  exclude: Any = None) -> list[FieldError]:
    errors: list[FieldError] = []
    code = (code or "").strip()
    if not code:
        errors.append(FieldError("code", CoreErrorCode.REQUIRED, "The code is required."))
    elif len(code) > 50:
        errors.append(FieldError("code", CoreErrorCode.TOO_LONG, "The code is at most 50 characters."))
    elif Location.objects.filter(code=code).exclude(pk=exclude).exists():
        errors.append(FieldError("code", LocationErrorCode.LOCATION_CODE_TAKEN,
                                 f"Another location already has the code '{code}'."))
    if not (name or "").strip():
        errors.append(FieldError("name", CoreErrorCode.REQUIRED, "The name is required."))
    names = levels()
    if type_ not in names:
        errors.append(FieldError("type", LocationErrorCode.INVALID_TYPE,
                                 f"'{type_}' is not a level; levels are {', '.join(names)}."))
    else:
        level = names.index(type_)
        if level == 0 and parent is not None:
            errors.append(FieldError("parentUuid", LocationErrorCode.INVALID_PARENT,
                                     f"A {type_} is a top level and has no parent."))
        elif level > 0 and parent is None:
            errors.append(FieldError("parentUuid", CoreErrorCode.REQUIRED, f"A {type_} needs a parent {names[level - 1]}."))
        elif parent is not None and parent.level != level - 1:
            errors.append(FieldError(
                "parentUuid", LocationErrorCode.INVALID_PARENT,
                f"The parent of a {type_} must be a {names[level - 1]}, not a {parent.type}.",
            ))
    if parent is None and not is_national(user):
        errors.append(FieldError("parentUuid", CoreErrorCode.OUT_OF_SCOPE,
                                 "Only national users may change top-level locations."))
    elif parent is not None and not in_scope(user, parent):
        errors.append(FieldError("parentUuid", CoreErrorCode.OUT_OF_SCOPE, "The parent is outside your locations."))
    return errors


def _parent(user: Any, parent_id: Any) -> Location | None:
    if not parent_id:
        return None
    try:
        return _get(user, parent_id)
    except NotFound as exc:
        raise ValidationFailed([FieldError("parentUuid", CoreErrorCode.NOT_FOUND, f"No location {parent_id}.")]) from exc


@dataclass(frozen=True)
class CreateLocationRequest:
    actor: User
    location: Location  # not saved yet


def check_create_location(actor: User, *, code: str, name: str, type: str, parent_id: Any = None,
                          json_ext: Any = None) -> CreateLocationRequest:
    require(actor, LOCATION_CREATE)
    parent = _parent(actor, parent_id)
    errors = _check_fields(actor, code, name, type, parent)
    if errors:
        raise ValidationFailed(errors)
    location = Location(code=code.strip(), name=name.strip(), type=type, level=levels().index(type),
                        parent=parent, json_ext=json_ext)
    location.path = path_for(location.id, parent)
    return CreateLocationRequest(actor, location)


def do_create_location(request: CreateLocationRequest) -> Location:
    # A code taken meanwhile is refused by the unique constraint (CONFLICT, by the mutation).
    return services.create(request.location, request.actor)


def create_location(actor: User, **fields: Any) -> Location:
    """One step, for scripts, demo data and tests."""
    return do_create_location(check_create_location(actor, **fields))


@dataclass(frozen=True)
class UpdateLocationRequest:
    actor: User
    location_id: Any
    version: int | None
    code: str
    name: str
    parent: Location | None
    json_ext: Any  # ``...``: unchanged


def check_update_location(actor: User, location_id: Any, *, version: int | None = None, code: str | None = None,
                          name: str | None = None, parent_id: Any = ..., json_ext: Any = ...) -> UpdateLocationRequest:
    require(actor, LOCATION_UPDATE)
    location = _get(actor, location_id)
    services.check_version(location, version)
    parent = location.parent if parent_id is ... else _parent(actor, parent_id)
    new_code = location.code if code is None else code
    new_name = location.name if name is None else name
    errors = _check_fields(actor, new_code, new_name, location.type, parent, exclude=location.pk)
    if parent is not None and parent.path.startswith(location.path):
        errors.append(FieldError("parentUuid", LocationErrorCode.INVALID_PARENT, "A location cannot move under itself."))
    if errors:
        raise ValidationFailed(errors)
    return UpdateLocationRequest(actor, location.pk, version if version is not None else location.version,
                                 new_code.strip(), new_name.strip(), parent, json_ext)


def do_update_location(request: UpdateLocationRequest) -> Location:
    """Write the change; the subtree's paths follow a move in one statement. The row is locked
    and its version compared again, so a change made since the check is refused (stale)."""
    location = _get(request.actor, request.location_id, lock=True)
    old_path = location.path
    location.code, location.name, location.parent = request.code, request.name, request.parent
    if request.json_ext is not ...:
        location.json_ext = request.json_ext
    location.path = path_for(location.id, request.parent)
    services.save_versioned(location, request.actor, ["code", "name", "parent", "path", "json_ext"], request.version)
    if location.path != old_path:
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE location_location SET path = %s || substr(path, %s) "
                "WHERE path LIKE %s AND id <> %s",
                [location.path, len(old_path) + 1, old_path.replace("%", r"\%") + "%", location.pk],
            )
    return location


def update_location(actor: User, location_id: Any, **fields: Any) -> Location:
    """One step, for scripts and tests."""
    return do_update_location(check_update_location(actor, location_id, **fields))


@dataclass(frozen=True)
class DeleteLocationRequest:
    actor: User
    location: Location
    version: int | None
    deleted: bool  # False: restore


def check_delete_location(actor: User, location_id: Any, version: int | None = None) -> DeleteLocationRequest:
    require(actor, LOCATION_DELETE)
    location = _get(actor, location_id)
    if Location.objects.filter(parent=location).exists():
        raise ServiceError(LocationErrorCode.LOCATION_HAS_CHILDREN, "Delete or move the locations under it first.", "uuid")
    return DeleteLocationRequest(actor, location, version, True)


def check_restore_location(actor: User, location_id: Any, version: int | None = None) -> DeleteLocationRequest:
    require(actor, LOCATION_DELETE)
    location = _get(actor, location_id, include_deleted=True)
    if Location.objects.filter(code=location.code).exists():
        raise ServiceError(LocationErrorCode.LOCATION_CODE_TAKEN,
                           f"Another location now has the code '{location.code}'.", "code")
    if location.parent_id and location.parent.is_deleted:  # type: ignore[union-attr]
        raise ServiceError(LocationErrorCode.INVALID_PARENT, "Restore its parent first.", "parentUuid")
    return DeleteLocationRequest(actor, location, version, False)


def do_delete_location(request: DeleteLocationRequest) -> Location:
    """Soft-delete (or restore). Modules with rows in the place may veto a delete
    (``location_validate_delete``, inside this transaction)."""
    if request.deleted:
        hook().location_validate_delete(location=request.location)
    return services.set_deleted(request.location, request.actor, request.deleted, request.version)


def delete_location(actor: User, location_id: Any, version: int | None = None) -> Location:
    """One step, for scripts and tests."""
    return do_delete_location(check_delete_location(actor, location_id, version))


def restore_location(actor: User, location_id: Any, version: int | None = None) -> Location:
    """One step, for scripts and tests."""
    return do_delete_location(check_restore_location(actor, location_id, version))


# --- the CSV import: one entry point for GraphQL (an upload) and REST (a file) -------------------


@dataclass(frozen=True)
class ImportLocationsRequest:
    actor: User
    upload: Upload
    mode: ImportMode


def import_mode(value: Any) -> ImportMode:
    """The mode a client sent (``"valid_rows"``, the GraphQL enum, or nothing)."""
    raw = getattr(value, "value", value) or ImportMode.ALL_OR_NOTHING.value
    try:
        return ImportMode(str(raw).lower())
    except ValueError:
        raise ServiceError(LocationErrorCode.INVALID_MODE, "mode is all_or_nothing or valid_rows.", "mode") from None


def check_import_locations(actor: User, upload_id: Any, mode: Any = None) -> ImportLocationsRequest:
    """Who may import, which upload of theirs, in which mode (``importLocations``, and the REST
    route once it has stored the file)."""
    require(actor, LOCATION_IMPORT)
    chosen = import_mode(mode)
    return ImportLocationsRequest(actor, get_upload(upload_id, actor, IMPORT_PURPOSE), chosen)


def do_import_locations(request: ImportLocationsRequest) -> Job:
    """Start the ``location.import`` job (queued once the transaction commits)."""
    return start_job(IMPORT_JOB, {"upload_id": str(request.upload.pk), "mode": request.mode.value}, request.actor)
