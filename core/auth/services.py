"""Logging in, with a lockout after repeated failures.

Every entry point (``tokenAuth``, the Django admin) reaches :func:`authenticate` through the
Django backend in :mod:`core.auth.backends`, so the same failures count and the same lockout
holds whichever door is tried. ``changePassword`` checks the current password with
:func:`verify_password`, under the same rules.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.auth.errors import AuthErrorCode
from core.errors import ServiceError
from core.models import User

log = logging.getLogger("coremis.auth")


def invalid_credentials() -> ServiceError:
    # One answer for an unknown user, a wrong password and an inactive account.
    return ServiceError(AuthErrorCode.INVALID_CREDENTIALS, "Invalid username or password.")


def authenticate(username: str, password: str) -> User:
    """Check credentials. After ``LOGIN_MAX_FAILURES`` failures in a row the account is locked
    for ``LOGIN_LOCKOUT``; while locked, even the right password is refused."""
    if "\x00" in username or "\x00" in password:
        # No stored name or password holds a NUL, and PostgreSQL would refuse the lookup.
        raise invalid_credentials()
    user = User.objects.filter(username=username).first()
    if user is None:
        # Hash anyway, so the answer for an unknown name takes as long as for a wrong password
        # and response times do not tell which usernames exist.
        User().set_password(password)
        log.info("login failed", extra={"username": username, "reason": "unknown user"})
        raise invalid_credentials()
    verify_password(user, password)
    User.objects.filter(pk=user.pk).update(last_login=timezone.now())
    log.info("login", extra={"username": username})
    return user


def verify_password(user: User, password: str) -> None:
    """Refuse a locked or inactive account or a wrong password, counting the failure."""
    if user.is_locked():
        assert user.locked_until is not None
        raise ServiceError(
            AuthErrorCode.ACCOUNT_LOCKED,
            "This account is locked after too many failed log-ins. Try again after "
            f"{user.locked_until:%Y-%m-%d %H:%M} UTC, or ask an administrator to unlock it.",
        )
    if not user.is_active or not user.check_password(password):
        _record_failure(user)
        raise invalid_credentials()
    if user.failed_login_attempts or user.locked_until:
        unlock(user)


def _record_failure(user: User) -> None:
    limit = settings.COREMIS["LOGIN_MAX_FAILURES"]
    # On a connection of its own: a refused mutation (changePassword) rolls its transaction
    # back, and a guess must count all the same.
    db = settings.COREMIS["PROGRESS_DB"]
    users = User.objects.using(db)
    with transaction.atomic(using=db):
        users.filter(pk=user.pk).update(failed_login_attempts=F("failed_login_attempts") + 1)
        failures = users.values_list("failed_login_attempts", flat=True).get(pk=user.pk)
        if failures >= limit:
            users.filter(pk=user.pk).update(
                locked_until=timezone.now() + settings.COREMIS["LOGIN_LOCKOUT"], failed_login_attempts=0
            )
            log.warning("account locked", extra={"username": user.username, "failures": failures})
    if failures >= limit:
        raise ServiceError(
            AuthErrorCode.ACCOUNT_LOCKED,
            f"Invalid username or password. The account is now locked for "
            f"{int(settings.COREMIS['LOGIN_LOCKOUT'].total_seconds() // 60)} minutes after "
            f"{limit} failed log-ins.",
        )


def unlock(user: User) -> None:
    User.objects.filter(pk=user.pk).update(failed_login_attempts=0, locked_until=None)
