"""Listing task groups became its own permission, ``core.task_group.search`` (openIMIS's
190001), split from ``core.task_group.manage``: every role that could list them keeps that."""

from typing import Any

from django.db import migrations

MANAGE, SEARCH = "core.task_group.manage", "core.task_group.search"


def grant_search(apps: Any, schema_editor: Any) -> None:
    Role = apps.get_model("core", "Role")
    for role in Role.objects.filter(permissions__contains=[MANAGE]).exclude(permissions__contains=[SEARCH]):
        role.permissions = [*role.permissions, SEARCH]
        role.save(update_fields=["permissions"])


class Migration(migrations.Migration):

    dependencies = [
        ("core", "0018_tasks_start_accepted"),
    ]

    operations = [
        # (backwards the extra code stays: a role holding a code nobody declares is harmless
        # and the newer version's roles are what an operator going back had chosen)
        migrations.RunPython(grant_search, migrations.RunPython.noop),
    ]
