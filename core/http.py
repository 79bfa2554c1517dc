"""The JSON error body every HTTP route (uploads, imports, downloads) answers with, and what
an unexpected exception becomes at the edge.

An exception that escapes a view is sorted into one of three answers:

- the database or Redis cannot be reached: ``503 SERVICE_UNAVAILABLE``; the request may be
  sent again once they are back, which needs nobody (connections are re-opened per request);
- a statement ran past the request's statement timeout: ``QUERY_TIMEOUT``;
- anything else is a bug: ``500 INTERNAL`` with a reference id, logged with its stack trace
  under that id; the answer never carries the exception's text.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from django.db import DataError, IntegrityError, InterfaceError, OperationalError
from django.http import JsonResponse

from core.errors import CoreErrorCode, ServiceError

log = logging.getLogger("coremis.errors")


def error_response(status: int, code: str, message: str, field: str | None = None,
                   **extra: object) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message, "field": field, **extra}}, status=status)


def service_error_response(exc: ServiceError) -> JsonResponse:
    """A refused request: 403 when it was a missing permission, 400 otherwise."""
    return error_response(403 if exc.code == CoreErrorCode.PERMISSION_DENIED else 400, exc.code, exc.message, exc.field)


@dataclass(frozen=True)
class EdgeError:
    """What a client is told about an exception: HTTP status, stable code, a sentence."""

    status: int
    code: str
    message: str
    reference: str | None = None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _is_query_canceled(exc: BaseException) -> bool:
    from psycopg import errors

    return isinstance(exc, errors.QueryCanceled)


def _database_unreachable(exc: BaseException) -> bool:
    """A failure to talk to the server, as opposed to the server refusing a statement."""
    import psycopg

    if isinstance(exc, InterfaceError | psycopg.InterfaceError):
        return True
    if isinstance(exc, psycopg.OperationalError):
        # psycopg raises OperationalError itself (not a subclass with a SQLSTATE) when the
        # connection cannot be made or is lost; AdminShutdown/CannotConnectNow are the server
        # going away under us.
        from psycopg import errors

        return type(exc) is psycopg.OperationalError or isinstance(
            exc, errors.AdminShutdown | errors.CannotConnectNow | errors.CrashShutdown)
    return isinstance(exc, OperationalError) and exc.__cause__ is None


def _redis_unreachable(exc: BaseException) -> bool:
    from redis import exceptions

    return isinstance(exc, exceptions.ConnectionError | exceptions.TimeoutError)


def unavailable(exc: BaseException) -> str | None:
    """``"database"`` or ``"redis"`` when ``exc`` (or what caused it) is a lost server."""
    for link in _chain(exc):
        if _redis_unreachable(link):
            return "redis"
        if _is_query_canceled(link):
            return None
        if _database_unreachable(link):
            return "database"
    return None


def timed_out(exc: BaseException) -> bool:
    return any(_is_query_canceled(link) for link in _chain(exc))


UNAVAILABLE_MESSAGES = {
    "database": "The database is not reachable right now; nothing was done. Try again in a moment.",
    "redis": "The job queue (Redis) is not reachable right now. Try again in a moment.",
}


def classify(exc: BaseException, *, path: str = "") -> EdgeError:
    """The answer for an exception no service turned into a typed error (logged here)."""
    down = unavailable(exc)
    if down is not None:
        log.warning("service unavailable", extra={"service": down, "path": path, "error": str(exc)[:500]})
        return EdgeError(503, CoreErrorCode.SERVICE_UNAVAILABLE, UNAVAILABLE_MESSAGES[down])
    if timed_out(exc):
        from django.conf import settings

        seconds = settings.COREMIS["STATEMENT_TIMEOUT_MS"] / 1000
        log.warning("statement timeout", extra={"path": path})
        return EdgeError(
            503, CoreErrorCode.QUERY_TIMEOUT,
            f"The request took longer than the {seconds:g} s allowed for one database statement and "
            "was stopped; nothing was changed. Narrow it (filters, smaller pages) and try again.",
        )
    if isinstance(exc, ServiceError):
        return EdgeError(403 if exc.code == CoreErrorCode.PERMISSION_DENIED else 400, exc.code, exc.message)
    reference = str(uuid.uuid4())
    # Values the edge should have refused, and races a service did not expect: typed for the
    # client, logged for us (the checks that let them through are what to fix).
    if any(isinstance(link, DataError) for link in _chain(exc)):
        log.warning("value refused by the database", exc_info=(type(exc), exc, exc.__traceback__),
                    extra={"reference": reference, "path": path})
        return EdgeError(400, CoreErrorCode.INVALID_VALUE, "A value is not valid for the field it was sent for (too long, "
                         f"out of range or malformed); nothing was changed. Reference {reference}.", reference)
    if any(isinstance(link, IntegrityError) for link in _chain(exc)):
        log.warning("integrity conflict", exc_info=(type(exc), exc, exc.__traceback__),
                    extra={"reference": reference, "path": path})
        return EdgeError(409, CoreErrorCode.CONFLICT, "The change conflicts with data saved at the same moment; nothing "
                         f"was changed. Reload and try again. Reference {reference}.", reference)
    log.error("unexpected error", exc_info=(type(exc), exc, exc.__traceback__),
              extra={"reference": reference, "path": path})
    return EdgeError(
        500, CoreErrorCode.INTERNAL,
        f"Something went wrong on our side; it was logged with the reference {reference}. "
        "Quote that reference when you report it.",
        reference,
    )

