from django.db import migrations

from core.history import CAPTURE_FUNCTIONS, DROP_FUNCTIONS, TrackHistory


class Migration(migrations.Migration):
    dependencies = [("core", "0001_initial")]

    operations = [
        migrations.RunSQL(CAPTURE_FUNCTIONS, DROP_FUNCTIONS),
        TrackHistory("core_role"),
    ]
