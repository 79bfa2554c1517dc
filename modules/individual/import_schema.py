"""GraphQL for the bulk import: start it, approve or reject it, read where it stands.

The file itself is sent first with ``POST /api/upload?purpose=individual.import`` (or in one
step with ``POST /api/individual/import``); progress is the returned job's.
"""

from __future__ import annotations

from typing import Any

import graphene

from core.graphql.fields import ProtectedField
from core.graphql.jobs import JobType
from core.graphql.mutations import CoreMutation
from core.graphql.scalars import UUID
from core.graphql.types import ImportModeEnum, UserType
from core.imports import ImportMode
from core.permissions import JOB_VIEW
from modules.individual import bulk_import
from modules.individual.errors import IndividualErrorCode
from modules.individual.import_models import ImportRun
from modules.individual.permissions import IMPORT_APPROVE, IMPORT_START


class IndividualImportPhase(graphene.Enum):
    """Where an individual import stands (``ImportRun.phase``)."""

    RECEIVED = ImportRun.RECEIVED
    VALIDATED = ImportRun.VALIDATED
    WAITING = ImportRun.WAITING
    APPROVED = ImportRun.APPROVED
    FINISHED = ImportRun.FINISHED
    REFUSED = ImportRun.REFUSED
    REJECTED = ImportRun.REJECTED


class IndividualImportType(graphene.ObjectType):
    """An import's own state, beyond its job's progress."""

    job = graphene.Field(JobType, required=True)
    mode = graphene.Field(ImportModeEnum, required=True)
    phase = graphene.Field(IndividualImportPhase, required=True)
    needs_approval = graphene.Boolean(required=True)
    file_name = graphene.String(required=True)
    sha256 = graphene.String(required=True)
    counts = graphene.JSONString(required=True, description=(
        "total, valid, invalid, errors, likely_duplicates, households_new, households_existing "
        "and, once written, created_individuals, created_households, created_memberships"))
    decided_by = graphene.Field(UserType)
    decided_at = graphene.DateTime()
    decision_reason = graphene.String()
    report_url = graphene.String(required=True, description="CSV: row, field, code, message")

    @staticmethod
    def resolve_file_name(run: ImportRun, info: Any) -> str:
        return run.upload.filename

    @staticmethod
    def resolve_report_url(run: ImportRun, info: Any) -> str:
        return bulk_import.report_url(run.job_id)


class ImportQuery(graphene.ObjectType):
    individual_import = ProtectedField(
        IndividualImportType, job_id=UUID(required=True), permission=JOB_VIEW,
        description="An individual import, for its uploader, its approvers and job administrators.",
    )

    def resolve_individual_import(self, info: Any, job_id: Any) -> ImportRun | None:
        run = (ImportRun.objects.select_related("job", "job__created_by", "upload", "decided_by")
               .filter(job_id=job_id).first())
        if run is None or not bulk_import.can_see(info.context.user, run.job):
            return None
        return run


def _mode(value: Any) -> str:
    return str(getattr(value, "value", value) or ImportMode.ALL_OR_NOTHING.value)


class ImportIndividualsMutation(CoreMutation):
    """Start importing individuals and households from a CSV or XLSX file uploaded with
    ``POST /api/upload?purpose=individual.import``; watch the returned job. The same file as
    an import that is running, waiting or done is refused unless ``allowDuplicateFile``."""

    permission = IMPORT_START
    error_codes = IndividualErrorCode
    job = graphene.Field(JobType)

    class Input(CoreMutation.Input):
        upload_id = UUID(required=True)
        mode = ImportModeEnum(default_value=ImportMode.ALL_OR_NOTHING.value)
        allow_duplicate_file = graphene.Boolean(default_value=False)

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        job = bulk_import.start_import(user, data["upload_id"], _mode(data.get("mode")),
                                       bool(data.get("allow_duplicate_file")))
        return {"job": job}


class ApproveIndividualImportMutation(CoreMutation):
    """Approve an import that waits for approval: the core's decision on its approval task
    (``individual.import``), for a checker of the task's group other than the uploader whose
    locations cover every row. The job resumes once the group's policy is met."""

    permission = IMPORT_APPROVE
    error_codes = IndividualErrorCode
    job = graphene.Field(JobType)

    class Input(CoreMutation.Input):
        job_id = UUID(required=True)

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        done = bulk_import.do_decide_import(bulk_import.check_decide_import(user, data["job_id"], "APPROVED"))
        return {"job": done.job, "errors": done.errors}


class RejectIndividualImportMutation(CoreMutation):
    """Reject an import that waits for approval (the core's decision on its approval task);
    nothing is written."""

    permission = IMPORT_APPROVE
    error_codes = IndividualErrorCode
    job = graphene.Field(JobType)

    class Input(CoreMutation.Input):
        job_id = UUID(required=True)
        reason = graphene.String(required=True)

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        done = bulk_import.do_decide_import(
            bulk_import.check_decide_import(user, data["job_id"], "REJECTED", data["reason"]))
        return {"job": done.job, "errors": done.errors}


class ImportMutation(graphene.ObjectType):
    import_individuals = ImportIndividualsMutation.Field()
    approve_individual_import = ApproveIndividualImportMutation.Field()
    reject_individual_import = RejectIndividualImportMutation.Field()
