"""Role services: roles group permission codes; only declared codes can be granted."""

from __future__ import annotations

from typing import Any

from core import services
from core.auth.users import manageable_user
from core.errors import FieldError, NotFound, PermissionDenied, ValidationFailed
from core.models import Role, User
from core.permissions import has_permission, registry


def _check(name: str, permissions: list[str], exclude: Any = None) -> None:
    errors: list[FieldError] = []
    if not name.strip():
        errors.append(FieldError("name", "REQUIRED", "The role needs a name."))
    elif Role.objects.filter(name=name.strip()).exclude(pk=exclude).exists():
        errors.append(FieldError("name", "ROLE_NAME_TAKEN", f"A role named '{name}' exists already."))
    unknown = sorted(set(permissions) - set(registry()))
    if unknown:
        errors.append(FieldError(
            "permissions", "UNKNOWN_PERMISSION",
            f"No enabled module declares {', '.join(unknown)}.",
        ))
    if errors:
        raise ValidationFailed(errors)


def _require(actor: Any) -> None:
    if not has_permission(actor, "core.role.manage"):
        raise PermissionDenied()


def create_role(actor: Any, name: str, permissions: list[str], description: str = "") -> Role:
    _require(actor)
    _check(name, permissions)
    return services.create(
        Role(name=name.strip(), permissions=sorted(set(permissions)), description=description), actor
    )


def update_role(actor: Any, role_id: Any, *, version: int | None = None, name: str | None = None,
                permissions: list[str] | None = None, description: str | None = None) -> Role:
    _require(actor)
    role = Role.objects.filter(pk=role_id).first()
    if role is None:
        raise NotFound("Role", role_id)
    new_name = role.name if name is None else name
    new_permissions = role.permissions if permissions is None else permissions
    _check(new_name, new_permissions, exclude=role.pk)
    role.name, role.permissions = new_name.strip(), sorted(set(new_permissions))
    if description is not None:
        role.description = description
    return services.save_versioned(role, actor, ["name", "permissions", "description"], version)


def delete_role(actor: Any, role_id: Any, version: int | None = None) -> Role:
    _require(actor)
    role = Role.objects.filter(pk=role_id).first()
    if role is None:
        raise NotFound("Role", role_id)
    return services.set_deleted(role, actor, True, version)


def set_user_roles(actor: Any, user_id: Any, role_ids: list[Any]) -> User:
    _require(actor)
    # The same reach as the user mutations: within the actor's scope, superusers by superusers.
    user = manageable_user(actor, user_id)
    roles = list(Role.objects.filter(pk__in=role_ids))
    missing = {str(r) for r in role_ids} - {str(r.pk) for r in roles}
    if missing:
        raise ValidationFailed([FieldError("roleUuids", "NOT_FOUND", f"Unknown roles: {', '.join(sorted(missing))}")])
    user.roles.set(roles)
    return user
