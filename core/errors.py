"""Typed errors: the vocabulary of refusals, and the exceptions that carry them.

Every code a client can see is a member of an :class:`ErrorCode` enum. The core declares its
generic codes in :class:`CoreErrorCode` (any module may raise them); each module declares its
own in ``modules/<m>/errors.py`` (``class PayrollErrorCode(ErrorCode)``). A member may carry a
sentence for the schema: ``PLAN_CLOSED = "PLAN_CLOSED", "The benefit plan is closed."``.
Services raise :class:`ServiceError` / :class:`FieldError` with members; GraphQL turns them
into ``{field, code, message}`` with ``code`` an enum of the schema (``core.graphql.errors``).

This module imports nothing of Django, so manifests and the loader can use it before Django
starts.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Self


class ErrorCode(StrEnum):
    """Base of every error-code enum. A member's value is its name; ``description`` (optional)
    says when it is raised and is printed in ``schema.graphql``."""

    description: str

    def __new__(cls, value: str, description: str = "") -> Self:
        member = str.__new__(cls, value)
        member._value_ = value
        member.description = description
        return member


class CoreErrorCode(ErrorCode):
    """The generic codes: any service may raise them, and every mutation's error enum has them.

    Near-duplicates were merged: ``FORBIDDEN`` is ``PERMISSION_DENIED``, ``INVALID_CHARACTERS``
    is ``INVALID_CHARACTER``.
    """

    # input
    REQUIRED = "REQUIRED", "A required value is missing or blank."
    INVALID = "INVALID", "A value is not acceptable for its field; the message says why."
    TOO_LONG = "TOO_LONG", "A text is longer than its field allows."
    INVALID_CHARACTER = "INVALID_CHARACTER", "A text holds a character that is not text (control, NUL, lone surrogate)."
    INVALID_ID = "INVALID_ID", "An id is neither a UUID nor a Relay id of the expected type."
    INVALID_NUMBER = "INVALID_NUMBER", "A number is not finite."
    NUMBER_OUT_OF_RANGE = "NUMBER_OUT_OF_RANGE", "A number is beyond what any field accepts."
    INPUT_TOO_LARGE = "INPUT_TOO_LARGE", "An input holds too many values."
    INPUT_TOO_DEEP = "INPUT_TOO_DEEP", "An input is nested too deeply."
    INVALID_JSON_EXT = "INVALID_JSON_EXT", "jsonExt does not match the deployment's JSON Schema."
    INVALID_VALUE = "INVALID_VALUE", "The database refused a value the checks let through; nothing changed."
    # lists (a mutation may share an orderBy or filter check with queries)
    INVALID_ORDER_BY = "INVALID_ORDER_BY", "orderBy names a field that cannot be ordered by."
    INVALID_FILTER = "INVALID_FILTER", "A filter value is not valid."
    INVALID_CUSTOM_FILTER = "INVALID_CUSTOM_FILTER", "A customFilters condition is malformed."
    # who may do what
    PERMISSION_DENIED = "PERMISSION_DENIED", "The caller lacks the permission this needs."
    OUT_OF_SCOPE = "OUT_OF_SCOPE", "A record or location lies outside the caller's location scope."
    NOT_FOUND = "NOT_FOUND", "The record does not exist or is not visible to the caller."
    # writes
    STALE_VERSION = "STALE_VERSION", "Someone else changed the record since it was read; reload it."
    CONFLICT = "CONFLICT", "The change conflicts with data saved at the same moment; nothing changed."
    # the mutation log and idempotency
    IN_PROGRESS = "IN_PROGRESS", "A request with this clientMutationId is still being processed."
    CLIENT_MUTATION_ID_REUSED = "CLIENT_MUTATION_ID_REUSED", "This clientMutationId was used for another request."
    # the platform
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE", "The database or Redis is not reachable; nothing was done."
    QUERY_TIMEOUT = "QUERY_TIMEOUT", "A database statement ran past the request's time limit; nothing changed."
    INTERNAL = "INTERNAL", "An unexpected error, logged under the reference the message gives."
    REFUSED = "REFUSED", ("A refusal whose own code the mutation does not declare (a bug, logged); "
                          "the message is the refusal's own.")
    # core services modules call: uploads, secrets, jobs, approvals
    UNKNOWN_PURPOSE = "UNKNOWN_PURPOSE", "No enabled module accepts uploads for this purpose."
    FILE_TOO_LARGE = "FILE_TOO_LARGE", "The file is larger than the deployment accepts."
    EMPTY_FILE = "EMPTY_FILE", "The file is empty."
    UPLOAD_NOT_FOUND = "UPLOAD_NOT_FOUND", "No upload of the caller's has this id and purpose."
    SECRET_NOT_ALLOWED = "SECRET_NOT_ALLOWED", "A credential reference names a variable outside the deployer's prefix."
    SECRET_UNAVAILABLE = "SECRET_UNAVAILABLE", "A credential reference names a variable that is not set."
    URL_NOT_ALLOWED = "URL_NOT_ALLOWED", "An outbound URL matches no allowed prefix of the configuration."
    UNKNOWN_JOB_KIND = "UNKNOWN_JOB_KIND", "No enabled module runs jobs of this kind."
    UNKNOWN_APPROVAL_ACTION = "UNKNOWN_APPROVAL_ACTION", "No enabled module declares this approval action."
    APPROVAL_NOT_CONFIGURED = "APPROVAL_NOT_CONFIGURED", "The action is not routed to a task group."
    TASK_GROUP_MISSING = "TASK_GROUP_MISSING", "The task group an action is routed to does not exist."
    NO_ELIGIBLE_CHECKERS = "NO_ELIGIBLE_CHECKERS", "The task group has too few active checkers besides the maker."
    APPROVAL_PENDING = "APPROVAL_PENDING", "The same action on the same record already waits for approval."


class RequestErrorCode(ErrorCode):
    """Refusals of a whole request (``extensions.code`` of a top-level error, or the JSON
    ``error`` of a REST route); never in a mutation's ``errors``."""

    INVALID_JSON = "INVALID_JSON", "The body (or a JSON parameter) is not valid JSON."
    INVALID_BODY = "INVALID_BODY", "The body is not a JSON object of UTF-8 text."
    INVALID_QUERY = "INVALID_QUERY", "'query' is not a string."
    INVALID_VARIABLES = "INVALID_VARIABLES", "'variables' is not a JSON object."
    INVALID_OPERATION_NAME = "INVALID_OPERATION_NAME", "'operationName' is not a string."
    NO_QUERY = "NO_QUERY", "No GraphQL document was sent."
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED", "The HTTP method is not accepted here."
    REQUEST_TOO_LARGE = "REQUEST_TOO_LARGE", "The body is larger than accepted."
    QUERY_TOO_LARGE = "QUERY_TOO_LARGE", "The document has more lexical tokens than accepted."
    QUERY_TOO_COSTLY = "QUERY_TOO_COSTLY", "The request would cost more than the limit."
    RESPONSE_TOO_LARGE = "RESPONSE_TOO_LARGE", "The answer would be larger than the limit."
    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED", "The document is not valid GraphQL syntax."
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED", "The document does not match the schema."
    INTROSPECTION_DISABLED = "INTROSPECTION_DISABLED", "Schema introspection is not open to this caller."
    UNAUTHENTICATED = "UNAUTHENTICATED", "No valid access token was sent."
    INVALID_PAGE = "INVALID_PAGE", "Paging arguments are negative or contradict each other."
    INVALID_CURSOR = "INVALID_CURSOR", "A cursor is not one this API returned."
    PAGE_TOO_LARGE = "PAGE_TOO_LARGE", "A page asks for more rows than allowed."
    NO_FILE = "NO_FILE", "The request carries no file."
    BAD_REQUEST = "BAD_REQUEST", "The HTTP request was refused."
    UNKNOWN_CHECK = "UNKNOWN_CHECK", "/health was asked for a check that does not exist."


@dataclass(frozen=True)
class FieldError:
    field: str | None
    code: str
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "code", checked_code(self.code))


class ServiceError(Exception):
    """A refusal a user can act on. ``code`` is an :class:`ErrorCode` member."""

    def __init__(self, code: ErrorCode | str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = checked_code(code)
        self.message = message
        self.field = field

    @property
    def errors(self) -> list[FieldError]:
        return [FieldError(self.field, self.code, self.message)]


def checked_code(code: ErrorCode | str) -> str:
    """``code`` if it is a member of a declared :class:`ErrorCode` enum (``tests/test_conventions.py``
    proves no module raises a string literal). A plain string is still accepted here for the
    codes test doubles and plug-ins under test make up, and for codes passed on from a member
    already turned into text (a job's stored ``error_code``)."""
    if isinstance(code, str):
        return code
    raise TypeError(f"an error code is an ErrorCode member, not {type(code).__name__}")


class ValidationFailed(ServiceError):
    """Several field errors at once; nothing was changed."""

    def __init__(self, errors: list[FieldError]) -> None:
        first = errors[0]
        super().__init__(first.code, "; ".join(e.message for e in errors), first.field)
        self._errors = errors

    @property
    def errors(self) -> list[FieldError]:
        return list(self._errors)


class PermissionDenied(ServiceError):
    def __init__(self, message: str = "You do not have the permission to do this.") -> None:
        super().__init__(CoreErrorCode.PERMISSION_DENIED, message)


class NotFound(ServiceError):
    def __init__(self, what: str, ident: object) -> None:
        super().__init__(CoreErrorCode.NOT_FOUND, f"{what} {ident} does not exist or is not visible to you.", "id")


class StaleVersion(ServiceError):
    def __init__(self, what: str, expected: int, actual: int) -> None:
        super().__init__(
            CoreErrorCode.STALE_VERSION,
            f"{what} was changed by someone else (you edited version {expected}, it is now "
            f"version {actual}). Reload it and apply your change again.",
            "version",
        )


class ModuleConfigurationError(Exception):
    """The deployment's module set or configuration cannot run; the message says how to fix it."""

    def __init__(self, module: str, problem: str, fix: str) -> None:
        self.module = module
        self.problem = problem
        self.fix = fix
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"coremis cannot start: module '{self.module}': {self.problem}\n  Fix: {self.fix}"


# --- where the vocabularies are ----------------------------------------------------------------

# The core's enums, besides CoreErrorCode and RequestErrorCode here; each lives beside the
# service that raises it.
CORE_ERROR_MODULES = ("core.errors", "core.jobs.errors", "core.approvals.errors", "core.auth.errors")


def enums_in(module_name: str) -> list[type[ErrorCode]]:
    """The :class:`ErrorCode` enums a Python module defines (not those it imports)."""
    if importlib.util.find_spec(module_name) is None:
        return []
    module = importlib.import_module(module_name)
    return [value for value in vars(module).values()
            if isinstance(value, type) and issubclass(value, ErrorCode) and value is not ErrorCode
            and value.__module__ == module_name]


def module_error_enums(package: str) -> list[type[ErrorCode]]:
    """A module's declared codes: the enums of ``<package>.errors`` (``[]`` when it has none)."""
    try:
        return enums_in(f"{package}.errors")
    except ModuleNotFoundError:
        return []


def core_error_enums() -> list[type[ErrorCode]]:
    return [enum for name in CORE_ERROR_MODULES for enum in enums_in(name)]


def values_of(enums: Iterable[type[ErrorCode]]) -> dict[str, ErrorCode]:
    """Every member of ``enums`` by value, first declaration first."""
    found: dict[str, ErrorCode] = {}
    for enum in enums:
        for member in enum:
            found.setdefault(member.value, member)
    return found
