"""The request path's edge: every API request runs under a statement timeout, and no answer
of ``/graphql`` or ``/api/...`` is an HTML page, whatever went wrong.

Django turns an exception raised in a view or in a middleware into an HTML error page (the
technical page under DEBUG) before an outer middleware sees it, so the exception is kept on
the request when Django reports it (``got_request_exception``) and the error page is
replaced here by a JSON answer: 503 when the database or Redis is not reachable, a typed
error with a reference id (logged with its stack trace) otherwise. See :mod:`core.http`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.core.signals import got_request_exception
from django.db import DatabaseError, connection
from django.http import Http404, HttpRequest, HttpResponse

from core.errors import CoreErrorCode, RequestErrorCode
from core.http import EdgeError, classify, error_response

API_PREFIXES = ("/graphql", "/api/")
EXCEPTION_ATTR = "coremis_exception"

STATUS_CODES = {
    400: RequestErrorCode.BAD_REQUEST, 401: RequestErrorCode.UNAUTHENTICATED, 403: CoreErrorCode.PERMISSION_DENIED, 404: CoreErrorCode.NOT_FOUND,
    405: RequestErrorCode.METHOD_NOT_ALLOWED, 413: RequestErrorCode.REQUEST_TOO_LARGE,
}


def is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIXES)


def _remember_exception(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    # Sent from inside Django's ``except`` block: the exception is the one being handled.
    if request is not None:
        setattr(request, EXCEPTION_ATTR, sys.exc_info()[1])


def json_error(request: HttpRequest, error: EdgeError) -> HttpResponse:
    extra = {"reference": error.reference} if error.reference else {}
    if request.path.startswith("/graphql"):
        from core.graphql.schema import graphql_error_response

        return graphql_error_response(error.status, error.code, error.message, **extra)
    return error_response(error.status, error.code, error.message, **extra)


class JsonErrorMiddleware:
    """Replaces any non-JSON error answer of an API route by a JSON one."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        got_request_exception.connect(_remember_exception, dispatch_uid="coremis-json-errors")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code < 400 or not is_api(request):
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        exc = getattr(request, EXCEPTION_ATTR, None)
        if exc is not None:
            return json_error(request, classify(exc, path=request.path))
        status = response.status_code
        code = STATUS_CODES.get(status, CoreErrorCode.INTERNAL if status >= 500 else RequestErrorCode.BAD_REQUEST)
        reason = getattr(response, "reason_phrase", "") or code.replace("_", " ").lower()
        message = {
            404: f"There is no {request.path} route.",
            405: f"{request.path} does not accept {request.method}.",
        }.get(status, f"{reason}.")
        return json_error(request, EdgeError(status, code, message))

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        """A view's exception, answered before Django renders its page (and logged once)."""
        if not is_api(request) or isinstance(exc, Http404 | PermissionDenied | SuspiciousOperation | BadRequest):
            return None  # Django's own 4xx answers, made JSON on the way out
        return json_error(request, classify(exc, path=request.path))


class StatementTimeoutMiddleware:
    """No statement of an API request runs longer than ``COREMIS_STATEMENT_TIMEOUT_MS``.

    The setting is made on the request's connection as it starts (outside any transaction,
    so a rollback cannot undo it) and put back to the connection's own default as the request
    ends, so whatever uses that connection next (a job run in-process, the bench, a test) is
    not bound by it. In a process that only serves requests (the WSGI server,
    :func:`serve_requests_only`) nothing else ever uses its connections: there the setting is
    made once per connection and kept, which spares every API request two round trips, and a
    non-API request (the admin) takes it off first. A statement past it is cancelled by
    PostgreSQL and the request answers ``QUERY_TIMEOUT``. Background jobs run in workers and
    are not bound by it. Opening the connection here is also what makes a request find out
    first thing that the database is gone (503), instead of half-way through.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        api = is_api(request)
        if _requests_only:
            milliseconds = settings.COREMIS["STATEMENT_TIMEOUT_MS"] if api else None
            connection.ensure_connection()
            if _kept_timeout() != milliseconds:
                if milliseconds is None:
                    reset_statement_timeout()
                else:
                    set_statement_timeout(milliseconds)
                _keep_timeout(milliseconds)
            return self.get_response(request)
        if not api:
            return self.get_response(request)
        set_statement_timeout(settings.COREMIS["STATEMENT_TIMEOUT_MS"])
        try:
            return self.get_response(request)
        finally:
            reset_statement_timeout()


_requests_only = False
KEPT_ATTR = "coremis_statement_timeout"


def serve_requests_only() -> None:
    """Declare that this process uses its database connections for requests only
    (``core.wsgi`` does; a test, the bench or a worker never call it)."""
    global _requests_only
    _requests_only = True


def _kept_timeout() -> int | None:
    # Held per database connection: a reconnect (age, health check) starts with none.
    kept = getattr(connection, KEPT_ATTR, None)
    if kept is None or kept[0] is not connection.connection:
        return None
    return kept[1]


def _keep_timeout(milliseconds: int | None) -> None:
    setattr(connection, KEPT_ATTR, (connection.connection, milliseconds))


def set_statement_timeout(milliseconds: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('statement_timeout', %s, false)", [f"{int(milliseconds)}ms"])


def reset_statement_timeout() -> None:
    """Back to the connection's default (its role's, database's or server's setting)."""
    if connection.connection is None:
        return  # closed during the request (the database went away): nothing carries over
    try:
        with connection.cursor() as cursor:
            cursor.execute("RESET statement_timeout")
    except DatabaseError:
        # A broken connection is discarded at the request's end (close_old_connections), and an
        # aborted transaction (a test's) takes the setting with it when it is rolled back.
        pass
