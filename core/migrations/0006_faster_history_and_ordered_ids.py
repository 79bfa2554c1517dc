from django.db import migrations

from core.history import CAPTURE_FUNCTIONS
from core.ids import DROP_ORDERED_UUID_FUNCTION, ORDERED_UUID_FUNCTION


class Migration(migrations.Migration):
    """History triggers that compare rows instead of their jsonb renderings and read the actor
    once per statement; ``coremis_uuid7()`` for keys written in bulk."""

    dependencies = [("core", "0005_job_worker_name")]

    operations = [
        migrations.RunSQL(CAPTURE_FUNCTIONS, migrations.RunSQL.noop),
        migrations.RunSQL(ORDERED_UUID_FUNCTION, DROP_ORDERED_UUID_FUNCTION),
    ]
