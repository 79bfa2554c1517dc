"""The one Django authentication backend: the admin's login form and ``tokenAuth`` both reach
the lockout rules of :mod:`core.auth.services` through it.

It replaces ``ModelBackend`` in ``AUTHENTICATION_BACKENDS`` instead of joining it: Django
tries backends in turn, so any second password-checking backend would let a locked account
in by the side door.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate as django_authenticate
from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from core.auth import services
from core.errors import ServiceError
from core.models import User

# Django's backend contract is "a user or None"; the reason for a None travels on the request
# so each entry point can tell the person what happened (locked, or wrong credentials).
REFUSAL_ATTR = "coremis_login_refusal"


class LockoutBackend(ModelBackend):
    """``ModelBackend`` (sessions, admin permissions) with coremis's credential check."""

    def authenticate(self, request: HttpRequest | None, username: str | None = None,
                     password: str | None = None, **kwargs: Any) -> User | None:
        if username is None:
            username = kwargs.get(User.USERNAME_FIELD)
        if username is None or password is None:
            return None
        try:
            return services.authenticate(username, password)
        except ServiceError as exc:
            if request is not None:
                setattr(request, REFUSAL_ATTR, exc)
            return None


def refusal_of(request: HttpRequest | None) -> ServiceError | None:
    return getattr(request, REFUSAL_ATTR, None)


def log_in(request: HttpRequest, username: str, password: str) -> User:
    """Authenticate through Django (signals, every configured backend) or raise why not."""
    user = django_authenticate(request, username=username, password=password)
    if user is None:
        raise refusal_of(request) or services.invalid_credentials()
    return user
