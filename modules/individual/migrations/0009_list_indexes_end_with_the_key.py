"""The newest-first indexes end with the primary key, as every list ordering does: an import
commits thousands of people with one ``date_created``, and an index on it alone left all of
them to sort for a page of ten (the whole registry, after a national migration). Built
CONCURRENTLY, the new one before the old one goes, so the lists never lack one."""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ('individual', '0008_import_approval_tasks'),
    ]

    operations = [
        AddIndexConcurrently(
            model_name='individual',
            index=models.Index(fields=['date_created', 'id'], name='individual_created_id'),
        ),
        RemoveIndexConcurrently(model_name='individual', name='individual_date_created'),
        AddIndexConcurrently(
            model_name='group',
            index=models.Index(fields=['date_created', 'id'], name='individual_group_created_id'),
        ),
        RemoveIndexConcurrently(model_name='group', name='individual_group_date_created'),
    ]
