"""Error codes in the schema: one GraphQL enum per module's :class:`ErrorCode` enum, and the
typed ``{field code message}`` object of that module's mutations.

A mutation names its module's enum (``CoreMutation.error_codes = PayrollErrorCode``); its
``errors`` are then ``[PayrollMutationError!]!`` whose ``code`` is the enum
``PayrollErrorCode``, holding the module's codes, the core's generic ones
(:class:`core.errors.CoreErrorCode`) and those of the modules it requires (their services
may refuse inside its mutations). ``schema.graphql`` thereby lists every refusal a client
can see.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cache
from typing import Any

import graphene

from core.errors import (
    CoreErrorCode,
    ErrorCode,
    ModuleConfigurationError,
    module_error_enums,
    values_of,
)

log = logging.getLogger("coremis.mutations")


def _owner(codes: type[ErrorCode]) -> str:
    """The module an enum belongs to (``modules.payroll.errors`` → ``payroll``), or ``core``."""
    parts = codes.__module__.split(".")
    return parts[1] if parts[0] == "modules" and len(parts) > 1 else "core"


def _required_modules(module: str) -> list[str]:
    """Every module ``module`` requires, directly or not, in dependency order."""
    from core.loader import get_registry

    specs = {m.name: m.spec for m in get_registry().modules}
    found: list[str] = []

    def visit(name: str) -> None:
        spec = specs.get(name)
        for required in (spec.requires if spec else {}):
            if required != "core" and required not in found:
                visit(required)
                found.append(required)

    visit(module)
    return found


def included_enums(codes: type[ErrorCode]) -> list[type[ErrorCode]]:
    """The enums whose members a mutation declaring ``codes`` may return."""
    from core.loader import get_registry

    registry = get_registry()
    enums: list[type[ErrorCode]] = [codes, CoreErrorCode]
    for name in _required_modules(_owner(codes)):
        package = next(m.spec.app for m in registry.modules if m.name == name)
        enums.extend(module_error_enums(package))
    return list(dict.fromkeys(enums))


def allowed_codes(codes: type[ErrorCode]) -> dict[str, ErrorCode]:
    return values_of(included_enums(codes))


_ENUM_NAMES: dict[str, type[ErrorCode]] = {}


@cache
def error_enum(codes: type[ErrorCode]) -> type[graphene.Enum]:
    """The GraphQL enum of ``codes`` (named like it), with every code it includes."""
    name = codes.__name__
    if _ENUM_NAMES.setdefault(name, codes) is not codes:
        raise ModuleConfigurationError(
            _owner(codes), f"declares the error-code enum {name}, a name another module uses",
            f"name it after the module ({_owner(codes).title().replace('_', '')}ErrorCode)")
    members = allowed_codes(codes)
    # One Python enum holding every value, so each keeps its description in the schema.
    merged = ErrorCode(name, [(value, (value, member.description)) for value, member in members.items()])  # type: ignore[call-overload]
    doc = " ".join((codes.__doc__ or f"Why a mutation of {_owner(codes)} was refused.").split())
    others = ", ".join(_required_modules(_owner(codes)))
    doc += " With the core's generic codes" + (f" and those of {others}" if others else "") + "."
    return graphene.Enum.from_enum(merged, description=doc)


@cache
def mutation_error_type(codes: type[ErrorCode]) -> type[graphene.ObjectType]:
    """``<Prefix>MutationError {field code message}`` with ``code`` the enum of ``codes``."""
    prefix = codes.__name__.removesuffix("ErrorCode") or codes.__name__
    return type(f"{prefix}MutationError", (graphene.ObjectType,), {
        "__doc__": "One reason a mutation was refused; ``field`` is null when it is about the whole input.",
        "field": graphene.String(),
        "code": graphene.Field(error_enum(codes), required=True),
        "message": graphene.String(required=True),
    })


def _log_undeclared(mutation: str, code: str) -> None:
    log.error("mutation refused with a code it does not declare; answered as REFUSED",
              extra={"mutation": mutation, "code": code})


# What happens to a refusal whose code the mutation's enum does not hold. The core's test
# plug-in replaces it with one that fails the test, so an undeclared code is found early.
on_undeclared_code: Callable[[str, str], None] = _log_undeclared


def public_code(codes: type[ErrorCode], mutation: str, code: Any) -> str:
    """``code`` as the mutation's enum can carry it."""
    value = str(code)
    if value in allowed_codes(codes):
        return value
    on_undeclared_code(mutation, value)
    return CoreErrorCode.REFUSED.value
