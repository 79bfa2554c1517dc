"""Import approval tasks made by 0008 start ACCEPTED, as every task does since core/0018.

0008 makes the tasks of imports left waiting by an earlier version; on a database where it runs
after core/0018 they would be RECEIVED, which openIMIS's task screens grey out. The tasks keep
their decisions (none: they were waiting)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("individual", "0010_row_counts"),
        ("core", "0018_tasks_start_accepted"),
    ]

    operations = [
        migrations.RunSQL(
            "UPDATE core_approvaltask SET status = 'ACCEPTED' WHERE module = 'individual' AND status = 'RECEIVED'",
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
