"""The payment-provider adaptor contract: events and calls the payroll module owns.

An adaptor is named by a payment point's ``adaptor`` field. The three calls below are
``firstresult`` hooks: every implementation receives the adaptor name and answers ``None``
when it is not its own, so any module can add an adaptor by implementing them. The payroll
module implements them for its built-in adaptors (see ``modules/payroll/adaptors``).

Outcomes are :class:`modules.payroll.adaptors.base.Outcome`; an adaptor raises
:class:`modules.payroll.adaptors.base.ProviderUnavailable` when it cannot tell whether the
provider received a request (timeout, connection reset, 5xx): the instructions stay
"unknown" and are resolved by :func:`payroll_query_status` before anything is sent again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from modules.payroll.adaptors.base import Instruction, Outcome

hookspec = pluggy.HookspecMarker("coremis")


@hookspec
def payroll_payment_methods() -> list[str]:
    """Names of the adaptors this module provides (shown by the ``paymentMethods`` query)."""


@hookspec(firstresult=True)
def payroll_send_batch(adaptor: str, point: Any, instructions: list[Instruction]) -> list[Outcome] | None:
    """Hand ``instructions`` to the provider of ``point``; one outcome per instruction.

    Instruction references are idempotency keys: a resend of the same reference must never be
    a second payment. Return ``None`` when ``adaptor`` is not yours.
    """


@hookspec(firstresult=True)
def payroll_query_status(adaptor: str, point: Any, references: list[str]) -> list[Outcome] | None:
    """Ask the provider what became of ``references``; ``NOT_FOUND`` means it never received
    one (so it is safe to send again). Return ``None`` when ``adaptor`` is not yours."""


@hookspec(firstresult=True)
def payroll_parse_callback(adaptor: str, point: Any, body: bytes,
                           headers: Mapping[str, str]) -> list[Outcome] | None:
    """Authenticate and parse a provider's callback (or result file) into outcomes.

    Raise ``modules.payroll.adaptors.base.CallbackRejected`` for a request that is not
    authentic or not understood. Return ``None`` when ``adaptor`` is not yours.
    """


@hookspec(firstresult=True)
def payroll_recipient_identifiers(adaptor: str, point: Any) -> list[str] | None:
    """The recipient fields (keys of the person's ``json_ext``) the provider of ``point`` pays
    to: at least one of them must be non-empty, or generation routes the payment to another
    point that can pay it, or refuses the recipient and lists them in the job's result.
    ``[]`` when the provider needs none of them (a bank file that carries names only).
    Return ``None`` when ``adaptor`` is not yours."""


@hookspec
def payroll_after_outcomes_received(point: Any, source: str, outcomes: list[Outcome]) -> None:
    """A provider told us ``outcomes`` (``source`` is ``"CALLBACK"`` or ``"POLL"``) and they were
    recorded; called on commit, so a rolled-back callback tells nobody. The reconciliation
    module writes them to its ledger."""


@hookspec
def payroll_close_problems(payroll: Any) -> list[str]:
    """Why ``payroll`` may not be closed (reconciled) yet, in sentences; ``[]`` when nothing
    stands in the way. Runs inside the closing transaction, with the payroll locked."""


@hookspec
def payroll_urls() -> list[Any]:
    """More routes under ``/api/payroll/`` (the openIMIS paths other modules answer, such as
    ``csv_reconciliation/``)."""


@hookspec
def payroll_create_problems(plan: Any, cycle: Any, location_ids: list[str], follows: Any) -> list[Any]:
    """Why a new payroll of ``plan`` in ``cycle`` for ``location_ids`` (``[]``: wherever the plan
    pays) may not be generated, as ``core.errors.FieldError`` values; ``follows`` is the payroll
    a re-issue comes from (``None`` otherwise). Runs when ``createPayroll`` is checked and again
    in the generation job."""
