"""What a bulk import keeps beyond its job row: where it stands, and which batches are written.
Its report (every refused row, and the rows to review) is the core's ``ImportReport``.

The rows themselves are staged in per-job tables (see ``modules.individual.bulk_import``),
created and dropped by the import, so a million staged rows never need a ``DELETE``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from core.models import Job, Upload


class ImportRun(models.Model):
    """One ``individual.import`` job's progress through its phases.

    ``phase`` is what a re-run of the job (after a crash, or after approval) continues from;
    it changes in the same transaction as the work it records.
    """

    RECEIVED = "received"  # nothing done yet, or validation was interrupted: (re)validate
    VALIDATED = "validated"  # staged and checked; commit next
    WAITING = "waiting"  # staged and checked; a second user must approve
    APPROVED = "approved"  # approved; check against the registry again, then commit
    FINISHED = "finished"  # every valid row is in the registry; staging is gone
    REFUSED = "refused"  # nothing written: invalid rows in all_or_nothing mode, or none valid
    REJECTED = "rejected"  # the approver said no
    PHASES = [(p, p) for p in (RECEIVED, VALIDATED, WAITING, APPROVED, FINISHED, REFUSED, REJECTED)]

    job = models.OneToOneField(Job, primary_key=True, on_delete=models.CASCADE, related_name="+")
    upload = models.ForeignKey(Upload, on_delete=models.PROTECT, related_name="+")
    sha256 = models.CharField(max_length=64, db_index=True)
    mode = models.CharField(max_length=20)
    needs_approval = models.BooleanField(default=False)
    phase = models.CharField(max_length=20, choices=PHASES, default=RECEIVED)
    counts = models.JSONField(default=dict)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)


class ImportBatch(models.Model):
    """A batch of an import that is in the registry: written in the same transaction as its
    rows, so a re-run after a crash knows exactly what is left to write. ``announced`` is
    set once ``individual_after_created`` has been told about the batch."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="+")
    batch = models.IntegerField()
    individuals = models.IntegerField(default=0)
    households = models.IntegerField(default=0)
    memberships = models.IntegerField(default=0)
    committed_at = models.DateTimeField(default=timezone.now)
    announced = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "batch"], name="individual_importbatch_once")]
