"""What adaptors receive and answer, and how they read their configuration."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from core.errors import ServiceError

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
            if is_secret_name(str(key)) and not _is_reference(value):
                problems.append(f"{path}.{key} must be a reference like {{\"env\": \"NAME\"}}, not a value")
            elif not _is_reference(value):
                problems.extend(config_problems(value, f"{path}.{key}"))
    return problems


def _is_reference(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"env"} and isinstance(value["env"], str)


def secret(point: Any, key: str) -> str:
    """The value of a credential the point's configuration refers to."""
    reference = (point.config or {}).get(key)
    if not _is_reference(reference):
        raise ServiceError("ADAPTOR_MISCONFIGURED", f"Payment point {point.code}: {key} is not configured.")
    value = os.environ.get(reference["env"])
    if value is None:
        raise ServiceError("ADAPTOR_MISCONFIGURED",
                           f"Payment point {point.code}: environment variable {reference['env']} is not set.")
    return value
