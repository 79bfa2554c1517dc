"""Every refusal of the reconciliation module (``ReconciliationErrorCode``); the generic ones
(``REQUIRED``, ``NOT_FOUND``, ``OUT_OF_SCOPE``, ``PERMISSION_DENIED``…) are the core's."""

from __future__ import annotations

from core.errors import ErrorCode


class ReconciliationErrorCode(ErrorCode):
    """Why a reconciliation request (or one row of a provider's file) was refused."""

    # files
    UNKNOWN_SOURCE = "UNKNOWN_SOURCE", "The source is not one of RESULT_FILE or OPENIMIS_CSV."
    UNREADABLE_FILE = "UNREADABLE_FILE", "The file is not a CSV or XLSX file this module can read."
    MISSING_COLUMN = "MISSING_COLUMN", "A column the point's mapping needs is not in the file's header."
    NO_ROWS = "NO_ROWS", "The file has a header but no rows."
    POINT_REQUIRED = "POINT_REQUIRED", "A result file is ingested for one payment point."
    # rows
    TRUNCATED_ROW = "TRUNCATED_ROW", "The row has fewer cells than the header (a cut file?)."
    REFERENCE_REQUIRED = "REFERENCE_REQUIRED", "The row names no payment reference."
    INVALID_AMOUNT = "INVALID_AMOUNT", "The amount is not a number."
    INVALID_DATE = "INVALID_DATE", "The date is not a date in the configured format."
    UNKNOWN_STATUS = "UNKNOWN_STATUS", "The status is none of the point's paid or failed values."
    OTHER_PAYROLL = "OTHER_PAYROLL", "The reference belongs to a payment of another payroll than the one uploaded for."
    # mismatches
    MISMATCH_NOT_FOUND = "MISMATCH_NOT_FOUND", "The mismatch does not exist or is not visible to the caller."
    MISMATCH_RESOLVED = "MISMATCH_RESOLVED", "The mismatch is already resolved."
    COMMENT_REQUIRED = "COMMENT_REQUIRED", "Resolving a mismatch needs a comment that says why."
    ASSIGNEE_NOT_FOUND = "ASSIGNEE_NOT_FOUND", "The assignee is no active user."
    RESOLUTION_NOT_ALLOWED = "RESOLUTION_NOT_ALLOWED", "This resolution does not apply to this class of mismatch."
    # report exports
    INVALID_FORMAT = "INVALID_FORMAT", "Export the report as csv or xlsx."
    NOT_READY = "NOT_READY", "The export job has not finished."
    FILE_GONE = "FILE_GONE", "The exported file is no longer kept; export again."
    # closing
    NOT_RECONCILED = "NOT_RECONCILED", "Payments are not final or mismatches are unresolved."
    PREVIOUS_ROUND_OPEN = "PREVIOUS_ROUND_OPEN", "The previous round in this commune has unreconciled payments."
