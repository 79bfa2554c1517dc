"""Every refusal of the individual module (``IndividualErrorCode``): the registry's writes, the
bulk import (whole files and report lines) and exports. The generic ones (``REQUIRED``,
``TOO_LONG``, ``NOT_FOUND``, ``OUT_OF_SCOPE``, ``INVALID_VALUE``…) are the core's
``CoreErrorCode``; the location module's codes come with its requirement. All appear in
``schema.graphql`` as the enum of this module's mutations."""

from __future__ import annotations

from core.errors import ErrorCode


class IndividualErrorCode(ErrorCode):
    """Why a change to the registry, an import or an export was refused."""

    # people, households and memberships
    GROUP_CODE_TAKEN = "GROUP_CODE_TAKEN", "Another live household has this code."
    DUPLICATE_KEY = "DUPLICATE_KEY", "Another individual already has this value of a unique jsonExt key."
    HEAD_EXISTS = "HEAD_EXISTS", "The household already has a head."
    PRIMARY_EXISTS = "PRIMARY_EXISTS", "The household already has a primary recipient."
    ALREADY_MEMBER = "ALREADY_MEMBER", "The person already belongs to a live household."
    SAME_HOUSEHOLD = "SAME_HOUSEHOLD", "The person is already in the household they would move to."
    MEMBERSHIP_CONFLICT = "MEMBERSHIP_CONFLICT", ("A membership changed at the same moment (a second head, "
                                                  "primary or household); nothing changed.")
    LOCATION_REQUIRED = "LOCATION_REQUIRED", "Every person and household has a location."
    LOCATION_MISMATCH = "LOCATION_MISMATCH", "A household's members live where it does."
    LOCATION_NOT_FOUND = "LOCATION_NOT_FOUND", "No live location has this code or id."
    INVALID_CHOICE = "INVALID_CHOICE", "A value is not one of its field's choices (sex, role, recipient type)."
    INVALID_DATE = "INVALID_DATE", "A date is not a date (YYYY-MM-DD)."
    IN_FUTURE = "IN_FUTURE", "A date of birth lies in the future."
    TOO_OLD = "TOO_OLD", "A date of birth lies before 1900."
    # The refusal of the individual_validate_delete / group_validate_delete hooks: the module
    # that still relies on the person or household raises this one.
    ACTIVE_BENEFICIARY = "ACTIVE_BENEFICIARY", ("Another module still relies on the person or household "
                                                "(an active beneficiary of a plan).")
    # an import file, refused whole
    INVALID_MODE = "INVALID_MODE", "The import mode is neither all_or_nothing nor valid_rows."
    INVALID_CSV = "INVALID_CSV", "The file is not readable CSV."
    INVALID_ENCODING = "INVALID_ENCODING", "The file is not UTF-8 text."
    INVALID_XLSX = "INVALID_XLSX", "The file is not a readable XLSX workbook."
    XLSX_TOO_LARGE = "XLSX_TOO_LARGE", "The workbook would inflate beyond the deployment's limit."
    XLSX_BOMB = "XLSX_BOMB", "The workbook inflates far more than any real one (a zip bomb)."
    XLSX_TOO_COMPLEX = "XLSX_TOO_COMPLEX", "The workbook has more parts than accepted."
    MISSING_COLUMNS = "MISSING_COLUMNS", "The header lacks first_name, last_name or dob."
    DUPLICATE_COLUMNS = "DUPLICATE_COLUMNS", "The header names a column twice."
    UNKNOWN_COLUMNS = "UNKNOWN_COLUMNS", "The header names columns that are neither built in nor in the schema."
    NO_ROWS = "NO_ROWS", "The file has a header but no rows."
    DUPLICATE_FILE = "DUPLICATE_FILE", "The same file was already imported (send allowDuplicateFile to import it again)."
    FILE_GONE = "FILE_GONE", "The uploaded file is no longer on disk."
    STAGING_LOST = "STAGING_LOST", "The import's staged rows were removed after part of it was written."
    NOT_AWAITING_APPROVAL = "NOT_AWAITING_APPROVAL", "The import is not waiting for approval."
    # the import's approval goes through core.approvals; its refusals, named for the import
    SELF_APPROVAL = "SELF_APPROVAL", "The uploader of an import cannot decide on it."
    NOT_A_CHECKER = "NOT_A_CHECKER", "Only a checker of the task group the import's approval is routed to decides on it."
    ALREADY_DECIDED = "ALREADY_DECIDED", "The checker has already decided on this import; others must decide too."
    ACTION_FAILED = "ACTION_FAILED", "The approval was recorded, but the import could not resume."
    # report lines of an import (a row refused, or noted)
    EXTRA_CELLS = "EXTRA_CELLS", "A row has more cells than the header has columns."
    INVALID_TYPE = "INVALID_TYPE", "A jsonExt column's text is not of the schema's type."
    DUPLICATE_IN_FILE = "DUPLICATE_IN_FILE", "Another row of the file has the same unique key."
    MULTIPLE_HEADS = "MULTIPLE_HEADS", "A household has more than one head in the file."
    MULTIPLE_PRIMARIES = "MULTIPLE_PRIMARIES", "A household has more than one primary recipient in the file."
    HOUSEHOLD_REJECTED = "HOUSEHOLD_REJECTED", "Left out with the rest of a household one of whose rows is invalid."
    LIKELY_DUPLICATE = "LIKELY_DUPLICATE", "A note: the row looks like a person already known (imported all the same)."
    # exports
    INVALID_ENTITY = "INVALID_ENTITY", "An export is of individuals or groups."
    INVALID_FORMAT = "INVALID_FORMAT", "An export's format is csv or xlsx."
    EXPORT_TOO_LARGE = "EXPORT_TOO_LARGE", "The export would have more rows than the deployment allows."
    NOT_READY = "NOT_READY", "The export has not finished yet."
