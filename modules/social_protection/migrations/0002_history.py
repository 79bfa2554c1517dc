from django.db import migrations

from core.history import TrackHistory


class Migration(migrations.Migration):
    dependencies = [("social_protection", "0001_initial"), ("core", "0002_history_triggers")]

    operations = [
        TrackHistory("social_protection_benefitplan"),
        TrackHistory("social_protection_beneficiary"),
        TrackHistory("social_protection_groupbeneficiary"),
    ]
