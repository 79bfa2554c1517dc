"""Create the demo administrator, demo roles and every enabled module's demo data (idempotent)."""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from core.hooks import hook
from core.models import Role, User
from core.permissions import registry


class Command(BaseCommand):
    help = "Create the demo admin (password from COREMIS_ADMIN_PASSWORD) and demo data."

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            self._admin()
            self._roles()
        hook().coremis_seed_demo(stdout=self.stdout)

    def _admin(self) -> None:
        wanted = os.environ.get("COREMIS_ADMIN_PASSWORD")
        admin = User.objects.filter(username="admin").first()
        if admin is not None:
            if wanted:
                admin.set_password(wanted)
                admin.save(update_fields=["password"])
                self.stdout.write("Demo administrator 'admin': password set from COREMIS_ADMIN_PASSWORD.")
            else:
                self.stdout.write("Demo administrator 'admin' exists (its password was printed when it was created).")
            return
        if not wanted:
            if not settings.EMBEDDED:
                raise CommandError(
                    "No COREMIS_ADMIN_PASSWORD is set. Outside the embedded demo there is no default "
                    "password: set COREMIS_ADMIN_PASSWORD to create the administrator."
                )
            wanted = secrets.token_urlsafe(12)
            shown = wanted
        else:
            shown = "(from COREMIS_ADMIN_PASSWORD)"
        User.objects.create_superuser("admin", "admin@example.org", wanted)
        self.stdout.write(self.style.SUCCESS(f"Demo administrator created: username 'admin', password {shown}"))
        if shown == wanted:
            self.stdout.write("This password is shown once; set COREMIS_ADMIN_PASSWORD to choose another.")

    def _roles(self) -> None:
        codes = sorted(registry())
        for name, selected in (
            ("Programme administrator", codes),
            ("Viewer", [c for c in codes if c.endswith((".search", ".view"))]),
        ):
            role = Role.objects.filter(name=name).first() or Role(name=name)
            if sorted(role.permissions) != sorted(selected):
                role.permissions = selected
                role.save()
