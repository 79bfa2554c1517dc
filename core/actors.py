"""Who acts: a person (a :class:`core.models.User`), or the platform itself.

The platform's own work (scheduled jobs, imports it runs, demo data, provider callbacks) is
done by the *system actor*: a user row that cannot log in, holds every permission and is
national in scope, so services check it like anyone else and history names it. ``None`` is
no actor: a service refuses it (:class:`MissingActor`) rather than read it as "everything
allowed".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.models.auth import SYSTEM_ACTOR_ID

if TYPE_CHECKING:
    from core.models import User

__all__ = ["SYSTEM_ACTOR_ID", "SYSTEM_USERNAME", "MissingActor", "checked_actor", "is_system", "system_actor"]

SYSTEM_USERNAME = "system"


class MissingActor(TypeError):
    """A service was called without an actor: a bug in the caller, not a user's mistake."""

    def __init__(self) -> None:
        super().__init__("a core service was called with no actor (None); pass the acting user, or "
                         "core.actors.system_actor() for work the platform does itself")


def system_actor() -> User:
    """The system actor (made by migration ``0011_conventions_system_actor``; made again here
    if a test flushed the tables)."""
    from core.models import User

    actor, _ = User.objects.get_or_create(pk=SYSTEM_ACTOR_ID, defaults=_system_fields())
    return actor


def _system_fields() -> dict[str, Any]:
    from django.contrib.auth.hashers import make_password

    # Inactive and without a usable password: no log-in, token or password reset reaches it.
    return {"username": SYSTEM_USERNAME, "first_name": "coremis", "last_name": "(the system)",
            "is_active": False, "password": make_password(None)}


def is_system(user: Any) -> bool:
    return getattr(user, "pk", None) == SYSTEM_ACTOR_ID


def checked_actor(actor: Any) -> Any:
    """``actor``, refusing ``None``: "the system" is ``system_actor()``, never an absent user."""
    if actor is None:
        raise MissingActor()
    return actor
