"""Live payments per payroll, kept by triggers (``core.row_counts``), so the exact ``totalCount``
of a payroll's payments is one row, not a scan of its 315,000 instructions."""

from django.db import migrations

from core.row_counts import CountRows


class Migration(migrations.Migration):
    dependencies = [("core", "0016_row_counts"), ("payroll", "0007_permission_codes")]

    operations = [CountRows("payroll_benefitconsumption", "payroll_id")]
