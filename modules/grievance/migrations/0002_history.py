"""Every change of tickets, their contacts, comments, attachments and tasks in core_history.

The counter, the outbox and the access log are not business records and carry no history."""

from django.db import migrations

from core.history import TrackHistory


class Migration(migrations.Migration):
    dependencies = [("grievance", "0001_initial")]

    operations = [
        TrackHistory("grievance_ticket"),
        TrackHistory("grievance_contact"),
        TrackHistory("grievance_comment"),
        TrackHistory("grievance_attachment"),
        TrackHistory("grievance_tickettask"),
    ]
