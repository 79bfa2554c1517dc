"""Live beneficiaries per plan, kept by triggers (``core.row_counts``), so the exact
``totalCount`` of a plan's beneficiaries is one row, not a scan of every household enrolled."""

from django.db import migrations

from core.row_counts import CountRows


class Migration(migrations.Migration):
    dependencies = [("core", "0016_row_counts"), ("social_protection", "0003_permission_codes")]

    operations = [
        CountRows("social_protection_beneficiary", "benefit_plan_id"),
        CountRows("social_protection_groupbeneficiary", "benefit_plan_id"),
    ]
