"""Users: create, change, deactivate, and passwords, without privilege escalation.

The rules every use case here applies (each ``check_*`` validates and authorises once, each
``do_*`` writes):

- **Scope.** An administrator sees and changes only users whose whole location scope lies
  within theirs (the ``coremis_users_visible_to`` hook, implemented by the location module);
  anyone else is "not found". The locations they hand out must be within their own scope.
- **No more than one holds.** Without ``core.role.manage`` an administrator may only grant
  roles whose permissions they hold themselves, and may only change users who hold no
  permission they lack. (``core.role.manage`` can write any role, so it is the one right
  that goes beyond.) Only a superuser changes a superuser.
- **Passwords.** Changing one's own needs the current password, under the log-in lockout;
  an administrator resets other people's, never their own. Both end every open log-in of
  the account, as does deactivation.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import QuerySet

from core.actors import SYSTEM_ACTOR_ID
from core.auth import services as auth_services
from core.auth import tokens
from core.auth.errors import AuthErrorCode
from core.errors import (
    CoreErrorCode,
    FieldError,
    NotFound,
    PermissionDenied,
    ServiceError,
    ValidationFailed,
)
from core.hooks import hook
from core.models import LoginSession, Role, User
from core.permissions import (
    ROLE_MANAGE,
    USER_CREATE,
    USER_DELETE,
    USER_UPDATE,
    has_permission,
    require,
)

ROLE_MANAGER = ROLE_MANAGE
NAME_MAX_LENGTH = 150
_username_validator = UnicodeUsernameValidator()


# --- who may see and change whom -------------------------------------------------------------


def visible_users(actor: User, queryset: QuerySet | None = None) -> QuerySet:
    """The users ``actor`` may see: all of them unless a module scopes users to locations."""
    # The system actor is nobody's to see or change: it is not a person's account.
    queryset = (User.objects.all() if queryset is None else queryset).exclude(pk=SYSTEM_ACTOR_ID)
    scoped = hook().coremis_users_visible_to(actor=actor, queryset=queryset)
    return queryset if scoped is None else scoped


def _beyond(actor: User, codes: Iterable[str]) -> list[str]:
    """The codes among ``codes`` that ``actor`` may not hand out or oversee."""
    if actor.is_superuser or has_permission(actor, ROLE_MANAGER):
        return []
    return sorted(set(codes) - actor.permission_codes())


def manageable_user(actor: User, user_id: Any) -> User:
    """The user ``actor`` may change, or NotFound (outside scope) / PermissionDenied (holds
    more than the actor)."""
    user = visible_users(actor).filter(pk=user_id).first()
    if user is None:
        raise NotFound("User", user_id)
    if user.is_superuser and not actor.is_superuser:
        raise PermissionDenied("Only a superuser may change a superuser.")
    beyond = _beyond(actor, user.permission_codes())
    if beyond:
        raise PermissionDenied(
            f"{user.username} holds permissions you do not have ({', '.join(beyond)}); only an "
            f"administrator with '{ROLE_MANAGER}' may change this user."
        )
    return user


# --- field checks ----------------------------------------------------------------------------


def _text_problem(value: str, field_name: str, label: str) -> FieldError | None:
    if len(value) > NAME_MAX_LENGTH:
        return FieldError(field_name, CoreErrorCode.TOO_LONG, f"The {label} is at most {NAME_MAX_LENGTH} characters.")
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        return FieldError(field_name, CoreErrorCode.INVALID_CHARACTER, f"The {label} contains control characters.")
    return None


def _username_problems(username: str, exclude: Any = None) -> list[FieldError]:
    if not username:
        return [FieldError("username", CoreErrorCode.REQUIRED, "The username is required.")]
    problem = _text_problem(username, "username", "username")
    if problem:
        return [problem]
    try:
        _username_validator(username)
    except ValidationError:
        return [FieldError("username", AuthErrorCode.INVALID_USERNAME,
                           "A username has letters, digits and @ . + - _ only.")]
    # Case-insensitively: "Officer1" and "officer1" would be two accounts nobody can tell apart.
    if User.objects.filter(username__iexact=username).exclude(pk=exclude).exists():
        return [FieldError("username", AuthErrorCode.USERNAME_TAKEN, f"The username '{username}' is taken.")]
    return []


def _email_problems(email: str, exclude: Any = None) -> list[FieldError]:
    if not email:
        return []
    try:
        validate_email(email)
    except ValidationError:
        return [FieldError("email", AuthErrorCode.INVALID_EMAIL, f"'{email}' is not an e-mail address.")]
    if User.objects.filter(email__iexact=email).exclude(pk=exclude).exists():
        return [FieldError("email", AuthErrorCode.EMAIL_TAKEN, f"Another user has the e-mail address {email}.")]
    return []


def _password_problems(password: str, user: User | None, field_name: str) -> list[FieldError]:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        return [FieldError(field_name, AuthErrorCode.PASSWORD_TOO_WEAK, " ".join(exc.messages))]
    return []


def _roles(actor: User, role_ids: list[Any], errors: list[FieldError]) -> list[Role]:
    roles = list(Role.objects.filter(pk__in=role_ids))
    missing = sorted({str(r) for r in role_ids} - {str(r.pk) for r in roles})
    if missing:
        errors.append(FieldError("roles", AuthErrorCode.ROLE_NOT_FOUND, f"No role {', '.join(missing)}."))
    for role in roles:
        beyond = _beyond(actor, role.permissions)
        if beyond:
            errors.append(FieldError(
                "roles", AuthErrorCode.ROLE_BEYOND_YOUR_RIGHTS,
                f"You cannot grant the role '{role.name}': it includes permissions you do not "
                f"hold ({', '.join(beyond)}).",
            ))
    return roles


def _location_problems(actor: User, location_ids: list[Any]) -> list[FieldError]:
    caller = hook().coremis_user_location_problems
    if not caller.get_hookimpls():
        if location_ids:
            return [FieldError("locations", AuthErrorCode.LOCATIONS_UNAVAILABLE,
                               "No enabled module scopes users to locations.")]
        return []
    return [problem for problems in caller(actor=actor, location_ids=location_ids, field="locations")
            for problem in problems]


def _set_locations(user: User, location_ids: list[Any]) -> None:
    hook().coremis_set_user_locations(user=user, location_ids=location_ids)


# --- create ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateUserRequest:
    username: str
    first_name: str
    last_name: str
    email: str
    password: str | None
    roles: list[Role]
    location_ids: list[Any]


def check_create_user(actor: User, *, username: str, first_name: str = "", last_name: str = "",
                      email: str = "", password: str | None = None, role_ids: list[Any] | None = None,
                      location_ids: list[Any] | None = None) -> CreateUserRequest:
    require(actor, USER_CREATE)
    username, email = (username or "").strip(), (email or "").strip()
    first_name, last_name = (first_name or "").strip(), (last_name or "").strip()
    errors = [*_username_problems(username), *_email_problems(email)]
    for value, name, label in ((first_name, "otherNames", "other names"), (last_name, "lastName", "last name")):
        problem = _text_problem(value, name, label)
        if problem:
            errors.append(problem)
    if password:
        errors.extend(_password_problems(password, User(username=username, email=email,
                                                        first_name=first_name, last_name=last_name), "password"))
    roles = _roles(actor, role_ids or [], errors)
    errors.extend(_location_problems(actor, location_ids or []))
    if errors:
        raise ValidationFailed(errors)
    return CreateUserRequest(username, first_name, last_name, email, password or None, roles,
                             list(location_ids or []))


def do_create_user(request: CreateUserRequest) -> User:
    """Without a password the account cannot log in until an administrator sets one."""
    user = User(username=request.username, first_name=request.first_name,
                last_name=request.last_name, email=request.email)
    user.set_password(request.password)  # None makes the password unusable
    user.save(force_insert=True)
    user.roles.set(request.roles)
    if request.location_ids:
        _set_locations(user, request.location_ids)
    return user


# --- update ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class UpdateUserRequest:
    user: User
    changes: dict[str, str] = field(default_factory=dict)
    roles: list[Role] | None = None
    location_ids: list[Any] | None = None


def check_update_user(actor: User, user_id: Any, *, username: str | None = None,
                      first_name: str | None = None, last_name: str | None = None,
                      email: str | None = None, role_ids: list[Any] | None = None,
                      location_ids: list[Any] | None = None) -> UpdateUserRequest:
    """``None`` leaves a field as it is; ``roles`` and ``locations`` replace the whole set."""
    require(actor, USER_UPDATE)
    user = manageable_user(actor, user_id)
    errors: list[FieldError] = []
    changes: dict[str, str] = {}
    if username is not None:
        changes["username"] = username.strip()
        errors.extend(_username_problems(changes["username"], exclude=user.pk))
    if email is not None:
        changes["email"] = email.strip()
        errors.extend(_email_problems(changes["email"], exclude=user.pk))
    for value, attr, name, label in ((first_name, "first_name", "otherNames", "other names"),
                                     (last_name, "last_name", "lastName", "last name")):
        if value is not None:
            changes[attr] = value.strip()
            problem = _text_problem(changes[attr], name, label)
            if problem:
                errors.append(problem)
    roles = None if role_ids is None else _roles(actor, role_ids, errors)
    if location_ids is not None:
        errors.extend(_location_problems(actor, location_ids))
    if errors:
        raise ValidationFailed(errors)
    return UpdateUserRequest(user, changes, roles, None if location_ids is None else list(location_ids))


def do_update_user(request: UpdateUserRequest) -> User:
    user = request.user
    if request.changes:
        for attr, value in request.changes.items():
            setattr(user, attr, value)
        user.save(update_fields=list(request.changes))
    if request.roles is not None:
        user.roles.set(request.roles)
    if request.location_ids is not None:
        _set_locations(user, request.location_ids)
    return user


# --- deactivate and reactivate ---------------------------------------------------------------


@dataclass(frozen=True)
class SetActiveRequest:
    user: User
    active: bool


def check_set_active(actor: User, user_id: Any, active: bool) -> SetActiveRequest:
    require(actor, USER_DELETE)
    user = manageable_user(actor, user_id)
    if not active and user.pk == actor.pk:
        raise ServiceError(AuthErrorCode.CANNOT_DEACTIVATE_SELF, "You cannot deactivate your own account.", "uuid")
    return SetActiveRequest(user, active)


def do_set_active(request: SetActiveRequest) -> User:
    """A deactivated account cannot log in and its open log-ins end; reactivating it does not
    bring them back."""
    user = request.user
    if user.is_active != request.active:
        user.is_active = request.active
        user.save(update_fields=["is_active"])
    if not request.active:
        tokens.revoke_all(user, LoginSession.REVOKED_DEACTIVATED)
    return user


# --- passwords -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PasswordRequest:
    user: User
    password: str


def check_change_password(actor: User, old_password: str, new_password: str) -> PasswordRequest:
    """One's own password. A wrong current password counts as a failed log-in (a stolen
    access token must not become a way to guess the password)."""
    try:
        auth_services.verify_password(actor, old_password or "")
    except ServiceError as exc:
        message = "The current password is wrong." if exc.code == AuthErrorCode.INVALID_CREDENTIALS else exc.message
        raise ServiceError(exc.code, message, "oldPassword") from exc
    if new_password == old_password:
        raise ServiceError(AuthErrorCode.PASSWORD_UNCHANGED, "The new password is the current one.", "newPassword")
    problems = _password_problems(new_password or "", actor, "newPassword")
    if problems:
        raise ValidationFailed(problems)
    return PasswordRequest(actor, new_password)


def check_reset_password(actor: User, user_id: Any, new_password: str) -> PasswordRequest:
    require(actor, USER_UPDATE)
    user = manageable_user(actor, user_id)
    if user.pk == actor.pk:
        # Otherwise a stolen access token could set a password without knowing the current one.
        raise ServiceError(AuthErrorCode.USE_CHANGE_PASSWORD,
                           "Change your own password with changePassword (it asks for the current one).", "uuid")
    problems = _password_problems(new_password or "", user, "newPassword")
    if problems:
        raise ValidationFailed(problems)
    return PasswordRequest(user, new_password)


def do_set_password(request: PasswordRequest) -> User:
    """Set the password, lift a lockout and end every open log-in of the account."""
    user = request.user
    user.set_password(request.password)
    user.failed_login_attempts, user.locked_until = 0, None
    user.save(update_fields=["password", "failed_login_attempts", "locked_until"])
    tokens.revoke_all(user, LoginSession.REVOKED_PASSWORD)
    return user
