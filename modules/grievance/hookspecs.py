"""Events and seams the grievance module owns.

``grievance_ticket_*`` fire once the transaction that did it commits (kobo and monitoring
react to them). The other hooks let modules grievance does not require serve it when they
are enabled: ``social_protection`` says who a beneficiary is, ``payroll`` what became of a
payment, and any module may add a notification channel (SMS…).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("coremis")


@dataclass(frozen=True)
class BeneficiaryRef:
    """Who a beneficiary row is: the person (INDIVIDUAL plans) or household (GROUP plans)."""

    beneficiary_id: Any
    individual_id: Any | None
    group_id: Any | None
    plan_code: str
    status: str


@dataclass(frozen=True)
class PaymentRef:
    """A payment as it is now: its status is read when asked, never copied onto the ticket."""

    payment_id: Any
    code: str
    status: str
    amount: int
    currency: str
    individual_id: Any
    group_id: Any | None
    date_paid: Any | None
    provider_transaction_id: str
    status_message: str
    payroll: str


@dataclass(frozen=True)
class OutgoingMessage:
    """A notification for one channel: ``address`` is the channel's (an e-mail, a phone)."""

    channel: str
    address: str
    subject: str
    body: str
    recipient_id: Any | None


@hookspec
def grievance_ticket_created(ticket_ids: list[Any], source: str) -> None:
    """Tickets were recorded (``source``: "mutation", "service" or a module's name); after commit."""


@hookspec
def grievance_ticket_escalated(escalations: list[dict[str, Any]]) -> None:
    """Overdue tickets moved up: ``[{ticket_id, level, attending_staff_id, location_id}]``;
    after commit, once per escalation run and chunk."""


@hookspec
def grievance_ticket_resolved(ticket_id: Any, comment_id: Any | None) -> None:
    """A ticket was resolved (by a resolution comment, or by its workflows finishing); after commit."""


@hookspec(firstresult=True)
def grievance_beneficiaries(beneficiary_ids: list[Any]) -> dict[Any, dict[str, Any]] | None:
    """The named beneficiary rows that exist (of INDIVIDUAL or GROUP plans), by id, each as
    ``{individual_id, group_id, plan_code, status}`` (the fields of :class:`BeneficiaryRef`)."""


@hookspec(firstresult=True)
def grievance_payments(payment_ids: list[Any]) -> dict[Any, dict[str, Any]] | None:
    """The named payments as they are now, by id, each as ``{code, status, amount, currency,
    individual_id, group_id, date_paid, provider_transaction_id, status_message, payroll}``."""


@hookspec
def grievance_notification_channels() -> dict[str, Callable[[OutgoingMessage], None]]:
    """Channels a module delivers notifications through: ``{"sms": send}``. ``send`` raises to
    say the message was not delivered (the outbox tries again later)."""


@hookspec
def grievance_notification_address(channel: str, user: Any) -> str | None:
    """The address of ``user`` on ``channel`` (``None``: not this module's channel, or none)."""
