"""Indexes behind the lists' newest-first ordering, built CONCURRENTLY: on a national registry
(a million people) a plain CREATE INDEX would block every write to the table while it runs."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ('individual', '0004_drop_duplicate_location_indexes'),
    ]

    operations = [
        AddIndexConcurrently(
            model_name='individual',
            index=models.Index(fields=['date_created'], name='individual_date_created'),
        ),
        AddIndexConcurrently(
            model_name='group',
            index=models.Index(fields=['date_created'], name='individual_group_date_created'),
        ),
    ]
