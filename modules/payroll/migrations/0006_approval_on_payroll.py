"""Approval becomes a fact of the payroll: unsent instructions are stored CREATED whatever their
payroll's status, and read as APPROVED through it. The rows an earlier approval rewrote to
APPROVED go back to CREATED (only those not yet sent: a few payrolls' worth at most)."""

from django.db import migrations

APPROVED_PAYROLLS = "('APPROVED', 'SENDING', 'SENT', 'PARTIALLY_PAID', 'PAID', 'RECONCILED')"


class Migration(migrations.Migration):

    dependencies = [
        ('payroll', '0005_generation_report'),
    ]

    operations = [
        migrations.RunSQL(
            "UPDATE payroll_benefitconsumption SET status = 'CREATED', version = version + 1 "
            "WHERE status = 'APPROVED'",
            "UPDATE payroll_benefitconsumption b SET status = 'APPROVED', version = b.version + 1 "
            f"FROM payroll_payroll p WHERE p.id = b.payroll_id AND b.status = 'CREATED' AND p.status IN {APPROVED_PAYROLLS}",
        ),
    ]
