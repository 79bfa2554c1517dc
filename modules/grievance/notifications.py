"""Notifications through an outbox: :func:`queue` writes them in the caller's transaction,
:func:`deliver_due` (the ``grievance.deliver`` job, every minute and right after a commit that
queued some) sends what is due through the channel's adaptor and retries failures with a
doubling back-off up to ``notifications.max_attempts``.

Several workers may deliver at once: each takes its rows ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import timedelta
from functools import cache
from typing import Any

from django.db import transaction

from modules.grievance import clock
from modules.grievance.adaptors.email import Undeliverable
from modules.grievance.configuration import config
from modules.grievance.hookspecs import OutgoingMessage
from modules.grievance.models import Notification, NotificationStatus

log = logging.getLogger("coremis.grievance.notifications")
BATCH = 200


@cache
def channels() -> dict[str, Callable[[OutgoingMessage], None]]:
    from core.hooks import hook

    found: dict[str, Callable[[OutgoingMessage], None]] = {}
    for declared in hook().grievance_notification_channels():
        found.update(declared)
    return found


def address_of(channel: str, user: Any) -> str | None:
    from core.hooks import hook

    for answer in hook().grievance_notification_address(channel=channel, user=user):
        if answer:
            return str(answer)
    return None


def queue(event: str, recipients: Iterable[Any], subject: str, body: str, ticket_ids: Iterable[Any] = ()) -> int:
    """Write one outbox row per recipient and configured channel; delivery starts on commit."""
    ids = list(ticket_ids)
    return queue_many([(event, user, subject, body, ids) for user in recipients])


def queue_many(messages: Iterable[tuple[str, Any, str, str, list[Any]]]) -> int:
    """:func:`queue` for many ``(event, recipient, subject, body, ticket ids)`` at once (one insert)."""
    now = clock.now()
    rows = []
    for event, user, subject, body, ids in messages:
        if user is None:
            continue
        for channel in config().notification_channels:
            address = address_of(channel, user)
            failed = address is None
            rows.append(Notification(
                event=event, channel=channel, recipient_id=user.pk, address=address or "", subject=subject[:255],
                body=body, ticket_ids=list(ids), created_at=now, next_attempt_at=now,
                status=NotificationStatus.FAILED if failed else NotificationStatus.PENDING,
                last_error=f"{user} has no address for {channel}" if failed else ""))
    if rows:
        Notification.objects.bulk_create(rows, batch_size=1000)
        if any(r.status == NotificationStatus.PENDING for r in rows):
            _deliver_after_commit()
    return len(rows)


def _deliver_after_commit() -> None:
    """Start a delivery once the rows are committed (a rolled-back change sends nothing);
    deliveries started twice are harmless, each takes its rows ``FOR UPDATE SKIP LOCKED``."""

    def start() -> None:
        from core.actors import system_actor
        from core.jobs import start_job

        start_job("grievance.deliver", {}, system_actor())

    transaction.on_commit(start, robust=True)


def deliver_due(limit: int | None = None) -> dict[str, int]:
    """Send what is due; returns the counts of this run."""
    sent = failed = retried = 0
    cfg = config()
    while True:
        now = clock.now()
        with transaction.atomic():
            due = list(Notification.objects.select_for_update(skip_locked=True)
                       .filter(status=NotificationStatus.PENDING, next_attempt_at__lte=now)
                       .order_by("next_attempt_at", "id")[:BATCH])
            if not due:
                break
            for note in due:
                sender = channels().get(note.channel)
                note.attempts += 1
                try:
                    if sender is None:
                        raise Undeliverable(f"no module delivers the channel '{note.channel}'")
                    sender(OutgoingMessage(note.channel, note.address, note.subject, note.body, note.recipient_id))
                except Undeliverable as exc:
                    note.status, note.last_error = NotificationStatus.FAILED, str(exc)[:500]
                    failed += 1
                except Exception as exc:  # the channel's server is away or refused: try again later
                    note.last_error = (str(exc) or "the channel did not answer")[:500]
                    if note.attempts >= cfg.max_attempts:
                        note.status = NotificationStatus.FAILED
                        failed += 1
                    else:
                        note.next_attempt_at = now + timedelta(seconds=cfg.retry_seconds * 2 ** (note.attempts - 1))
                        retried += 1
                    log.warning("notification not delivered", extra={"notification": note.pk, "error": note.last_error})
                else:
                    note.status, note.sent_at, note.last_error = NotificationStatus.SENT, now, ""
                    sent += 1
            Notification.objects.bulk_update(due, ["status", "attempts", "next_attempt_at", "last_error", "sent_at"])
        if limit is not None and sent + failed + retried >= limit:
            break
    return {"sent": sent, "failed": failed, "retried": retried}
