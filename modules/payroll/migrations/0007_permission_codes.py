"""Permission codes in the ``<module>.<noun>.<verb>`` style: roles granting the old codes keep
their rights. The approval actions ``payroll.approve`` / ``payroll.reconcile`` (their routes,
their open tasks, the ``approvals`` configuration) and the job kinds keep their names; the
permission to approve is no longer the same string as the action."""

from django.db import migrations

from core.migration_operations import RenameCodes


class Migration(migrations.Migration):
    dependencies = [("payroll", "0006_approval_on_payroll"), ("core", "0011_conventions_system_actor")]

    operations = [
        RenameCodes(permissions={
            "payroll.search": "payroll.payroll.search",
            "payroll.configure": "payroll.configuration.manage",
            "payroll.configure_providers": "payroll.provider.manage",
            "payroll.create": "payroll.payroll.create",
            "payroll.approve": "payroll.payroll.approve",
            "payroll.pay": "payroll.payroll.pay",
            "payroll.close": "payroll.payroll.close",
            "payroll.delete": "payroll.payroll.delete",
        }),
    ]
