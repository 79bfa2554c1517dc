"""Who acts when no person does: the scheduler's escalation runs, notification delivery, demo data.

A stand-in for the core's system actor (issue 11): it is an explicit object, never ``None``,
it is national (no location scope) and holds every permission, and history records its
changes with no user and ``{"system": <reason>}`` in their context.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SystemActor:
    reason: str
    pk: None = None
    is_authenticated: bool = True
    is_superuser: bool = True
    is_active: bool = True
    username: str = "system"
    email: str = ""

    def has_code(self, code: str) -> bool:
        return True

    def __str__(self) -> str:
        return f"system ({self.reason})"


def system_actor(reason: str) -> SystemActor:
    return SystemActor(reason)


def is_system(actor: object) -> bool:
    return isinstance(actor, SystemActor)
