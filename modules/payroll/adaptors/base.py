"""What adaptors receive and answer, and how they read their configuration."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from core.errors import ServiceError
from core.secrets import policy, reference_name
from modules.payroll.errors import PayrollErrorCode

# What a provider may say about one instruction.
ACCEPTED = "SENT"        # received; the final status comes later (callback or polling)
PAID = "PAID"
FAILED = "FAILED"        # refused or failed for good
NOT_FOUND = "NOT_FOUND"  # the provider never received it: safe to send again
UNKNOWN = "UNKNOWN"      # no answer we can trust; ask again later

OUTCOME_STATUSES = (ACCEPTED, PAID, FAILED, NOT_FOUND, UNKNOWN)


@dataclass(frozen=True)
class Instruction:
    reference: str
    amount: int          # minor units
    currency: str
    minor_unit: int
    recipient_id: str
    first_name: str
    last_name: str
    phone: str
    account: str

    def major_amount(self) -> str:
        """The amount as the provider writes it: "1500" for BIF, "12.50" for USD."""
        if self.minor_unit == 0:
            return str(self.amount)
        whole, part = divmod(self.amount, 10 ** self.minor_unit)
        return f"{whole}.{part:0{self.minor_unit}d}"


@dataclass(frozen=True)
class Outcome:
    reference: str
    status: str
    provider_transaction_id: str = ""
    message: str = ""


class ProviderUnavailable(Exception):
    """The provider's answer is unknown (timeout, 5xx, connection reset)."""


class CallbackRejected(ServiceError):
    def __init__(self, message: str) -> None:
        super().__init__("CALLBACK_REJECTED", message)


SECRET_WORDS = frozenset({"secret", "password", "token", "key", "credential", "pin"})


def is_secret_name(key: str) -> bool:
    """``client_secret``, ``api_key``, ``callback_key`` are secrets; ``token_path`` is not, nor
    is ``provider_public_key`` (a public key is published to be read)."""
    name = key.lower().replace("-", "_")
    return not name.endswith("public_key") and name.rsplit("_", 1)[-1] in SECRET_WORDS


def config_problems(config: Any, path: str = "config") -> list[str]:
    """Secrets must be ``{"env": "NAME"}`` references: a literal secret in the database would
    be in backups, history and exports."""
    problems: list[str] = []
    if isinstance(config, dict):
        for key, value in config.items():
            if is_secret_name(str(key)) and reference_name(value) is None:
                problems.append(f"{path}.{key} must be a reference like {{\"env\": \"NAME\"}}, not a value")
            elif reference_name(value) is None:
                problems.extend(config_problems(value, f"{path}.{key}"))
    return problems


def _references(config: Any, path: str = "config") -> Iterator[tuple[str, Any]]:
    if isinstance(config, dict):
        if reference_name(config) is not None:
            yield path, config
            return
        for key, value in config.items():
            yield from _references(value, f"{path}.{key}")
    elif isinstance(config, list):
        for index, value in enumerate(config):
            yield from _references(value, f"{path}[{index}]")


def reference_problems(config: Any) -> list[str]:
    """Every ``{"env": …}`` reference anywhere in ``config`` that names a variable outside the
    module's ``secret_env_prefix`` (or one of the platform's own)."""
    rules = policy("payroll")
    return [f"{path} {problem}" for path, value in _references(config)
            if (problem := rules.reference_problem(value)) is not None]


def outbound_urls(config: Any) -> list[tuple[str, str]]:
    """The URLs a point's adaptor will call, as far as its configuration says: ``base_url`` and
    any other ``*_url`` setting, and ``base_url`` joined with every ``*_path`` setting (a path is
    appended as it is, so ``"@evil.example/x"`` would change the host)."""
    if not isinstance(config, dict):
        return []
    found = [(str(key), value) for key, value in config.items()
             if str(key).lower().endswith("url") and isinstance(value, str)]
    base = config.get("base_url")
    if isinstance(base, str):
        found += [(str(key), base + value) for key, value in config.items()
                  if str(key).lower().endswith("_path") and isinstance(value, str)]
    return found


def url_problems(config: Any) -> list[str]:
    rules = policy("payroll")
    return [f"config.{key}: {problem}" for key, url in outbound_urls(config)
            if (problem := rules.url_problem(url)) is not None]


def secret_from(point: Any, reference: Any, label: str) -> str:
    """The value of a credential a point's configuration refers to, if the reference is one the
    payroll module's ``secret_env_prefix`` allows (checked again here: a row written before the
    rule, or by hand, is not trusted)."""
    if reference is None:
        raise ServiceError(PayrollErrorCode.ADAPTOR_MISCONFIGURED, f"Payment point {point.code}: {label} is not configured.")
    return policy("payroll").resolve(reference, f"Payment point {point.code}: {label}")


def secret(point: Any, key: str) -> str:
    """The value of the credential ``key`` of the point's configuration."""
    return secret_from(point, (point.config or {}).get(key), key)


def open_url(point: Any, request: urllib.request.Request, timeout: float) -> Any:
    """Send ``request`` if its URL is on the payroll module's ``outbound_urls`` allow-list
    (checked at every call, whatever was checked when the point was saved), without
    following redirects."""
    return policy("payroll").urlopen(request, f"Payment point {point.code}", timeout)
