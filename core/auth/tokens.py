"""JWT access and refresh tokens (HS256, signed with the deployment's secret key)."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jwt
from django.conf import settings
from django.utils import timezone

from core.errors import ServiceError
from core.models import User

ALGORITHM = "HS256"


@dataclass(frozen=True)
class TokenPair:
    token: str
    refresh_token: str
    payload: dict[str, Any]
    refresh_expires_in: int


def _password_stamp(user: User) -> str:
    # Changing the password changes the stamp, which invalidates every token issued before.
    return hashlib.sha256(user.password.encode()).hexdigest()[:12]


def _encode(user: User, kind: str, lifetime: Any, now: datetime) -> tuple[str, dict[str, Any]]:
    payload = {
        "sub": str(user.pk),
        "username": user.get_username(),
        "type": kind,
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
        "jti": uuid.uuid4().hex,
        "pwd": _password_stamp(user),
    }
    return jwt.encode(payload, settings.SECRET_KEY, algorithm=ALGORITHM), payload


def issue(user: User) -> TokenPair:
    now = timezone.now()
    access, payload = _encode(user, "access", settings.COREMIS["JWT_ACCESS_TTL"], now)
    refresh, refresh_payload = _encode(user, "refresh", settings.COREMIS["JWT_REFRESH_TTL"], now)
    return TokenPair(access, refresh, payload, int(refresh_payload["exp"]))


def decode(token: str, kind: str) -> tuple[User, dict[str, Any]]:
    """The user a valid token of ``kind`` belongs to, or a ServiceError saying why not."""
    try:
        payload = jwt.decode(token, settings.SECRET_KEY, algorithms=[ALGORITHM])
    except jwt.ExpiredSignatureError as exc:
        raise ServiceError("TOKEN_EXPIRED", "The token has expired; log in again or refresh it.") from exc
    except jwt.InvalidTokenError as exc:
        raise ServiceError("TOKEN_INVALID", "The token is not valid.") from exc
    if payload.get("type") != kind:
        raise ServiceError("TOKEN_INVALID", f"This is not a {kind} token.")
    user = User.objects.filter(pk=payload.get("sub"), is_active=True).first()
    if user is None or payload.get("pwd") != _password_stamp(user):
        raise ServiceError("TOKEN_INVALID", "The token no longer belongs to an active account.")
    return user, payload
