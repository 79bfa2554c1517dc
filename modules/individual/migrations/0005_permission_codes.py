"""Permission codes in the ``<module>.<noun>.<verb>`` style: roles granting the old codes keep
their rights. The job kinds and the upload purpose ``individual.import`` / ``individual.export``
are not permissions and keep their names."""

from django.db import migrations

from core.migration_operations import RenameCodes


class Migration(migrations.Migration):
    dependencies = [("individual", "0004_drop_duplicate_location_indexes"), ("core", "0011_conventions_system_actor")]

    operations = [
        RenameCodes(permissions={
            "individual.search": "individual.registry.search",
            "individual.create": "individual.registry.create",
            "individual.update": "individual.registry.update",
            "individual.delete": "individual.registry.delete",
            "individual.export": "individual.registry.export",
            "individual.import": "individual.import.start",
            "individual.import_approve": "individual.import.approve",
        }),
    ]
