"""The reconciliation module's permission codes (``<module>.<noun>.<verb>``).

The upload purpose ``reconciliation.result_file`` needs ``REPORT_INGEST``: uploading a
provider's file and ingesting it are the same right."""

from __future__ import annotations

from core.permissions import Permission

REPORT_SEARCH = Permission("reconciliation.report.search",
                           "Read reconciliation reports, provider statements and uploads within one's locations",
                           openimis=(206001,))
REPORT_INGEST = Permission("reconciliation.report.ingest",
                           "Upload providers' result files and the openIMIS reconciliation CSV",
                           openimis=(206002,))
MISMATCH_SEARCH = Permission("reconciliation.mismatch.search", "List and read mismatches within one's locations")
MISMATCH_UPDATE = Permission("reconciliation.mismatch.update",
                             "Assign, comment on and resolve mismatches within one's locations")
PULL_TOKEN_REVOKE = Permission("reconciliation.pull_token.revoke",
                               "Revoke the pull-API tokens of a payment point's provider (national scope)")
