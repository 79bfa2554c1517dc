"""The grievance module's permission codes (``<module>.<noun>.<verb>``), used by the
declarations below and by every check alike.

``ATTACHMENT_CREATE`` is also the permission of the upload purpose ``grievance.attachment``:
adding a file to a ticket and uploading it for that are the same right, on purpose.
"""

from __future__ import annotations

from core.permissions import PermissionSpec

TICKET_SEARCH = "grievance.ticket.search"
TICKET_CREATE = "grievance.ticket.create"
TICKET_UPDATE = "grievance.ticket.update"
TICKET_DELETE = "grievance.ticket.delete"
TICKET_RESOLVE = "grievance.ticket.resolve"
TICKET_EXPORT = "grievance.ticket.export"
COMMENT_CREATE = "grievance.comment.create"
ATTACHMENT_CREATE = "grievance.attachment.create"
TASK_ACT = "grievance.task.act"
ACCESS_LOG_VIEW = "grievance.access_log.view"
NOTIFICATION_VIEW = "grievance.notification.view"

PERMISSIONS = [
    PermissionSpec(TICKET_SEARCH, "List and read tickets, their comments, attachments, tasks and history "
                                  "(sensitive ones only with a role their category or flags name)"),
    PermissionSpec(TICKET_CREATE, "Record tickets"),
    PermissionSpec(TICKET_UPDATE, "Change tickets: category, flags, status, attending staff"),
    PermissionSpec(TICKET_DELETE, "Delete tickets"),
    PermissionSpec(TICKET_RESOLVE, "Resolve a ticket with a comment, and reopen it"),
    PermissionSpec(TICKET_EXPORT, "Export the tickets one may read"),
    PermissionSpec(COMMENT_CREATE, "Comment on tickets"),
    PermissionSpec(ATTACHMENT_CREATE, "Attach files to tickets"),
    PermissionSpec(TASK_ACT, "Complete, skip and reassign workflow tasks of one's role"),
    PermissionSpec(ACCESS_LOG_VIEW, "Read who read which sensitive ticket"),
    PermissionSpec(NOTIFICATION_VIEW, "Read the notification outbox"),
]
