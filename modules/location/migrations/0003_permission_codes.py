"""Permission codes in the ``<module>.<noun>.<verb>`` style: roles granting the old codes keep
their rights. The scope codes were already in that style; the job kind and the upload purpose
``location.import`` are not permissions and keep their name."""

from django.db import migrations

from core.migration_operations import RenameCodes


class Migration(migrations.Migration):
    dependencies = [("location", "0002_history"), ("core", "0011_conventions_system_actor")]

    operations = [
        RenameCodes(permissions={
            "location.search": "location.location.search",
            "location.create": "location.location.create",
            "location.update": "location.location.update",
            "location.delete": "location.location.delete",
            "location.import": "location.location.import",
        }),
    ]
