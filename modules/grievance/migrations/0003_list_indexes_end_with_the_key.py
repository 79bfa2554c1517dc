"""The ticket list's indexes match its orderings: newest first is ``date_created DESC, id DESC``
(the primary key ends every list ordering), which ``(date_created, id)`` read backwards serves,
where ``(-date_created, id)`` left every page to an Incremental Sort over the whole table. The
frontend's status filter (an equality, ``status_Icontains: OPEN``) newest first reads
``(status, date_created, id)`` of live tickets, which also counts them. Built CONCURRENTLY,
each new one before the old one goes, so the list never lacks one."""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [("grievance", "0002_history")]

    operations = [
        AddIndexConcurrently(
            model_name="ticket",
            index=models.Index(fields=["date_created", "id"], name="grievance_ticket_created_id"),
        ),
        RemoveIndexConcurrently(model_name="ticket", name="grievance_ticket_created"),
        AddIndexConcurrently(
            model_name="ticket",
            index=models.Index(fields=["status", "date_created", "id"], name="grievance_ticket_status_date",
                               condition=models.Q(is_deleted=False)),
        ),
        RemoveIndexConcurrently(model_name="ticket", name="grievance_ticket_status"),
    ]
