"""Every refusal of the grievance module (``GrievanceErrorCode``); the generic ones (``REQUIRED``,
``TOO_LONG``, ``OUT_OF_SCOPE``, ``STALE_VERSION``, ``PERMISSION_DENIED``…) are the core's
``CoreErrorCode``. Both appear in ``schema.graphql`` as the enum of this module's mutations."""

from __future__ import annotations

from core.errors import ErrorCode


class GrievanceErrorCode(ErrorCode):
    """Why a grievance request was refused."""

    # tickets
    TICKET_NOT_FOUND = "TICKET_NOT_FOUND", "The ticket does not exist or is not visible to the caller."
    CODE_GENERATED = "CODE_GENERATED", "Ticket codes are given by the system; a client does not send one."
    UNKNOWN_CATEGORY = "UNKNOWN_CATEGORY", "The category is not one the configuration declares."
    UNKNOWN_FLAG = "UNKNOWN_FLAG", "A flag is not one the configuration declares."
    UNKNOWN_CHANNEL = "UNKNOWN_CHANNEL", "The channel is not one the configuration declares."
    INVALID_PRIORITY = "INVALID_PRIORITY", "The priority is not Critical, High, Normal or Low."
    INVALID_STATUS = "INVALID_STATUS", "The status is not one this request allows."
    STATUS_TRANSITION = "STATUS_TRANSITION", "A ticket of this status cannot move to the one asked for."
    TICKET_CLOSED = "TICKET_CLOSED", "The ticket is closed; reopen it first."
    WORKFLOW_OPEN = "WORKFLOW_OPEN", "The ticket still has open workflow tasks; it closes when they finish."
    RESOLUTION_FIXED_BY_CATEGORY = ("RESOLUTION_FIXED_BY_CATEGORY",
                                    "The resolution time is the category's; a client cannot set another.")
    DUE_DATE_FROM_CATEGORY = "DUE_DATE_FROM_CATEGORY", "The due date follows from the category's resolution time."
    INVALID_DATE = "INVALID_DATE", "A date is not a date, or lies in the future."
    INVALID_REPORTER_TYPE = "INVALID_REPORTER_TYPE", "The reporter type is not individual, beneficiary or user."
    REPORTER_NOT_FOUND = "REPORTER_NOT_FOUND", "The reporter (or commenter) named is not visible to the caller."
    REPORTER_FIXED = "REPORTER_FIXED", "A ticket keeps the reporter it was recorded with."
    STAFF_NOT_FOUND = "STAFF_NOT_FOUND", "The attending staff named is no active user."
    LOCATION_NOT_FOUND = "LOCATION_NOT_FOUND", "The location named does not exist."
    LOCATION_REQUIRED = "LOCATION_REQUIRED", "The ticket needs a location and none could be derived."
    HOUSEHOLD_NOT_FOUND = "HOUSEHOLD_NOT_FOUND", "The household named is not visible to the caller."
    PAYMENT_NOT_FOUND = "PAYMENT_NOT_FOUND", "The payment named is not visible (or payroll is not enabled)."
    # comments and attachments
    COMMENT_NOT_FOUND = "COMMENT_NOT_FOUND", "The comment does not exist or is not visible to the caller."
    ALREADY_RESOLVED = "ALREADY_RESOLVED", "The ticket is already resolved (one resolution comment per ticket)."
    NOT_RESOLVED = "NOT_RESOLVED", "Only a resolved or closed ticket can be reopened."
    FILE_TYPE_NOT_ALLOWED = "FILE_TYPE_NOT_ALLOWED", "The file holds a type attachments may not have."
    ATTACHMENT_NOT_FOUND = "ATTACHMENT_NOT_FOUND", "The attachment does not exist or is not visible to the caller."
    FILE_GONE = "FILE_GONE", "The file is no longer stored."
    # workflows
    TASK_NOT_FOUND = "TASK_NOT_FOUND", "The workflow task does not exist or is not visible to the caller."
    TASK_NOT_OPEN = "TASK_NOT_OPEN", "The workflow task is not open."
    NOT_THE_ROLE = "NOT_THE_ROLE", "The workflow task is for a role the user does not hold."
    REASON_REQUIRED = "REASON_REQUIRED", "Skipping a task needs a reason."
    RECIPIENT_REQUIRED = "RECIPIENT_REQUIRED", "Naming a new primary recipient needs newRecipientId."
    RECIPIENT_NOT_IN_HOUSEHOLD = "RECIPIENT_NOT_IN_HOUSEHOLD", "The new primary recipient is no member of the household."
    # exports
    EXPORT_TOO_LARGE = "EXPORT_TOO_LARGE", "More tickets match than an export holds."
    EXPORT_NOT_READY = "EXPORT_NOT_READY", "The export job has not finished."
