"""The place a payment was generated for (see ``BenefitConsumption.place``).

A nullable column without a default: PostgreSQL adds it to the catalogue without rewriting
the table or reading its rows, so the migration is instant on a national table. Payments made
before it keep NULL; the reconciliation report reads their recipient's place instead, found by
a partial index of those rows (built CONCURRENTLY; generated payments never enter it).
"""

import django.db.models.deletion
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ('location', '0003_permission_codes'),
        ('payroll', '0008_row_counts'),
    ]

    operations = [
        migrations.AddField(
            model_name='benefitconsumption',
            name='place',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, help_text='where the recipient lived when the payment was generated', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='location.location'),
        ),
        AddIndexConcurrently(
            model_name='benefitconsumption',
            index=models.Index(condition=models.Q(('place__isnull', True)), fields=['payroll'],
                               name='payroll_instruction_no_place'),
        ),
    ]
