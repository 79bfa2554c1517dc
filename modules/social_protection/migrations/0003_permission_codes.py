"""Permission codes in the ``<module>.<noun>.<verb>`` style: roles granting the old codes keep
their rights. The job kinds and approval actions (``social_protection.enroll``…) keep their
names; the permission to enroll is no longer the same string."""

from django.db import migrations

from core.migration_operations import RenameCodes


class Migration(migrations.Migration):
    dependencies = [("social_protection", "0002_history"), ("core", "0011_conventions_system_actor")]

    operations = [
        RenameCodes(permissions={
            "social_protection.plan_search": "social_protection.plan.search",
            "social_protection.plan_create": "social_protection.plan.create",
            "social_protection.plan_update": "social_protection.plan.update",
            "social_protection.plan_delete": "social_protection.plan.delete",
            "social_protection.plan_close": "social_protection.plan.close",
            "social_protection.enroll": "social_protection.beneficiary.enroll",
            "social_protection.beneficiary_search": "social_protection.beneficiary.search",
            "social_protection.beneficiary_update": "social_protection.beneficiary.update",
        }),
    ]
