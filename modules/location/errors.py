"""Every refusal of the location module (``LocationErrorCode``); the generic ones (``REQUIRED``,
``TOO_LONG``, ``NOT_FOUND``, ``OUT_OF_SCOPE``, ``STALE_VERSION``…) are the core's
``CoreErrorCode``. Both appear in ``schema.graphql`` as the enum of this module's mutations."""

from __future__ import annotations

from core.errors import ErrorCode


class LocationErrorCode(ErrorCode):
    """Why a change to locations or to a user's location scope was refused."""

    # locations
    LOCATION_CODE_TAKEN = "LOCATION_CODE_TAKEN", "Another live location has this code."
    INVALID_TYPE = "INVALID_TYPE", "The type is not one of the configured levels."
    INVALID_PARENT = "INVALID_PARENT", ("The parent is not one level up, is deleted, or lies under the "
                                        "location itself.")
    LOCATION_HAS_CHILDREN = "LOCATION_HAS_CHILDREN", "A location with live locations under it cannot be deleted."
    # The refusal of the location_validate_delete hook: the module that vetoes raises this one.
    LOCATION_IN_USE = "LOCATION_IN_USE", "Rows of another module (people, households…) are registered in the location."
    # the CSV import
    INVALID_MODE = "INVALID_MODE", "The import mode is neither all_or_nothing nor valid_rows."
    MISSING_COLUMNS = "MISSING_COLUMNS", "The file lacks one of the columns code, name, type."
    TOO_MANY_ROWS = "TOO_MANY_ROWS", "The file has more rows than a hierarchy import takes."
    DUPLICATE_IN_FILE = "DUPLICATE_IN_FILE", "A code appears on two rows of the file."
    UNKNOWN_PARENT = "UNKNOWN_PARENT", "No location (in the file or stored) has the parent code."
    # a user's scope (setUserLocations). The core's user mutations get the same two refusals
    # through coremis_user_location_problems, as the core's AuthErrorCode members.
    LOCATION_NOT_FOUND = "LOCATION_NOT_FOUND", "A location of the user's scope does not exist."
    LOCATION_REQUIRED = "LOCATION_REQUIRED", "A scoped administrator must give the user one of their locations."
