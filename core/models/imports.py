"""The report of an import: what happened to each row, whichever module imported the file."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from core.models.operations import Job


class ImportReport(models.Model):
    """One per import job: its mode and its counts; its issues are :class:`ImportIssue` rows.

    ``counts`` holds at least ``total``, ``valid``, ``invalid`` and ``issues``; a module adds
    its own (``households_new``…).
    """

    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="import_report")
    module = models.CharField(max_length=50)
    mode = models.CharField(max_length=20)
    counts = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)


class ImportIssue(models.Model):
    """One line of a report: why a row was refused (``blocking``), or a note about it for a
    person to review (a likely duplicate). ``stage`` names the check that found it, so a
    module can redo one stage's checks (``row`` checks once; ``set`` checks again after an
    approval)."""

    id = models.BigAutoField(primary_key=True)
    report = models.ForeignKey(ImportReport, on_delete=models.CASCADE, related_name="issues", db_index=False)
    row = models.IntegerField(help_text="the row's number in the file; the header is row 1")
    field = models.CharField(max_length=100, blank=True, default="")
    code = models.CharField(max_length=60)
    message = models.TextField()
    raw_value = models.TextField(blank=True, default="", help_text="the cell as the file had it (capped)")
    blocking = models.BooleanField(default=True)
    stage = models.CharField(max_length=20, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["report", "row", "id"], name="core_importissue_row")]
