"""The system actor: the user the platform's own work is done and recorded as
(``core.actors``). Inactive and without a usable password, so nobody logs in as it."""

from django.contrib.auth.hashers import make_password
from django.db import migrations

SYSTEM_ACTOR_ID = "00000000-0000-4000-8000-000000000001"


def create_system_actor(apps, schema_editor):
    User = apps.get_model("core", "User")
    User.objects.get_or_create(pk=SYSTEM_ACTOR_ID, defaults={
        "username": "system", "first_name": "coremis", "last_name": "(the system)",
        "is_active": False, "password": make_password(None)})


def remove_system_actor(apps, schema_editor):
    # Rows it wrote keep pointing at it (PROTECT): going back leaves it in place.
    pass


class Migration(migrations.Migration):

    dependencies = [
        ("core", "0010_edges_mutation_idempotency"),
    ]

    operations = [
        migrations.RunPython(create_system_actor, remove_system_actor),
    ]
