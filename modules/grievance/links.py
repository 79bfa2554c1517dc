"""What a ticket links to in modules grievance does not require: beneficiaries (through
``social_protection``) and payments (through ``payroll``), read through the hooks those modules
implement. They answer plain mappings (they cannot import grievance); here those become the
typed references the services use."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from modules.grievance.hookspecs import BeneficiaryRef, PaymentRef


def _hook() -> Any:
    from core.hooks import hook

    return hook()


def beneficiaries_available() -> bool:
    return bool(_hook().grievance_beneficiaries.get_hookimpls())


def payments_available() -> bool:
    return bool(_hook().grievance_payments.get_hookimpls())


def _key(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def beneficiaries(ids: Iterable[Any]) -> dict[uuid.UUID, BeneficiaryRef]:
    wanted = [i for i in ids if i]
    if not wanted or not beneficiaries_available():
        return {}
    found = _hook().grievance_beneficiaries(beneficiary_ids=wanted) or {}
    return {_key(k): BeneficiaryRef(beneficiary_id=_key(k), individual_id=v.get("individual_id"),
                                    group_id=v.get("group_id"), plan_code=str(v.get("plan_code", "")),
                                    status=str(v.get("status", ""))) for k, v in found.items()}


def payments(ids: Iterable[Any]) -> dict[uuid.UUID, PaymentRef]:
    wanted = [i for i in ids if i]
    if not wanted or not payments_available():
        return {}
    found = _hook().grievance_payments(payment_ids=wanted) or {}
    return {_key(k): PaymentRef(payment_id=_key(k), code=str(v["code"]), status=str(v["status"]),
                                amount=int(v["amount"]), currency=str(v["currency"]),
                                individual_id=v.get("individual_id"), group_id=v.get("group_id"),
                                date_paid=v.get("date_paid"), provider_transaction_id=str(v.get("provider_transaction_id") or ""),
                                status_message=str(v.get("status_message") or ""), payroll=str(v.get("payroll") or ""))
            for k, v in found.items()}
