"""The built-in e-mail channel: one message per notification, over SMTP.

The server is the deployer's (``modules_config.json`` → ``grievance.email``: ``host``,
``port``, ``starttls``, ``from_address``, ``username`` and ``password`` as an
``{"env": "COREMIS_GRIEVANCE_…"}`` reference). No API can change it.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from typing import Any

from modules.grievance.hookspecs import OutgoingMessage

NAME = "email"


class Undeliverable(Exception):
    """Trying again cannot help (no server configured, an address the server refuses)."""


def send(message: OutgoingMessage) -> None:
    from core.secrets import policy
    from modules.grievance.configuration import config

    settings: dict[str, Any] = config().email
    if not settings.get("host"):
        raise Undeliverable("no e-mail server is configured (grievance.email.host)")
    mail = EmailMessage()
    mail["From"] = settings.get("from_address") or "grievances@coremis.local"
    mail["To"] = message.address
    mail["Subject"] = message.subject
    mail.set_content(message.body)
    with smtplib.SMTP(settings["host"], int(settings.get("port", 25)), timeout=float(settings.get("timeout", 30))) as smtp:
        if settings.get("starttls"):
            smtp.starttls()
        if settings.get("username"):
            password = policy("grievance").resolve(settings.get("password"), "grievance e-mail server: password")
            smtp.login(settings["username"], password)
        try:
            smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            raise Undeliverable(f"the server refused {message.address}") from exc


def address(user: Any) -> str | None:
    return (getattr(user, "email", "") or "").strip() or None
