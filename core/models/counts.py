"""Live rows per key of a counted column, kept by database triggers (see ``core.row_counts``)."""

from __future__ import annotations

from django.db import models


class RowCount(models.Model):
    """How many live rows (``is_deleted = false``) of ``table_name`` have ``key`` in ``column_name``.

    Written by the ``coremis_row_count_changed`` trigger function, one upsert per key and
    statement (or, for a bulk path that counts its own statements, one upsert per transaction:
    ``core.row_counts.counted_by_caller``), so a list's exact ``totalCount`` over a location scope, a plan or a payroll is a
    sum over a few of these rows instead of a scan of every matching row.
    """

    id = models.BigAutoField(primary_key=True)
    table_name = models.CharField(max_length=100)
    column_name = models.CharField(max_length=100)
    key = models.UUIDField()
    live = models.BigIntegerField()

    class Meta:
        db_table = "core_row_count"
        constraints = [
            models.UniqueConstraint(fields=["table_name", "column_name", "key"], name="core_row_count_key"),
        ]
