"""Built-in payment-provider adaptors and the dispatch to whichever module provides one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.errors import ServiceError
from modules.payroll.adaptors.base import Instruction, Outcome
from modules.payroll.errors import PayrollErrorCode


def _hook() -> Any:
    from core.hooks import hook

    return hook()


def payment_methods() -> list[str]:
    names: set[str] = set()
    for declared in _hook().payroll_payment_methods():
        names.update(declared or [])
    return sorted(names)


def _answer(result: list[Outcome] | None, adaptor: str) -> list[Outcome]:
    if result is None:
        raise ServiceError(PayrollErrorCode.UNKNOWN_ADAPTOR, f"No enabled module provides the payment adaptor '{adaptor}'.", "adaptor")
    return result


def send_batch(point: Any, instructions: list[Instruction]) -> list[Outcome]:
    return _answer(_hook().payroll_send_batch(adaptor=point.adaptor, point=point, instructions=instructions),
                   point.adaptor)


def query_status(point: Any, references: list[str]) -> list[Outcome]:
    return _answer(_hook().payroll_query_status(adaptor=point.adaptor, point=point, references=references),
                   point.adaptor)


def parse_callback(point: Any, body: bytes, headers: Mapping[str, str]) -> list[Outcome]:
    return _answer(_hook().payroll_parse_callback(adaptor=point.adaptor, point=point, body=body, headers=headers),
                   point.adaptor)


def recipient_identifiers(point: Any) -> list[str]:
    """The recipient fields ``point``'s provider pays to (one of them must be set)."""
    found = _hook().payroll_recipient_identifiers(adaptor=point.adaptor, point=point)
    return list(found or [])


def outcomes_received(point: Any, source: str, outcomes: list[Outcome]) -> None:
    """Tell other modules what a provider said, once the recording has committed."""
    from django.db import transaction

    if outcomes:
        transaction.on_commit(lambda: _hook().payroll_after_outcomes_received(point=point, source=source,
                                                                               outcomes=outcomes))
