"""Test doubles and fixtures of the grievance module, loaded as a pytest plugin
(``-p modules.grievance.testing``): a clock moved by hand, a real SMTP server that keeps what
it receives, a small location tree with handlers, and helpers to record tickets."""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from typing import Any

import pytest


class ManualClock:
    """A clock that stands still until the test moves it."""

    def __init__(self, start: datetime.datetime) -> None:
        self.current = start

    def now(self) -> datetime.datetime:
        return self.current

    def advance(self, **delta: float) -> datetime.datetime:
        self.current += datetime.timedelta(**delta)
        return self.current


@pytest.fixture
def grievance_clock() -> Iterator[ManualClock]:
    from django.utils import timezone

    from modules.grievance import clock

    with clock.use(ManualClock(timezone.now().replace(microsecond=0))) as manual:
        yield manual  # type: ignore[misc]


@dataclass
class SmtpServer:
    """A real SMTP server on 127.0.0.1 (aiosmtpd) keeping every message it accepts; set
    ``refuse`` to answer 451 (try later) to every message."""

    host: str = "127.0.0.1"
    port: int = 0
    messages: list[Any] = field(default_factory=list)
    refuse: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse:
            return "451 4.3.0 try again later"
        with self.lock:
            self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """The SMTP server, and the grievance e-mail configuration pointing at it."""
    import socket

    from aiosmtpd.controller import Controller

    from core.loader import module_config
    from modules.grievance.configuration import config

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = SmtpServer(port=port)
    controller = Controller(server, hostname="127.0.0.1", port=port)
    controller.start()
    raw = module_config("grievance")
    shipped = raw.get("email")
    raw["email"] = {"host": "127.0.0.1", "port": port, "from_address": "plaintes@test", "timeout": 5}
    config.cache_clear()
    try:
        yield server
    finally:
        controller.stop()
        raw["email"] = shipped
        config.cache_clear()


HANDLER_CODES = ["grievance.ticket.search", "grievance.ticket.create", "grievance.ticket.update",
                 "grievance.ticket.resolve", "grievance.comment.create", "grievance.attachment.create",
                 "grievance.task.act", "grievance.ticket.export", "individual.registry.search"]


@pytest.fixture
def handler_codes() -> list[str]:
    """The permissions the ``staff`` fixture gives a handler."""
    return list(HANDLER_CODES)


@pytest.fixture
def places(admin_user: Any) -> dict[str, Any]:
    """P1 > C11 > H111, H112; P1 > C12 > H121; P2 > C21 > H211 (codes as keys)."""
    from modules.location.services import create_location

    made: dict[str, Any] = {}
    for code, kind, parent in [("P1", "Province", None), ("P2", "Province", None), ("C11", "Commune", "P1"),
                               ("C12", "Commune", "P1"), ("C21", "Commune", "P2"), ("H111", "Colline", "C11"),
                               ("H112", "Colline", "C11"), ("H121", "Colline", "C12"), ("H211", "Colline", "C21")]:
        made[code] = create_location(admin_user, code=code, name=code, type=kind,
                                     parent_id=made[parent].pk if parent else None)
    return made


@pytest.fixture
def staff(db: Any, places: dict[str, Any]) -> Callable[..., Any]:
    """``staff("Grievance officer", at="H111")``: an active user holding that role (and the
    handler permissions), scoped to that place (or national with ``at=None``)."""
    from core.models import Role, User
    from modules.location.models import UserLocation

    counter = iter(range(10_000))

    def make(*roles: str, at: str | None = None, codes: list[str] | None = None, email: str = "") -> Any:
        name = f"staff-{next(counter)}-{(roles[0] if roles else 'none').split()[0].lower()}"
        user = User.objects.create_user(name, email or f"{name}@example.org", "correct-horse-battery")
        for role_name in roles:
            role = Role.objects.filter(name=role_name).first() or Role.objects.create(name=role_name, permissions=[])
            user.roles.add(role)
        user.roles.add(Role.objects.create(name=f"perms-{name}", permissions=list(codes or HANDLER_CODES) + (
            [] if at else ["location.scope.national"])))
        if at:
            UserLocation.objects.create(user=user, location=places[at])
        return user

    return make


@pytest.fixture
def make_ticket(db: Any, admin_user: Any) -> Callable[..., Any]:
    """``make_ticket(category="paiement", location="H111", actor=user)``: a ticket through the service."""
    from modules.grievance.services.tickets import create_ticket

    def make(places: dict[str, Any] | None = None, *, actor: Any = None, location: str | None = None,
             **data: Any) -> Any:
        data.setdefault("title", "Paiement non reçu")
        data.setdefault("category", "paiement|non_recu")
        if location is not None and places is not None:
            data["location_id"] = places[location].pk
        return create_ticket(actor or admin_user, **data)

    return make


def mutate(client: Any, name: str, fields: str, payload: str) -> dict[str, Any]:
    """Send ``name`` with an input written as the frontend writes it (GraphQL literal text)."""
    result = client.execute(f"mutation {{ {name}(input: {{ {payload} }}) {{ clientMutationId internalId "
                            f"errors {{ field code message }} {fields} }} }}")
    assert not result.get("errors"), result
    return result["data"][name]


@pytest.fixture
def grievance_mutate() -> Callable[..., dict[str, Any]]:
    return mutate
