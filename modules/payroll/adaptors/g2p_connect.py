"""A G2P Connect disbursement adaptor (``/disburse``, ``/on-disburse``, ``/disburse/txn/status``).

Configuration::

    {"base_url": "https://bank.example/g2p", "sender_id": "coremis.gov.bi", "receiver_id": "bank",
     "sender_uri": "https://mis.gov.bi/api/payroll/callback/<point code>",
     "payer_fa": "account:treasury@bank", "auth_token": {"env": "G2P_TOKEN"},
     "callback_key": {"env": "G2P_CALLBACK_KEY"}, "batch_size": 500, "timeout": 30}

Each batch is one ``/disburse`` request whose ``message.transaction_id`` is derived from its
references, so a resend of the same batch is recognisably the same transaction; every
disbursement's ``reference_id`` is the instruction's reference. The synchronous answer is an
acknowledgement (``ack_status`` ACK / NACK / ERR); statuses (``succ``, ``rjct``, ``pdng``)
arrive on ``/on-disburse`` or from ``/disburse/txn/status``.

Requests carry ``Authorization: Bearer <auth_token>``. Callbacks are authenticated by an
HMAC-SHA256 of the body in the ``Signature`` header; the JWS envelope signatures of the
specification are not implemented.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from core.errors import ServiceError
from modules.payroll.adaptors.base import (
    ACCEPTED,
    FAILED,
    NOT_FOUND,
    PAID,
    CallbackRejected,
    Instruction,
    Outcome,
    ProviderUnavailable,
)
from modules.payroll.adaptors.mobile_money import secret_from

NAME = "g2p_connect"
STATUSES = {"succ": PAID, "rjct": FAILED, "pdng": ACCEPTED}


def _header(config: dict[str, Any], action: str, count: int) -> dict[str, Any]:
    return {
        "version": "1.0.0", "message_id": str(uuid.uuid4()),
        "message_ts": datetime.now(UTC).isoformat(timespec="seconds"), "action": action,
        "sender_id": config.get("sender_id", ""), "sender_uri": config.get("sender_uri", ""),
        "receiver_id": config.get("receiver_id", ""), "total_count": count, "is_msg_encrypted": False,
    }


def _post(point: Any, config: dict[str, Any], path: str, envelope: dict[str, Any]) -> dict[str, Any]:
    if not config.get("base_url"):
        raise ServiceError("ADAPTOR_MISCONFIGURED", f"Payment point {point.code}: base_url is not configured.")
    token = secret_from(point, config.get("auth_token"), "auth_token")
    request = urllib.request.Request(
        config["base_url"] + path, data=json.dumps(envelope).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=float(config.get("timeout", 30))) as response:
            return dict(json.loads(response.read() or b"{}"))
    except urllib.error.HTTPError as exc:
        if exc.code >= 500:
            raise ProviderUnavailable(f"{path}: HTTP {exc.code}") from exc
        raise ServiceError("PROVIDER_REFUSED", f"{path}: HTTP {exc.code}") from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        raise ProviderUnavailable(f"{path}: {exc}") from exc


def transaction_id(references: list[str]) -> str:
    return "TXN-" + hashlib.sha256("\n".join(references).encode()).hexdigest()[:24]


def send_batch(point: Any, instructions: list[Instruction]) -> list[Outcome]:
    config = dict(point.config or {})
    now = datetime.now(UTC).isoformat(timespec="seconds")
    disbursements = [{
        "reference_id": i.reference, "payer_fa": config.get("payer_fa", ""),
        "payee_fa": i.account or i.phone, "payee_name": f"{i.first_name} {i.last_name}",
        "amount": str(i.amount) if i.minor_unit == 0 else i.major_amount(), "currency_code": i.currency,
        "scheduled_timestamp": now, "note": "social protection benefit", "locale": "eng",
    } for i in instructions]
    references = [i.reference for i in instructions]
    envelope = {"signature": "", "header": _header(config, "disburse", len(disbursements)),
                "message": {"transaction_id": transaction_id(references), "disbursements": disbursements}}
    try:
        answer = _post(point, config, "/disburse", envelope)
    except ServiceError as exc:
        if exc.code != "PROVIDER_REFUSED":
            raise
        return [Outcome(r, FAILED, message=exc.message) for r in references]
    ack = (answer.get("message") or {}).get("ack_status")
    if ack == "ACK":
        return [Outcome(r, ACCEPTED) for r in references]
    if ack in ("NACK", "ERR"):
        # The receiver refused the whole message: nothing will be paid from it.
        reason = json.dumps((answer.get("message") or {}).get("error") or ack)[:255]
        return [Outcome(r, FAILED, message=reason) for r in references]
    raise ProviderUnavailable(f"/disburse: no acknowledgement in {str(answer)[:200]}")


def _statuses(items: list[dict[str, Any]]) -> dict[str, Outcome]:
    found = {}
    for item in items:
        status = STATUSES.get(str(item.get("status", "")).lower())
        if status and item.get("reference_id"):
            found[item["reference_id"]] = Outcome(item["reference_id"], status,
                                                  str(item.get("instruction") or item.get("reference_id")),
                                                  str(item.get("reason_code") or ""))
    return found


def query_status(point: Any, references: list[str]) -> list[Outcome]:
    config = dict(point.config or {})
    envelope = {"signature": "", "header": _header(config, "txn-status", len(references)),
                "message": {"transaction_id": str(uuid.uuid4()), "txnstatus_request": {
                    "reference_id": str(uuid.uuid4()), "txn_type": "disburse",
                    "attribute_type": "reference_id_list", "attribute_value": references}}}
    answer = _post(point, config, "/disburse/txn/status", envelope)
    response = (answer.get("message") or {}).get("txnstatus_response")
    if not isinstance(response, dict):
        raise ProviderUnavailable("/disburse/txn/status: no txnstatus_response")
    known = _statuses(response.get("txn_status") or [])
    # The receiver lists every disbursement it holds among those asked about; one it does
    # not list never reached it.
    return [known.get(r, Outcome(r, NOT_FOUND)) for r in references]


def parse_callback(point: Any, body: bytes, headers: Mapping[str, str]) -> list[Outcome]:
    config = dict(point.config or {})
    key = secret_from(point, config.get("callback_key"), "callback_key")
    if not hmac.compare_digest(headers.get("Signature", ""), hmac.new(key.encode(), body, hashlib.sha256).hexdigest()):
        raise CallbackRejected("The on-disburse callback's signature does not match.")
    try:
        envelope = json.loads(body)
        if envelope["header"]["action"] != "on-disburse":
            raise CallbackRejected(f"Unexpected action {envelope['header']['action']!r}.")
        return list(_statuses(envelope["message"]["disbursements_status"]).values())
    except (ValueError, KeyError, TypeError) as exc:
        raise CallbackRejected(f"The callback is not a G2P Connect on-disburse message: {exc!r}") from exc
