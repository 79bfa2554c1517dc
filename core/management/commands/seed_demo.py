"""Create the demo administrator, demo roles, a demo checker for every routed approval and
every enabled module's demo data (idempotent)."""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from core.actors import system_actor
from core.history import acting_as
from core.loader import get_registry
from core.models import Role, User
from core.permissions import TASK_RESOLVE, TASK_VIEW, registry


class Command(BaseCommand):
    help = ("Create the demo admin (password from COREMIS_ADMIN_PASSWORD), a demo checker "
            "(COREMIS_CHECKER_PASSWORD) and demo data.")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = system_actor()
        with transaction.atomic(), acting_as(actor, seed_demo=True):
            self._admin()
            self._roles()
            self._checkers(actor)
        # In dependency order (one module's demo builds on another's: plans enroll the registry).
        for implementation in get_registry().plugin_manager.hook.coremis_seed_demo.get_hookimpls():
            given = {"stdout": self.stdout, "actor": actor}
            implementation.function(**{name: given[name] for name in implementation.argnames if name in given})

    def _password(self, username: str, variable: str, what: str) -> tuple[str, str] | None:
        """The password of a demo user to create and how to show it, or ``None`` if the user
        exists (then a password set in ``variable`` is applied to it)."""
        wanted = os.environ.get(variable)
        existing = User.objects.filter(username=username).first()
        if existing is not None:
            if wanted:
                existing.set_password(wanted)
                existing.save(update_fields=["password"])
                self.stdout.write(f"{what} '{username}': password set from {variable}.")
            else:
                self.stdout.write(f"{what} '{username}' exists (its password was printed when it was created).")
            return None
        if wanted:
            return wanted, f"(from {variable})"
        if not settings.EMBEDDED:
            raise CommandError(
                f"No {variable} is set. Outside the embedded demo there is no default password: set {variable} "
                f"to create the {what.lower()}."
            )
        generated = secrets.token_urlsafe(12)
        return generated, generated

    def _created(self, what: str, username: str, password: str, shown: str, variable: str) -> None:
        self.stdout.write(self.style.SUCCESS(f"{what} created: username '{username}', password {shown}"))
        if shown == password:
            self.stdout.write(f"This password is shown once; set {variable} to choose another.")

    def _admin(self) -> None:
        chosen = self._password("admin", "COREMIS_ADMIN_PASSWORD", "Demo administrator")
        if chosen is not None:
            User.objects.create_superuser("admin", "admin@example.org", chosen[0])
            self._created("Demo administrator", "admin", *chosen, "COREMIS_ADMIN_PASSWORD")

    def _checkers(self, actor: User) -> None:
        """A task group for every action routed to one that does not exist yet (the shipped
        configuration routes ``payroll.approve``), with the demo checker in it: the demo's
        first payroll then waits for a second person, as a real deployment's does."""
        from core.approvals.actions import approval_actions
        from core.approvals.services import approval_routes, create_task_group

        missing: dict[str, list[str]] = {}
        for route in approval_routes():
            if route.task_group_code and route.task_group is None:
                missing.setdefault(route.task_group_code, []).append(route.action)
        if not missing:
            return
        declared = approval_actions()
        needed = {declared[a][1].permission for actions in missing.values() for a in actions} - {None}
        codes = sorted({TASK_VIEW, TASK_RESOLVE, "location.scope.national", *needed,
                        *(c for c in registry() if c.endswith((".search", ".view")))} & set(registry()))
        role = Role.objects.filter(name="Checker").first() or Role(name="Checker")
        if sorted(role.permissions) != codes:
            role.permissions = codes
            role.save()
        chosen = self._password("checker", "COREMIS_CHECKER_PASSWORD", "Demo checker")
        if chosen is not None:
            User.objects.create_user("checker", "checker@example.org", chosen[0])
            self._created("Demo checker", "checker", *chosen, "COREMIS_CHECKER_PASSWORD")
        checker = User.objects.get(username="checker")
        checker.roles.add(role)
        for code, actions in sorted(missing.items()):
            create_task_group(actor, code=code, name=f"Demo checkers of {', '.join(actions)}",
                              completion_policy="ANY", checker_ids=[checker.pk])
            self.stdout.write(f"Task group '{code}' created for {', '.join(actions)}; its checker is 'checker'.")

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
