"""The location module's permission codes (``<module>.<noun>.<verb>``), used by the
declaration (``declared(permissions)``) and by every check alike.

The upload purpose and the job kind ``location.import`` are other vocabularies: uploading a
file for the import needs ``LOCATION_IMPORT``, and so does starting it.
"""

from __future__ import annotations

from core.permissions import Permission

LOCATION_SEARCH = Permission("location.location.search", "List and read locations", openimis=(121901,))
LOCATION_CREATE = Permission("location.location.create", "Create locations", openimis=(121902,))
LOCATION_UPDATE = Permission("location.location.update", "Change locations", openimis=(121903,))
LOCATION_DELETE = Permission("location.location.delete", "Delete (and restore) locations", openimis=(121904,))
LOCATION_IMPORT = Permission("location.location.import", "Import a location hierarchy from CSV")
SCOPE_NATIONAL = Permission("location.scope.national", "See every location, whatever one's scope")
SCOPE_MANAGE = Permission("location.scope.manage", "Assign the locations users are scoped to")

