"""Change history, written by database triggers so bulk paths cannot skip it."""

from __future__ import annotations

from django.db import models


class HistoryEntry(models.Model):
    """One row version: the table, the row, the operation and the row's data after it.

    Written only by the ``coremis_history_*`` trigger functions (see ``core.history``); the
    acting user and context come from transaction-local settings the services set.
    """

    OPERATIONS = (("I", "insert"), ("U", "update"), ("D", "delete"))

    id = models.BigAutoField(primary_key=True)
    table_name = models.CharField(max_length=100)
    row_id = models.UUIDField()
    operation = models.CharField(max_length=1, choices=OPERATIONS)
    data = models.JSONField()
    changed_at = models.DateTimeField()
    user_id = models.UUIDField(null=True)
    context = models.JSONField(null=True)

    class Meta:
        db_table = "core_history"
        indexes = [models.Index(fields=["table_name", "row_id", "id"], name="core_history_row")]
