"""Role use cases: roles group permission codes; only declared codes can be granted.

Each use case is a ``check_*`` that validates and authorises once and returns a request, and a
``do_*`` that writes it (see ``core/README.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core import services
from core.auth.errors import AuthErrorCode
from core.auth.users import manageable_user
from core.errors import CoreErrorCode, FieldError, NotFound, ValidationFailed
from core.models import Role, User
from core.permissions import ROLE_MANAGE, registry, require


def _problems(name: str, permissions: list[str], exclude: Any = None) -> list[FieldError]:
    errors: list[FieldError] = []
    if not name.strip():
        errors.append(FieldError("name", CoreErrorCode.REQUIRED, "The role needs a name."))
    elif Role.objects.filter(name=name.strip()).exclude(pk=exclude).exists():
        errors.append(FieldError("name", AuthErrorCode.ROLE_NAME_TAKEN, f"A role named '{name}' exists already."))
    unknown = sorted(set(permissions) - set(registry()))
    if unknown:
        errors.append(FieldError(
            "permissions", AuthErrorCode.UNKNOWN_PERMISSION,
            f"No enabled module declares {', '.join(unknown)}.",
        ))
    return errors


def _role(role_id: Any) -> Role:
    role = Role.objects.filter(pk=role_id).first()
    if role is None:
        raise NotFound("Role", role_id)
    return role


# --- create ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateRoleRequest:
    actor: User
    name: str
    permissions: list[str]
    description: str


def check_create_role(actor: User, name: str, permissions: list[str], description: str = "") -> CreateRoleRequest:
    require(actor, ROLE_MANAGE)
    errors = _problems(name, permissions)
    if errors:
        raise ValidationFailed(errors)
    return CreateRoleRequest(actor, name.strip(), sorted(set(permissions)), description or "")


def do_create_role(request: CreateRoleRequest) -> Role:
    role = Role(name=request.name, permissions=request.permissions, description=request.description)
    return services.create(role, request.actor)


# --- update and delete -----------------------------------------------------------------------


@dataclass(frozen=True)
class UpdateRoleRequest:
    actor: User
    role: Role
    name: str
    permissions: list[str]
    description: str
    version: int | None


def check_update_role(actor: User, role_id: Any, *, version: int | None = None, name: str | None = None,
                      permissions: list[str] | None = None, description: str | None = None) -> UpdateRoleRequest:
    """``None`` leaves a field as it is; ``permissions`` replaces the whole set."""
    require(actor, ROLE_MANAGE)
    role = _role(role_id)
    new_name = role.name if name is None else name
    new_permissions = role.permissions if permissions is None else permissions
    errors = _problems(new_name, new_permissions, exclude=role.pk)
    if errors:
        raise ValidationFailed(errors)
    return UpdateRoleRequest(actor, role, new_name.strip(), sorted(set(new_permissions)),
                             role.description if description is None else description, version)


def do_update_role(request: UpdateRoleRequest) -> Role:
    role = request.role
    role.name, role.permissions, role.description = request.name, request.permissions, request.description
    return services.save_versioned(role, request.actor, ["name", "permissions", "description"], request.version)


@dataclass(frozen=True)
class DeleteRoleRequest:
    actor: User
    role: Role
    version: int | None


def check_delete_role(actor: User, role_id: Any, version: int | None = None) -> DeleteRoleRequest:
    require(actor, ROLE_MANAGE)
    return DeleteRoleRequest(actor, _role(role_id), version)


def do_delete_role(request: DeleteRoleRequest) -> Role:
    return services.set_deleted(request.role, request.actor, True, request.version)


# --- who holds which roles -------------------------------------------------------------------


@dataclass(frozen=True)
class SetUserRolesRequest:
    user: User
    roles: list[Role]


def check_set_user_roles(actor: User, user_id: Any, role_ids: list[Any]) -> SetUserRolesRequest:
    require(actor, ROLE_MANAGE)
    # The same reach as the user mutations: within the actor's scope, superusers by superusers.
    user = manageable_user(actor, user_id)
    roles = list(Role.objects.filter(pk__in=role_ids))
    missing = {str(r) for r in role_ids} - {str(r.pk) for r in roles}
    if missing:
        raise ValidationFailed([FieldError("roleUuids", CoreErrorCode.NOT_FOUND,
                                           f"Unknown roles: {', '.join(sorted(missing))}")])
    return SetUserRolesRequest(user, roles)


def do_set_user_roles(request: SetUserRolesRequest) -> User:
    request.user.roles.set(request.roles)
    return request.user


# --- for scripts and tests: both steps at once -----------------------------------------------


def create_role(actor: User, name: str, permissions: list[str], description: str = "") -> Role:
    return do_create_role(check_create_role(actor, name, permissions, description))
