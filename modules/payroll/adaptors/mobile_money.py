"""A configurable mobile-money HTTP adaptor.

Providers of this family share a shape and differ in details, which the payment point's
``config`` sets::

    {
      "base_url": "https://api.provider.example",   # on the outbound_urls allow-list
      "client_id": "coremis",
      "client_secret": {"env": "COREMIS_PSP_MM_CLIENT_SECRET"},   # under secret_env_prefix
      "token_path": "/oauth/token", "pay_path": "/payments", "status_path": "/payments/status",
      "batch_size": 100,
      "serial": true,                      # one request at a time per credential
      "timeout": 10,                       # seconds
      "signature": {"algorithm": "hmac-sha256" | "md5", "key": {"env": "COREMIS_PSP_MM_SIGNING_KEY"},
                    "fields": ["reference", "amount", "msisdn"]},
      "callback_key": {"env": "COREMIS_PSP_MM_CALLBACK_KEY"}   # HMAC-SHA256 of callback bodies, X-Signature
    }

Protocol: a bearer token from ``token_path`` (``{"access_token", "expires_in"}``), refreshed
shortly before it expires and whenever the provider answers 401 (a 401 means the request was
not processed, so resending the same references is safe). ``pay_path`` takes
``{"payments": [{"reference", "amount", "currency", "msisdn", "signature"}]}`` and answers
per payment ``ACCEPTED``, ``DUPLICATE`` (already received: same outcome as ACCEPTED) or
``REJECTED``; the final ``SUCCESS``/``FAILED`` comes later by callback or from
``status_path``. Amounts are integers when the currency has no minor unit (BIF) and decimal
strings otherwise ("12.50").
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from core.errors import ServiceError
from modules.payroll.adaptors.base import (
    ACCEPTED,
    FAILED,
    NOT_FOUND,
    PAID,
    UNKNOWN,
    CallbackRejected,
    Instruction,
    Outcome,
    ProviderUnavailable,
    open_url,
    secret,
    secret_from,
)
from modules.payroll.errors import PayrollErrorCode

NAME = "mobile_money"
REFRESH_MARGIN = 5.0  # seconds before expiry a token is renewed
FINAL = {"SUCCESS": PAID, "FAILED": FAILED, "PENDING": ACCEPTED, "NOT_FOUND": NOT_FOUND}

_tokens: dict[tuple[str, str], tuple[str, float]] = {}
_tokens_lock = threading.Lock()


class _Unauthorized(Exception):
    pass


def _settings(point: Any) -> dict[str, Any]:
    config = dict(point.config or {})
    if not config.get("base_url"):
        raise ServiceError(PayrollErrorCode.ADAPTOR_MISCONFIGURED, f"Payment point {point.code}: base_url is not configured.")
    return config


def _post(point: Any, url: str, payload: Any, timeout: float, token: str | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), headers=headers, method="POST")
    try:
        with open_url(point, request, timeout) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            raise _Unauthorized() from exc
        if exc.code >= 500:
            raise ProviderUnavailable(f"{url}: HTTP {exc.code}") from exc
        raise ServiceError(PayrollErrorCode.PROVIDER_REFUSED, f"{url}: HTTP {exc.code} {exc.read()[:200]!r}") from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        # The request may or may not have reached the provider.
        raise ProviderUnavailable(f"{url}: {exc}") from exc


def _token(point: Any, config: dict[str, Any], *, renew: bool = False) -> str:
    key = (config["base_url"], str(config.get("client_id", "")))
    with _tokens_lock:
        cached = _tokens.get(key)
        if cached and not renew and cached[1] - REFRESH_MARGIN > time.monotonic():
            return cached[0]
    answer = _post(point, config["base_url"] + config.get("token_path", "/oauth/token"),
                   {"client_id": config.get("client_id", ""), "client_secret": secret(point, "client_secret")},
                   float(config.get("timeout", 10)))
    token = str(answer["access_token"])
    with _tokens_lock:
        _tokens[key] = (token, time.monotonic() + float(answer.get("expires_in", 60)))
    return token


@contextmanager
def _one_at_a_time(config: dict[str, Any]) -> Iterator[None]:
    """Providers that allow one request at a time per credential get exactly that, across
    every worker process, through a Redis lock named after the credential."""
    if not config.get("serial"):
        yield
        return
    import django_rq

    name = f"coremis:payroll:mm:{config['base_url']}:{config.get('client_id', '')}"
    timeout = float(config.get("timeout", 10))
    with django_rq.get_connection("default").lock(name, timeout=timeout * 3 + 5, blocking_timeout=timeout * 6):
        yield


def _call(point: Any, config: dict[str, Any], path: str, payload: Any) -> Any:
    """POST with a valid token; one retry with a fresh token after a 401."""
    timeout = float(config.get("timeout", 10))
    with _one_at_a_time(config):
        try:
            return _post(point, config["base_url"] + path, payload, timeout, _token(point, config))
        except _Unauthorized:
            pass
        try:
            return _post(point, config["base_url"] + path, payload, timeout, _token(point, config, renew=True))
        except _Unauthorized as exc:
            raise ServiceError(PayrollErrorCode.PROVIDER_AUTH_FAILED, f"Payment point {point.code}: credentials refused.") from exc


def amount_field(instruction: Instruction) -> int | str:
    return instruction.amount if instruction.minor_unit == 0 else instruction.major_amount()


def sign(point: Any, config: dict[str, Any], fields: Mapping[str, Any]) -> str:
    spec = config.get("signature")
    if not spec:
        return ""
    message = "|".join(str(fields[name]) for name in spec.get("fields", ["reference", "amount", "msisdn"]))
    key = secret_from(point, spec["key"], "signature.key")
    if spec.get("algorithm", "hmac-sha256") == "md5":
        # Some providers still demand md5(key + fields); it is their protocol, not our choice.
        return hashlib.md5((key + message).encode(), usedforsecurity=False).hexdigest()
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


def send_batch(point: Any, instructions: list[Instruction]) -> list[Outcome]:
    config = _settings(point)
    # Generation only routes recipients with a phone number here; one removed since is never
    # sent as an empty msisdn (a provider may pay it to whoever it resolves it to).
    unreachable = [Outcome(i.reference, FAILED, message="No phone number: not sent") for i in instructions
                   if not i.phone.strip()]
    instructions = [i for i in instructions if i.phone.strip()]
    if not instructions:
        return unreachable
    payments = []
    for instruction in instructions:
        payment = {"reference": instruction.reference, "amount": amount_field(instruction),
                   "currency": instruction.currency, "msisdn": instruction.phone}
        payment["signature"] = sign(point, config, payment)
        payments.append(payment)
    try:
        answer = _call(point, config, config.get("pay_path", "/payments"), {"payments": payments})
    except ServiceError as exc:
        if exc.code != PayrollErrorCode.PROVIDER_REFUSED:
            raise
        # The provider refused the request as a whole: nothing was paid.
        return unreachable + [Outcome(i.reference, FAILED, message=exc.message[:255]) for i in instructions]
    by_reference = {r.get("reference"): r for r in (answer or {}).get("results", [])}
    outcomes = unreachable
    for instruction in instructions:
        result = by_reference.get(instruction.reference)
        if result is None:
            outcomes.append(Outcome(instruction.reference, UNKNOWN))
        elif result.get("status") in ("ACCEPTED", "DUPLICATE"):
            outcomes.append(Outcome(instruction.reference, ACCEPTED, str(result.get("transaction_id") or "")))
        else:
            outcomes.append(Outcome(instruction.reference, FAILED, str(result.get("transaction_id") or ""),
                                    str(result.get("message") or result.get("status"))))
    return outcomes


def query_status(point: Any, references: list[str]) -> list[Outcome]:
    config = _settings(point)
    answer = _call(point, config, config.get("status_path", "/payments/status"), {"references": references})
    by_reference = {r.get("reference"): r for r in (answer or {}).get("results", [])}
    outcomes = []
    for reference in references:
        result = by_reference.get(reference) or {}
        status = FINAL.get(str(result.get("status")), UNKNOWN)
        outcomes.append(Outcome(reference, status, str(result.get("transaction_id") or ""),
                                str(result.get("message") or "")))
    return outcomes


def parse_callback(point: Any, body: bytes, headers: Mapping[str, str]) -> list[Outcome]:
    config = _settings(point)
    key = secret_from(point, config.get("callback_key"), "callback_key")
    expected = hmac.new(key.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(headers.get("X-Signature", ""), expected):
        raise CallbackRejected("The callback's signature does not match.")
    try:
        data = json.loads(body)
        status = FINAL[data["status"]]
        return [Outcome(str(data["reference"]), status, str(data.get("transaction_id") or ""),
                        str(data.get("message") or ""))]
    except (ValueError, KeyError, TypeError) as exc:
        raise CallbackRejected(f"The callback is not understood: {exc!r}") from exc
