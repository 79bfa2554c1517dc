"""Tickets, their comments, attachments, contact details, workflow tasks, the notification
outbox and the access log of sensitive reads."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q

from core.models import CoreModel
from modules.individual.models import Group, Individual
from modules.location.models import Location


class TicketStatus(models.TextChoices):
    RECEIVED = "RECEIVED"
    OPEN = "OPEN"
    IN_PROGRESS = "IN_PROGRESS"
    RESOLVED = "RESOLVED"
    CLOSED = "CLOSED"


OPEN_STATUSES = (TicketStatus.RECEIVED, TicketStatus.OPEN, TicketStatus.IN_PROGRESS)


class ReporterKind(models.TextChoices):
    INDIVIDUAL = "individual"
    BENEFICIARY = "beneficiary"
    USER = "user"


class Ticket(CoreModel):
    """One complaint. ``category`` is a configured category's path (``paiement|non_recu``),
    ``flags`` configured flag codes; ``priority`` is the highest of theirs unless set."""

    code = models.CharField(max_length=40)
    title = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="")
    category = models.CharField(max_length=255)
    flags = ArrayField(models.CharField(max_length=50), default=list, blank=True)
    channel = models.CharField(max_length=50, blank=True, default="")
    priority = models.CharField(max_length=10)
    status = models.CharField(max_length=12, choices=TicketStatus.choices, default=TicketStatus.RECEIVED)
    date_of_incident = models.DateField(null=True, blank=True)
    date_submitted = models.DateField(null=True, blank=True, help_text="when the reporter filed it, if earlier")
    resolution = models.CharField(max_length=10, help_text='the resolution time used, "days,hours"')
    due_date = models.DateTimeField(null=True, blank=True)
    is_overdue = models.BooleanField(default=False)
    escalation_level = models.PositiveSmallIntegerField(default=0)
    next_escalation_at = models.DateTimeField(null=True, blank=True)
    reporter_kind = models.CharField(max_length=12, choices=ReporterKind.choices, blank=True, default="")
    reporter_id = models.UUIDField(null=True, blank=True, help_text="the individual, beneficiary or user named")
    reporter_individual = models.ForeignKey(Individual, null=True, blank=True, on_delete=models.PROTECT,
                                            related_name="+")
    reporter_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                      related_name="+")
    household = models.ForeignKey(Group, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    beneficiary_id = models.UUIDField(null=True, blank=True)
    payment_id = models.UUIDField(null=True, blank=True)
    attending_staff = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                        related_name="+")
    location = models.ForeignKey(Location, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    assigned_location = models.ForeignKey(Location, null=True, blank=True, on_delete=models.PROTECT,
                                          related_name="+", help_text="where its attending staff was found")
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["code"], name="grievance_ticket_code_unique")]
        indexes = [
            # the escalation job's scan: open tickets by when they are next due
            models.Index(fields=["next_escalation_at"], name="grievance_ticket_escalation",
                         condition=Q(status__in=["RECEIVED", "OPEN", "IN_PROGRESS"], is_deleted=False)),
            # newest first, the primary key ending the ordering as every list's does (date_created
            # DESC, id DESC is this index read backwards; "-date_created", "id" left the ids to sort)
            models.Index(fields=["date_created", "id"], name="grievance_ticket_created_id"),
            # the frontend filters by status on every list, newest first, and counts what it filtered
            models.Index(fields=["status", "date_created", "id"], name="grievance_ticket_status_date",
                         condition=Q(is_deleted=False)),
            models.Index(fields=["attending_staff", "status"], name="grievance_ticket_staff"),
            # anonymous complaints (many) have no reporter to look up
            models.Index(fields=["reporter_id"], name="grievance_ticket_reporter", condition=Q(reporter_id__isnull=False)),
            models.Index(fields=["location"], name="grievance_ticket_location"),
        ]

    def __str__(self) -> str:
        return self.code


class TicketCounter(models.Model):
    """The last number given per code prefix and year: one ``INSERT … ON CONFLICT DO UPDATE``
    hands out a block of numbers, so concurrent creators never get the same one."""

    prefix = models.CharField(max_length=10)
    year = models.PositiveSmallIntegerField()
    value = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["prefix", "year"], name="grievance_counter_unique")]


class Contact(CoreModel):
    """How to reach a reporter who gave no identity, kept apart from the ticket so that reading,
    exporting or anonymising a ticket does not carry it along."""

    ticket = models.OneToOneField(Ticket, on_delete=models.PROTECT, related_name="contact")
    name = models.CharField(max_length=255, blank=True, default="")
    phone = models.CharField(max_length=50, blank=True, default="")
    email = models.CharField(max_length=255, blank=True, default="")
    address = models.CharField(max_length=255, blank=True, default="")


class Comment(CoreModel):
    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="comments")
    commenter_kind = models.CharField(max_length=12, choices=ReporterKind.choices, blank=True, default="")
    commenter_id = models.UUIDField(null=True, blank=True)
    commenter_individual = models.ForeignKey(Individual, null=True, blank=True, on_delete=models.PROTECT,
                                             related_name="+")
    commenter_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                       related_name="+")
    comment = models.TextField()
    is_resolution = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["ticket"], condition=Q(is_resolution=True, is_deleted=False),
                                               name="grievance_one_resolution_comment")]
        indexes = [models.Index(fields=["ticket", "-date_created"], name="grievance_comment_ticket")]


class Attachment(CoreModel):
    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="attachments")
    upload = models.ForeignKey("core.Upload", on_delete=models.PROTECT, related_name="+")
    title = models.CharField(max_length=255, blank=True, default="")
    filename = models.CharField(max_length=255)
    mime_type = models.CharField(max_length=100)
    size = models.BigIntegerField()


class TaskStatus(models.TextChoices):
    WAITING = "WAITING"  # an earlier step is not finished
    OPEN = "OPEN"
    AWAITING_APPROVAL = "AWAITING_APPROVAL"
    DONE = "DONE"
    SKIPPED = "SKIPPED"


class TicketTask(CoreModel):
    """One step of a workflow a ticket follows; steps open one after the other."""

    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="tasks")
    workflow = models.CharField(max_length=50)
    step = models.CharField(max_length=50)
    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=255)
    role = models.CharField(max_length=100)
    action = models.CharField(max_length=30, blank=True, default="")
    status = models.CharField(max_length=20, choices=TaskStatus.choices, default=TaskStatus.WAITING)
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                 related_name="+")
    days = models.PositiveSmallIntegerField(default=2)
    opened_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    finished_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")
    reason = models.TextField(blank=True, default="")
    result = models.JSONField(null=True, blank=True)
    approval_task = models.ForeignKey("core.ApprovalTask", null=True, blank=True, on_delete=models.PROTECT,
                                      related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["ticket", "workflow", "step"], name="grievance_task_once")]
        indexes = [models.Index(fields=["ticket", "position"], name="grievance_task_ticket")]


class NotificationStatus(models.TextChoices):
    PENDING = "PENDING"
    SENT = "SENT"
    FAILED = "FAILED"


class Notification(models.Model):
    """The outbox: written in the transaction of what it announces, delivered after by a job
    that retries with back-off, so a notification is neither lost nor sent for a change that
    was rolled back."""

    id = models.BigAutoField(primary_key=True)
    event = models.CharField(max_length=30)
    channel = models.CharField(max_length=30)
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+")
    address = models.CharField(max_length=255, blank=True, default="")
    subject = models.CharField(max_length=255)
    body = models.TextField()
    ticket_ids = ArrayField(models.UUIDField(), default=list, blank=True)
    status = models.CharField(max_length=10, choices=NotificationStatus.choices, default=NotificationStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["next_attempt_at"], name="grievance_outbox_due",
                                condition=Q(status="PENDING"))]


class AccessLog(models.Model):
    """One read of a sensitive ticket: who, when, through which path."""

    id = models.BigAutoField(primary_key=True)
    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="+", db_index=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    path = models.CharField(max_length=20)
    level = models.CharField(max_length=20)
    at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["ticket", "-at"], name="grievance_access_ticket")]
