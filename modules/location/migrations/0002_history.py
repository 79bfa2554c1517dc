from django.db import migrations

from core.history import TrackHistory


class Migration(migrations.Migration):
    dependencies = [("location", "0001_initial"), ("core", "0002_history_triggers")]

    operations = [TrackHistory("location_location")]
