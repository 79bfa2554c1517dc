"""The individual module's permission codes (``<module>.<noun>.<verb>``), used by the
declaration (``declared(permissions)``) and by every check alike. The noun ``registry`` is
individuals, households and their memberships together (one right covers all three).

The upload purpose, the job kind and the approval action ``individual.import`` are other
vocabularies, one string on purpose (one import): uploading a file for the import needs
``IMPORT_START``, and so does starting it; deciding on its approval needs ``IMPORT_APPROVE``
(the action's permission) besides the core's ``core.task.resolve``.
"""

from __future__ import annotations

from core.permissions import Permission

REGISTRY_SEARCH = Permission("individual.registry.search", "List and read individuals, households and members", openimis=(159001, 180001))
REGISTRY_CREATE = Permission("individual.registry.create", "Register individuals and households", openimis=(159002, 180002))
REGISTRY_UPDATE = Permission("individual.registry.update", "Change individuals, households and memberships", openimis=(159003, 180003))
REGISTRY_DELETE = Permission("individual.registry.delete", "Delete and restore individuals and households", openimis=(159004, 159005, 180004))
REGISTRY_EXPORT = Permission("individual.registry.export", "Export individuals and households")
IMPORT_START = Permission("individual.import.start", "Upload a registry file for bulk import")
IMPORT_APPROVE = Permission("individual.import.approve", "Approve another user's bulk import")
