"""A task starts ACCEPTED: it is routed to its task group when it is made, which is what
openIMIS calls a task a group has taken (its screens offer approve and reject only then).
Open tasks of earlier versions still RECEIVED move there too; their decisions are kept."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("core", "0017_row_counts_counted_by_caller"),
    ]

    operations = [
        migrations.AlterField(
            model_name="approvaltask",
            name="status",
            field=models.CharField(
                choices=[("RECEIVED", "received"), ("ACCEPTED", "accepted"), ("COMPLETED", "completed"),
                         ("FAILED", "failed"), ("ERROR", "error")],
                default="ACCEPTED", max_length=20),
        ),
        migrations.RunSQL(
            "UPDATE core_approvaltask SET status = 'ACCEPTED' WHERE status = 'RECEIVED'",
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
