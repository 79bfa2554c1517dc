"""The provider-report ledger, the files it was read from, and mismatches with their history.

A payment's reconciliation state is not stored: it follows from the payment's status and its
open mismatches (see ``services/states.py``), so it can never disagree with either."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.models import CoreModel


class Source(models.TextChoices):
    CALLBACK = "CALLBACK"          # payroll's callback route
    POLL = "POLL"                  # payroll's status polls
    RESULT_FILE = "RESULT_FILE"    # a provider's CSV/XLSX result file, mapped per point
    OPENIMIS_CSV = "OPENIMIS_CSV"  # the openIMIS reconciliation CSV (Code, Paid, Receipt)
    CAMT053 = "CAMT053"            # an ISO 20022 bank-to-customer statement
    MT940 = "MT940"                # a SWIFT customer statement
    PULL_API = "PULL_API"          # acknowledgements and consolidations a provider posts


class ReportStatus(models.TextChoices):
    ACCEPTED = "ACCEPTED"  # received, no final word yet
    PAID = "PAID"
    FAILED = "FAILED"


class FileStatus(models.TextChoices):
    """The openIMIS ``CsvReconciliationUpload`` statuses."""

    TRIGGERED = "TRIGGERED"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCESS = "SUCCESS"
    PARTIAL_SUCCESS = "PARTIAL_SUCCESS"
    FAIL = "FAIL"


class ReportFile(models.Model):
    """One file a provider (or an officer) handed in; the openIMIS ``csvReconciliationUpload``.
    ``error`` maps row numbers (as text) to what was wrong with them: a bad row never fails the
    file. ``duplicate_of`` is the earlier file with the same checksum (nothing was read again)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    source = models.CharField(max_length=20, choices=Source.choices)
    payroll = models.ForeignKey("payroll.Payroll", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    payment_point = models.ForeignKey("payroll.PaymentPoint", null=True, blank=True, on_delete=models.PROTECT,
                                      related_name="+")
    upload = models.ForeignKey("core.Upload", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    job = models.ForeignKey("core.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    file_name = models.CharField(max_length=255)
    checksum = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=FileStatus.choices, default=FileStatus.TRIGGERED)
    error = models.JSONField(default=dict, blank=True)
    rows = models.PositiveIntegerField(default=0)
    stored = models.PositiveIntegerField(default=0, help_text="ledger rows this file added (0 for a re-delivery)")
    duplicate_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    json_ext = models.JSONField(null=True, blank=True)
    date_created = models.DateTimeField(default=timezone.now)
    user_created = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="+")

    class Meta:
        indexes = [models.Index(fields=["payroll", "-date_created"], name="recon_file_payroll"),
                   models.Index(fields=["checksum"], name="recon_file_checksum")]


class ProviderReport(models.Model):
    """One statement a provider made about one payment: the ledger. Rows are never changed or
    deleted; a re-delivered line is recognised by ``checksum`` (the line as the provider meant
    it) or by (source, point, provider transaction id, status) and not stored again.

    ``amount`` is as the provider wrote it, in the major unit (null: not said); ``payment`` is
    the payment whose reference it names (null: a reference we never ordered)."""

    id = models.BigAutoField(primary_key=True)
    source = models.CharField(max_length=20, choices=Source.choices)
    # Indexed only where a statement reads it (the payment, the two ways of being stored once):
    # every index is paid for by each of a national file's 315,000 lines.
    payment_point = models.ForeignKey("payroll.PaymentPoint", null=True, blank=True, on_delete=models.PROTECT,
                                      related_name="+", db_constraint=False, db_index=False)
    file = models.ForeignKey(ReportFile, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                             db_constraint=False, db_index=False)
    line = models.PositiveIntegerField(default=0)
    received_at = models.DateTimeField(default=timezone.now)
    reference = models.CharField(max_length=100)
    provider_transaction_id = models.CharField(max_length=100, blank=True, default="")
    amount = models.DecimalField(max_digits=20, decimal_places=4, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True, default="")
    status = models.CharField(max_length=10, choices=ReportStatus.choices)
    value_date = models.DateField(null=True, blank=True)
    account = models.CharField(max_length=100, blank=True, default="")
    message = models.CharField(max_length=255, blank=True, default="")
    raw = models.TextField(blank=True, default="")
    # The first 128 bits of the line's SHA-256 (``ledger.CHECKSUM``), as a uuid: its unique
    # index is a third of the 64-character text's, and every one of a national file's 315,000
    # lines is inserted into (or looked up in) it.
    checksum = models.UUIDField()
    payment = models.ForeignKey("payroll.BenefitConsumption", null=True, blank=True, on_delete=models.PROTECT,
                                related_name="+", db_constraint=False)
    payroll = models.ForeignKey("payroll.Payroll", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                db_constraint=False, db_index=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["checksum"], name="recon_report_once"),
            models.UniqueConstraint(fields=["source", "payment_point", "provider_transaction_id", "status"],
                                    condition=~Q(provider_transaction_id=""), name="recon_report_txn_once"),
        ]


class MismatchClass(models.TextChoices):
    AMOUNT_DIFFERS = "AMOUNT_DIFFERS"
    CURRENCY_DIFFERS = "CURRENCY_DIFFERS"
    UNKNOWN_REFERENCE = "UNKNOWN_REFERENCE"
    PAID_TWICE = "PAID_TWICE"
    PAID_AFTER_FAILED = "PAID_AFTER_FAILED"
    FAILED_AFTER_PAID = "FAILED_AFTER_PAID"
    NOT_REPORTED = "NOT_REPORTED"
    WRONG_RECIPIENT = "WRONG_RECIPIENT"


class Resolution(models.TextChoices):
    ACCEPTED_WITH_REASON = "ACCEPTED_WITH_REASON"
    RECOVERY_REQUESTED = "RECOVERY_REQUESTED"
    REISSUED = "REISSUED"
    PROVIDER_CORRECTED = "PROVIDER_CORRECTED"


class MismatchStatus(models.TextChoices):
    OPEN = "OPEN"
    RESOLVED = "RESOLVED"


class Mismatch(CoreModel):
    """A difference between what was ordered and what a provider said: a case to work.
    ``key`` makes detection idempotent: the report's id for differences one line shows, the
    payment's id for those only several lines (or silence) show."""

    klass = models.CharField(max_length=20, choices=MismatchClass.choices)
    key = models.CharField(max_length=64)
    payment = models.ForeignKey("payroll.BenefitConsumption", null=True, blank=True, on_delete=models.PROTECT,
                                related_name="+", db_constraint=False, db_index=False)
    payroll = models.ForeignKey("payroll.Payroll", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                db_constraint=False, db_index=False)
    payment_point = models.ForeignKey("payroll.PaymentPoint", null=True, blank=True, on_delete=models.PROTECT,
                                      related_name="+", db_constraint=False, db_index=False)
    report = models.ForeignKey(ProviderReport, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                               db_constraint=False, db_index=False)
    reference = models.CharField(max_length=100)
    detail = models.CharField(max_length=255, blank=True, default="")
    status = models.CharField(max_length=10, choices=MismatchStatus.choices, default=MismatchStatus.OPEN)
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="+")
    resolution = models.CharField(max_length=24, choices=Resolution.choices, blank=True, default="")
    comment = models.TextField(blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["klass", "key"], name="recon_mismatch_once")]
        indexes = [
            models.Index(fields=["payroll", "status"], name="recon_mismatch_payroll"),
            models.Index(fields=["payment"], condition=Q(status="OPEN"), name="recon_mismatch_open_payment"),
        ]


class MismatchEvent(models.Model):
    """The case's history as its workers read it: detected, assigned, commented, resolved."""

    id = models.BigAutoField(primary_key=True)
    mismatch = models.ForeignKey(Mismatch, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="+")
    action = models.CharField(max_length=20)
    comment = models.TextField(blank=True, default="")
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="+")
    resolution = models.CharField(max_length=24, blank=True, default="")


class PullToken(models.Model):
    """A bearer token the pull API issued to a payment point's provider: the token carries this
    row's id, and every request looks the row up, so a revoked token is refused at once. A token
    also names the credential it was issued under (``secret_digest``, a keyed digest of the
    point's secret, never the secret): rotating the secret refuses tokens of the old one at once.
    Revocations are in ``core_history`` (who, when, why)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    payment_point = models.ForeignKey("payroll.PaymentPoint", on_delete=models.PROTECT, related_name="+")
    issued_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    secret_digest = models.CharField(max_length=64)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    revoked_reason = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["payment_point", "-issued_at"], name="recon_pulltoken_point")]
