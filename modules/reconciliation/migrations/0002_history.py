"""Mismatch cases in core_history (who assigned, resolved, and what they wrote). The ledger is
append-only and the files are records of receipt; neither carries history."""

from django.db import migrations

from core.history import TrackHistory


class Migration(migrations.Migration):
    dependencies = [("reconciliation", "0001_initial")]

    operations = [TrackHistory("reconciliation_mismatch")]
