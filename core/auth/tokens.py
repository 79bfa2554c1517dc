"""Access and refresh tokens.

An access token is a short-lived JWT (HS256, signed with the deployment's secret key) that
names its user and its log-in session (``sid``). A refresh token is an opaque string whose
hashes live in :class:`core.models.LoginSession`: it works once, gives a new one, and a spent
token coming back revokes its whole session (see the model for why). Revoking a session, by
logging out, changing the password or reuse, ends its access tokens at once.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import jwt
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core.auth.errors import AuthErrorCode
from core.errors import ServiceError
from core.models import LoginSession, Role, User

log = logging.getLogger("coremis.auth")

ALGORITHM = "HS256"
# Sessions are kept a day past their expiry, so a late refresh is told "expired", not "invalid".
PURGE_AFTER_SECONDS = 86400
# Two tabs of one browser share the refresh cookie; when their access tokens lapse together
# both spend it. The one that comes second within this window is a race, not a theft.
REFRESH_RACE_GRACE = timedelta(seconds=10)


@dataclass(frozen=True)
class TokenPair:
    token: str
    refresh_token: str
    payload: dict[str, Any]
    refresh_expires_in: int


def _password_stamp(user: User) -> str:
    # Changing the password changes the stamp, which invalidates every token issued before.
    return hashlib.sha256(user.password.encode()).hexdigest()[:12]


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _invalid(message: str = "The token is not valid.") -> ServiceError:
    return ServiceError(AuthErrorCode.TOKEN_INVALID, message)


def _access_token(user: User, session: LoginSession, now: datetime) -> tuple[str, dict[str, Any]]:
    payload = {
        "sub": str(user.pk),
        "username": user.get_username(),
        "type": "access",
        "sid": str(session.pk),
        "iat": int(now.timestamp()),
        "exp": int((now + settings.COREMIS["JWT_ACCESS_TTL"]).timestamp()),
        "jti": uuid.uuid4().hex,
        "pwd": _password_stamp(user),
    }
    return jwt.encode(payload, settings.SECRET_KEY, algorithm=ALGORITHM), payload


def _pair(user: User, session: LoginSession, family_key: str, secret: str, now: datetime) -> TokenPair:
    token, payload = _access_token(user, session, now)
    return TokenPair(token, f"{family_key}.{secret}", payload, int(session.expires_at.timestamp()))


def issue(user: User) -> TokenPair:
    """Open a log-in session for ``user`` and return its first token pair."""
    now = timezone.now()
    family_key, secret = secrets.token_urlsafe(24), secrets.token_urlsafe(32)
    LoginSession.objects.filter(expires_at__lt=now - timedelta(seconds=PURGE_AFTER_SECONDS)).delete()
    session = LoginSession.objects.create(
        user=user, family_hash=_digest(family_key), token_hash=_digest(secret),
        password_stamp=_password_stamp(user), created_at=now,
        expires_at=now + settings.COREMIS["JWT_REFRESH_TTL"],
    )
    return _pair(user, session, family_key, secret, now)


def _split(refresh_token: str) -> tuple[str, str]:
    family_key, dot, secret = refresh_token.partition(".")
    if not dot or not family_key or not secret or "." in secret:
        if refresh_token.count(".") == 2 and _looks_like_access_token(refresh_token):
            raise _invalid("This is not a refresh token.")
        raise _invalid()
    return family_key, secret


def _looks_like_access_token(token: str) -> bool:
    try:
        return jwt.decode(token, options={"verify_signature": False}).get("type") == "access"
    except jwt.InvalidTokenError:
        return False


def refresh(refresh_token: str, *, shared: bool = False) -> TokenPair:
    """Spend ``refresh_token`` for a new pair. A spent token revokes its session (committed
    even though the caller gets an error).

    ``shared``: the token came from the browser's cookie, which every tab of that browser
    sends. The token the session's last refresh spent, sent again within
    ``REFRESH_RACE_GRACE`` of it, is then another tab's refresh racing the first: it gets a
    new access token and no new refresh token (``refresh_token`` is empty: the cookie the
    first refresh set is the current one), and the session goes on. Anything older, or any
    reuse outside a cookie, still ends the session."""
    family_key, secret = _split(refresh_token)
    now = timezone.now()
    refusal: ServiceError | None = None
    with transaction.atomic():
        # FOR UPDATE: two refreshes racing with one token cannot both win.
        session = (LoginSession.objects.select_for_update().select_related("user")
                   .filter(family_hash=_digest(family_key)).first())
        if session is None:
            raise _invalid()
        user = session.user
        if session.revoked_at is not None:
            raise _invalid("This log-in was ended (logged out, password changed or token reused); log in again.")
        if (shared and session.previous_token_hash and session.revoked_at is None
                and hmac.compare_digest(session.previous_token_hash, _digest(secret))
                and session.refreshed_at is not None and now - session.refreshed_at <= REFRESH_RACE_GRACE
                and session.expires_at > now and user.is_active
                and session.password_stamp == _password_stamp(user)):
            log.info("a tab refreshed a moment after another with the same cookie; no new refresh token",
                     extra={"username": user.username, "session": str(session.pk)})
            token, payload = _access_token(user, session, now)
            return TokenPair(token, "", payload, int(session.expires_at.timestamp()))
        if not hmac.compare_digest(session.token_hash, _digest(secret)):
            log.warning("refresh token reused; session revoked",
                        extra={"username": user.username, "session": str(session.pk)})
            _revoke(LoginSession.objects.filter(pk=session.pk), LoginSession.REVOKED_REUSE, now)
            refusal = _invalid("This refresh token was already used. As a copy of it may be in "
                               "other hands, this log-in is ended everywhere; log in again.")
        elif session.expires_at <= now:
            raise ServiceError(AuthErrorCode.TOKEN_EXPIRED, "The refresh token has expired; log in again.")
        elif not user.is_active or session.password_stamp != _password_stamp(user):
            reason = LoginSession.REVOKED_DEACTIVATED if not user.is_active else LoginSession.REVOKED_PASSWORD
            _revoke(LoginSession.objects.filter(pk=session.pk), reason, now)
            refusal = _invalid("The token no longer belongs to an active account.")
        else:
            secret = secrets.token_urlsafe(32)
            session.previous_token_hash = session.token_hash
            session.token_hash = _digest(secret)
            session.refreshed_at = now
            session.refresh_count += 1
            session.expires_at = now + settings.COREMIS["JWT_REFRESH_TTL"]
            session.save(update_fields=["token_hash", "previous_token_hash", "refreshed_at", "refresh_count",
                                        "expires_at"])
    if refusal is not None:
        raise refusal
    return _pair(user, session, family_key, secret, now)


def revoke(refresh_token: str) -> datetime:
    """Log out: end the session ``refresh_token`` belongs to (spent or current). Returns when
    it was ended; ending an ended session again is not an error."""
    family_key, _ = _split(refresh_token)
    session = LoginSession.objects.filter(family_hash=_digest(family_key)).first()
    if session is None:
        raise _invalid()
    if session.revoked_at is None:
        _revoke(LoginSession.objects.filter(pk=session.pk), LoginSession.REVOKED_LOGOUT, timezone.now())
        session.refresh_from_db(fields=["revoked_at"])
    assert session.revoked_at is not None
    return session.revoked_at


def revoke_all(user: User, reason: str) -> int:
    """End every open session of ``user`` (password changed, account deactivated)."""
    return _revoke(LoginSession.objects.filter(user=user), reason, timezone.now())


def _revoke(sessions: Any, reason: str, now: datetime) -> int:
    return int(sessions.filter(revoked_at__isnull=True).update(revoked_at=now, revoked_reason=reason))


@lru_cache(maxsize=1)
def _token_user_sql() -> str:
    """The token check's one statement: the user, active, with this session still open, and
    the codes of its live roles (every permission check of the request reads them; a second
    round trip otherwise).

    Written as SQL once rather than built by the ORM on every request: making and compiling
    that filtered, annotated queryset cost about 2 ms of CPU, more than the rest of a small
    list request's own work, for a statement whose shape never changes."""
    columns = ", ".join(f'u."{f.column}"' for f in User._meta.concrete_fields)
    user_roles = User.roles.through._meta.db_table  # type: ignore[attr-defined]
    return f"""
        SELECT {columns}, ARRAY(
            SELECT unnest(r.permissions) FROM "{Role._meta.db_table}" r
            JOIN "{user_roles}" ur ON ur.role_id = r.id
            WHERE ur.user_id = u.id AND NOT r.is_deleted) AS role_codes
        FROM "{User._meta.db_table}" u
        WHERE u.id = %s AND u.is_active AND EXISTS (
            SELECT 1 FROM "{LoginSession._meta.db_table}" s
            WHERE s.id = %s AND s.user_id = u.id AND s.revoked_at IS NULL)"""


@lru_cache(maxsize=1)
def _user_attnames() -> tuple[str, ...]:
    return tuple(f.attname for f in User._meta.concrete_fields)


def _token_user(user_id: uuid.UUID, session_id: uuid.UUID) -> User | None:
    """Read on a plain cursor and built with ``from_db``: a ``RawQuerySet`` maps its columns to
    the model and looks for annotations on every request (about 0.4 ms of CPU, for a row
    whose columns are always the same)."""
    with connection.cursor() as cursor:
        cursor.execute(_token_user_sql(), [user_id, session_id])
        row = cursor.fetchone()
    if row is None:
        return None
    names = _user_attnames()
    user = User.from_db(connection.alias, names, row[: len(names)])
    user.role_codes = row[len(names)] or []  # type: ignore[attr-defined]
    return user


def decode(token: str) -> tuple[User, dict[str, Any]]:
    """The user a valid access token belongs to, or a ServiceError saying why not."""
    try:
        payload = jwt.decode(token, settings.SECRET_KEY, algorithms=[ALGORITHM])
    except jwt.ExpiredSignatureError as exc:
        raise ServiceError(AuthErrorCode.TOKEN_EXPIRED, "The token has expired; log in again or refresh it.") from exc
    except jwt.InvalidTokenError as exc:
        raise _invalid() from exc
    if payload.get("type") != "access":
        raise _invalid("This is not an access token.")
    try:
        user_id, session_id = uuid.UUID(str(payload.get("sub"))), uuid.UUID(str(payload.get("sid")))
    except ValueError as exc:
        raise _invalid() from exc
    user = _token_user(user_id, session_id)
    if user is None or payload.get("pwd") != _password_stamp(user):
        raise _invalid("The token no longer belongs to an active account or open log-in.")
    user.remember_permission_codes(user.role_codes)  # type: ignore[attr-defined]
    return user, payload
