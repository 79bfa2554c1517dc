"""Typed errors raised by service functions and turned into ``{field, code, message}``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    field: str | None
    code: str
    message: str


class ServiceError(Exception):
    """A refusal a user can act on. ``code`` is stable (``LOCATION_CODE_TAKEN``)."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field

    @property
    def errors(self) -> list[FieldError]:
        return [FieldError(self.field, self.code, self.message)]


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
        super().__init__("PERMISSION_DENIED", message)


class NotFound(ServiceError):
    def __init__(self, what: str, ident: object) -> None:
        super().__init__("NOT_FOUND", f"{what} {ident} does not exist or is not visible to you.", "id")


class StaleVersion(ServiceError):
    def __init__(self, what: str, expected: int, actual: int) -> None:
        super().__init__(
            "STALE_VERSION",
            f"{what} was changed by someone else (you edited version {expected}, it is now "
            f"version {actual}). Reload it and apply your change again.",
            "version",
        )
