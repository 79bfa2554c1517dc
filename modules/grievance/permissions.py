"""The grievance module's permission codes (``<module>.<noun>.<verb>``), used by the
declaration (``declared(permissions)``) and by every check alike.

The upload purpose ``grievance.attachment`` needs ``ATTACHMENT_CREATE``: adding a file to a
ticket and uploading one for it are the same right.
"""

from __future__ import annotations

from core.permissions import Permission
from modules.individual import permissions as _registry

TICKET_SEARCH = Permission("grievance.ticket.search", "List and read tickets, their comments, attachments, tasks "
                                                      "and history (sensitive ones only with a role their category "
                                                      "or flags name)", openimis=(127000, 127004))
TICKET_CREATE = Permission("grievance.ticket.create", "Record tickets", openimis=(127001,))
TICKET_UPDATE = Permission("grievance.ticket.update", "Change tickets: category, flags, status, attending staff", openimis=(127002,))
TICKET_DELETE = Permission("grievance.ticket.delete", "Delete tickets", openimis=(127003,))
TICKET_RESOLVE = Permission("grievance.ticket.resolve", "Resolve a ticket with a comment, and reopen it",
                            openimis=(127006,))
TICKET_EXPORT = Permission("grievance.ticket.export", "Export the tickets one may read")
COMMENT_CREATE = Permission("grievance.comment.create", "Comment on tickets", openimis=(127005,))
ATTACHMENT_CREATE = Permission("grievance.attachment.create", "Attach files to tickets")
TASK_ACT = Permission("grievance.task.act", "Complete, skip and reassign workflow tasks of one's role")
ACCESS_LOG_VIEW = Permission("grievance.access_log.view", "Read who read which sensitive ticket")
NOTIFICATION_VIEW = Permission("grievance.notification.view", "Read the notification outbox")

# The registry's right to change a household (the individual module's): naming a new primary
# recipient changes one.
REGISTRY_UPDATE = str(_registry.REGISTRY_UPDATE)  # a str: not one of the codes grievance declares
