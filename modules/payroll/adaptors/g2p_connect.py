"""A G2P Connect disbursement adaptor (``/disburse``, ``/on-disburse``, ``/disburse/txn/status``).

Configuration::

    {"base_url": "https://bank.example/g2p", "sender_id": "coremis.gov.bi", "receiver_id": "bank",
     "sender_uri": "https://mis.gov.bi/api/payroll/callback/<point code>",
     "payer_fa": "account:treasury@bank", "auth_token": {"env": "COREMIS_PSP_G2P_TOKEN"},
     "signing_key": {"env": "COREMIS_PSP_G2P_SIGNING_KEY"}, "key_id": "coremis-2026-01",
     "provider_public_key": {"env": "COREMIS_PSP_G2P_BANK_KEY"}, "provider_key_id": "bank-key-7",
     "batch_size": 500, "timeout": 30}

Each batch is one ``/disburse`` request whose ``message.transaction_id`` is derived from its
references, so a resend of the same batch is recognisably the same transaction; every
disbursement's ``reference_id`` is the instruction's reference. The synchronous answer is an
acknowledgement (``ack_status`` ACK / NACK / ERR); statuses (``succ``, ``rjct``, ``pdng``)
arrive on ``/on-disburse`` or from ``/disburse/txn/status``.

Requests carry ``Authorization: Bearer <auth_token>`` and are signed in the form of the
specification's ``MsgSignature`` schema (G2P Connect disburse API 1.0.0; see ``g2p_signature``
for what it says and what we read into it): the envelope's ``signature`` member holds
``Signature: namespace="g2p", kidId="{sender_id}|{key_id}|ed25519", algorithm="ed25519",
created=..., expires=..., headers="(created) (expires) digest", signature=...``, an Ed25519
signature over a BLAKE-512 digest of the header and message text sent. Keys:

- ``signing_key`` (required): our Ed25519 private key, an ``{"env": NAME}`` reference to PKCS#8
  PEM or Base64 of the 32-byte seed; ``key_id`` (required): its id as registered with the
  receiver; ``signature_ttl``: seconds a signature stays valid (300);
  ``signature_namespace``: the ``namespace`` parameter ("g2p").
- ``callback_auth``: how ``/on-disburse`` callbacks are authenticated, ``"signature"``
  (default) or ``"hmac"``.
- With ``"signature"``: ``provider_public_key``, the receiver's Ed25519 public key as an
  ``{"env": NAME}`` reference or literal PEM / Base64 (public keys are not secrets);
  ``provider_key_id``, the key id its ``kidId`` must name; ``provider_id``, the sender id its
  ``kidId`` must name (default ``receiver_id``); ``max_clock_skew``: seconds of clock
  difference tolerated on ``created`` and ``expires`` (30). A callback that is unsigned,
  altered, expired, created in the future, signed with another key or key id, or by another
  sender, is refused and changes nothing.
- With ``"hmac"``: ``callback_key``, a shared secret; the ``Signature`` HTTP header must be the
  hex HMAC-SHA256 of the body (for receivers that cannot sign).

A receiver that refuses our credentials or signature (HTTP 401/403, or an ERR acknowledgement
with ``err.signature.*``, ``err.request.unauthorized``/``forbidden``, ``err.sender_id.invalid``)
stops the sending run with that error; the batch stays unknown until a status query settles it,
so nothing is recorded as sent, and nothing is sent twice once the keys are fixed.
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
from modules.payroll.adaptors import g2p_signature
from modules.payroll.adaptors.base import (
    ACCEPTED,
    FAILED,
    NOT_FOUND,
    PAID,
    CallbackRejected,
    Instruction,
    Outcome,
    ProviderUnavailable,
    open_url,
    secret_from,
)
from modules.payroll.errors import PayrollErrorCode

NAME = "g2p_connect"
STATUSES = {"succ": PAID, "rjct": FAILED, "pdng": ACCEPTED}
# Acknowledgement errors that say our credentials or signature are wrong: every further
# message would be refused the same way.
REFUSALS = frozenset({g2p_signature.MISSING, g2p_signature.INVALID, "err.request.unauthorized",
                      "err.request.forbidden", "err.sender_id.invalid"})


def _misconfigured(point: Any, problem: str) -> ServiceError:
    return ServiceError(PayrollErrorCode.ADAPTOR_MISCONFIGURED, f"Payment point {point.code}: {problem}.")


def _header(config: dict[str, Any], action: str, count: int) -> dict[str, Any]:
    return {
        "version": "1.0.0", "message_id": str(uuid.uuid4()),
        "message_ts": datetime.now(UTC).isoformat(timespec="seconds"), "action": action,
        "sender_id": config.get("sender_id", ""), "sender_uri": config.get("sender_uri", ""),
        "receiver_id": config.get("receiver_id", ""), "total_count": count, "is_msg_encrypted": False,
    }


def _signed_body(point: Any, config: dict[str, Any], header: dict[str, Any], message: dict[str, Any]) -> bytes:
    for required in ("sender_id", "key_id"):
        if not config.get(required):
            raise _misconfigured(point, f"{required} is not configured")
    try:
        key = g2p_signature.private_key(secret_from(point, config.get("signing_key"), "signing_key"))
        return g2p_signature.sign(header, message, key=key, sender_id=config["sender_id"], key_id=config["key_id"],
                                  ttl=int(config.get("signature_ttl", 300)),
                                  namespace=config.get("signature_namespace", "g2p"))
    except ValueError as exc:
        raise _misconfigured(point, f"cannot sign with signing_key / key_id: {exc}") from exc


def _post(point: Any, config: dict[str, Any], path: str, header: dict[str, Any],
          message: dict[str, Any]) -> dict[str, Any]:
    if not config.get("base_url"):
        raise _misconfigured(point, "base_url is not configured")
    token = secret_from(point, config.get("auth_token"), "auth_token")
    request = urllib.request.Request(
        config["base_url"] + path, data=_signed_body(point, config, header, message), method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    try:
        with open_url(point, request, float(config.get("timeout", 30))) as response:
            answer = dict(json.loads(response.read() or b"{}"))
    except urllib.error.HTTPError as exc:
        if exc.code >= 500:
            raise ProviderUnavailable(f"{path}: HTTP {exc.code}") from exc
        detail = exc.read()[:200].decode("utf-8", "replace")
        if exc.code in (401, 403):
            raise ServiceError(PayrollErrorCode.PROVIDER_UNAUTHORIZED, f"{path}: the receiver refused our credentials or "
                                                        f"signature (HTTP {exc.code}) {detail}") from exc
        raise ServiceError(PayrollErrorCode.PROVIDER_REFUSED, f"{path}: HTTP {exc.code}") from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        raise ProviderUnavailable(f"{path}: {exc}") from exc
    acknowledgement = answer.get("message") or {}
    error = acknowledgement.get("error") or {}
    if acknowledgement.get("ack_status") == "ERR" and error.get("code") in REFUSALS:
        raise ServiceError(PayrollErrorCode.PROVIDER_UNAUTHORIZED, f"{path}: the receiver refused our message: "
                                                    f"{error['code']}: {str(error.get('message') or '')[:200]}")
    return answer


def transaction_id(references: list[str]) -> str:
    return "TXN-" + hashlib.sha256("\n".join(references).encode()).hexdigest()[:24]


def send_batch(point: Any, instructions: list[Instruction]) -> list[Outcome]:
    config = dict(point.config or {})
    # Generation only routes recipients with an account or phone here; one removed since is
    # never sent with an empty financial address.
    unreachable = [Outcome(i.reference, FAILED, message="No account or phone number: not sent")
                   for i in instructions if not (i.account or i.phone).strip()]
    instructions = [i for i in instructions if (i.account or i.phone).strip()]
    if not instructions:
        return unreachable
    return unreachable + _disburse(point, config, instructions)


def _disburse(point: Any, config: dict[str, Any], instructions: list[Instruction]) -> list[Outcome]:
    now = datetime.now(UTC).isoformat(timespec="seconds")
    disbursements = [{
        "reference_id": i.reference, "payer_fa": config.get("payer_fa", ""),
        "payee_fa": i.account or i.phone, "payee_name": f"{i.first_name} {i.last_name}",
        "amount": str(i.amount) if i.minor_unit == 0 else i.major_amount(), "currency_code": i.currency,
        "scheduled_timestamp": now, "note": "social protection benefit", "locale": "eng",
    } for i in instructions]
    references = [i.reference for i in instructions]
    message = {"transaction_id": transaction_id(references), "disbursements": disbursements}
    try:
        answer = _post(point, config, "/disburse", _header(config, "disburse", len(disbursements)), message)
    except ServiceError as exc:
        if exc.code != PayrollErrorCode.PROVIDER_REFUSED:
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
                                                  _reason(item))
    return found


def _reason(item: Mapping[str, Any]) -> str:
    """The specification names the field ``status_reason_code``; some implementations send
    ``reason_code``."""
    return str(item.get("status_reason_code") or item.get("reason_code") or "")


def query_status(point: Any, references: list[str]) -> list[Outcome]:
    config = dict(point.config or {})
    message = {"transaction_id": str(uuid.uuid4()), "txnstatus_request": {
        "reference_id": str(uuid.uuid4()), "txn_type": "disburse",
        "attribute_type": "reference_id_list", "attribute_value": references}}
    answer = _post(point, config, "/disburse/txn/status", _header(config, "txn-status", len(references)), message)
    response = (answer.get("message") or {}).get("txnstatus_response")
    if not isinstance(response, dict):
        raise ProviderUnavailable("/disburse/txn/status: no txnstatus_response")
    known = _statuses(response.get("txn_status") or [])
    # The receiver lists every disbursement it holds among those asked about; one it does
    # not list never reached it.
    return [known.get(r, Outcome(r, NOT_FOUND)) for r in references]


def _verified(point: Any, config: dict[str, Any], body: bytes) -> tuple[dict[str, Any], Any]:
    """The header and message of a callback whose signature is the receiver's."""
    reference = config.get("provider_public_key")
    text = reference if isinstance(reference, str) else secret_from(point, reference, "provider_public_key")
    provider_id = config.get("provider_id") or config.get("receiver_id")
    if not provider_id or not config.get("provider_key_id"):
        raise _misconfigured(point, "provider_id (or receiver_id) and provider_key_id must be configured")
    try:
        key = g2p_signature.public_key(text)
        skew = int(config.get("max_clock_skew", 30))
    except ValueError as exc:
        raise _misconfigured(point, f"provider_public_key or max_clock_skew is not usable: {exc}") from exc
    try:
        verified = g2p_signature.verify(body, key=key, sender_id=provider_id, key_id=config["provider_key_id"],
                                        receiver_id=config.get("sender_id", ""), skew=skew)
    except g2p_signature.SignatureError as exc:
        raise CallbackRejected(f"{exc.code}: {exc.message}") from exc
    return verified.header, verified.message


def _hmac_checked(point: Any, config: dict[str, Any], body: bytes, headers: Mapping[str, str]) -> tuple[Any, Any]:
    key = secret_from(point, config.get("callback_key"), "callback_key")
    if not hmac.compare_digest(headers.get("Signature", ""), hmac.new(key.encode(), body, hashlib.sha256).hexdigest()):
        raise CallbackRejected("The on-disburse callback's signature does not match.")
    try:
        envelope = json.loads(body)
        return envelope["header"], envelope.get("message")
    except (ValueError, KeyError, TypeError) as exc:
        raise CallbackRejected(f"The callback is not a G2P Connect message: {exc!r}") from exc


def parse_callback(point: Any, body: bytes, headers: Mapping[str, str]) -> list[Outcome]:
    config = dict(point.config or {})
    mode = config.get("callback_auth", "signature")
    if mode == "signature":
        header, message = _verified(point, config, body)
    elif mode == "hmac":
        header, message = _hmac_checked(point, config, body, headers)
    else:
        raise _misconfigured(point, f"callback_auth is {mode!r}, not \"signature\" or \"hmac\"")
    try:
        if header["action"] != "on-disburse":
            raise CallbackRejected(f"Unexpected action {header['action']!r}.")
        return list(_statuses(message["disbursements_status"]).values())
    except (KeyError, TypeError) as exc:
        raise CallbackRejected(f"The callback is not a G2P Connect on-disburse message: {exc!r}") from exc
