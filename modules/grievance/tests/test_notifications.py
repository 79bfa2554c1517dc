"""The outbox and the e-mail adaptor, against a real SMTP server (``smtp_server``)."""

from __future__ import annotations

from typing import Any

import pytest

from modules.grievance.models import Notification, NotificationStatus
from modules.grievance.notifications import deliver_due

pytestmark = pytest.mark.django_db


def test_an_assignment_is_mailed_to_the_handler(make_ticket: Any, places: Any, staff: Any, smtp_server: Any) -> None:
    officer = staff("Grievance officer", at="H111", email="agent@example.org")
    ticket = make_ticket(places, category="paiement", location="H111")
    assert deliver_due() == {"sent": 1, "failed": 0, "retried": 0}
    [mail] = smtp_server.messages
    assert mail["To"] == "agent@example.org" and ticket.code in mail["Subject"]
    assert Notification.objects.get(recipient=officer).status == NotificationStatus.SENT


def test_a_refusing_server_is_tried_again_later_then_given_up(
        make_ticket: Any, places: Any, staff: Any, smtp_server: Any, grievance_clock: Any, settings: Any) -> None:
    staff("Grievance officer", at="H111")
    make_ticket(places, category="paiement", location="H111")
    smtp_server.refuse = True
    assert deliver_due()["retried"] == 1
    note = Notification.objects.get()
    assert note.status == NotificationStatus.PENDING and note.attempts == 1 and "451" in note.last_error
    assert deliver_due() == {"sent": 0, "failed": 0, "retried": 0}  # not due again yet
    smtp_server.refuse = False
    grievance_clock.advance(seconds=61)
    assert deliver_due()["sent"] == 1 and len(smtp_server.messages) == 1
    # after the last attempt it is failed, not retried forever
    make_ticket(places, category="paiement", location="H111")
    smtp_server.refuse = True
    for _ in range(6):
        grievance_clock.advance(hours=2)
        deliver_due()
    assert Notification.objects.filter(status=NotificationStatus.FAILED, attempts=6).count() == 1


def test_without_a_server_the_mail_is_failed_at_once(make_ticket: Any, places: Any, staff: Any) -> None:
    staff("Grievance officer", at="H111")
    make_ticket(places, category="paiement", location="H111")
    assert deliver_due()["failed"] == 1
    assert "no e-mail server" in Notification.objects.get().last_error


def test_another_module_can_add_a_channel(make_ticket: Any, places: Any, staff: Any) -> None:
    from core.hooks import hookimpl
    from core.loader import get_registry, module_config
    from modules.grievance.configuration import config
    from modules.grievance.notifications import channels

    sent: list[Any] = []

    class Sms:
        @hookimpl
        def grievance_notification_channels(self) -> dict[str, Any]:
            return {"sms": sent.append}

        @hookimpl
        def grievance_notification_address(self, channel: str, user: Any) -> str | None:
            return "+25779000001" if channel == "sms" else None

    manager = get_registry().plugin_manager
    plugin = Sms()
    manager.register(plugin, name="sms-test")
    raw = module_config("grievance")
    shipped = raw.get("notifications")
    raw["notifications"] = {"channels": ["sms"]}
    config.cache_clear()
    channels.cache_clear()
    try:
        staff("Grievance officer", at="H111")
        make_ticket(places, category="paiement", location="H111")
        deliver_due()
    finally:
        manager.unregister(plugin)
        raw["notifications"] = shipped
        config.cache_clear()
        channels.cache_clear()
    assert [m.address for m in sent] == ["+25779000001"]
