"""GraphQL surface: ``csvReconciliationUpload`` (openIMIS), ``reconciliationMismatch``,
``reconciliationReport`` and ``updateReconciliationMismatch``. Thin: the services decide."""

from __future__ import annotations

from typing import Any

import graphene
from django.db.models import QuerySet

from core.graphql.choices import choice_enum
from core.graphql.fields import ProtectedConnectionField, ProtectedField, selects
from core.graphql.jobs import JobType
from core.graphql.mutations import CoreMutation
from core.graphql.scalars import UUID
from core.graphql.types import CoreNode, CountableConnection, JSONString
from modules.payroll.schema import PayrollGQLType  # noqa: F401 - payroll fields resolve to it
from modules.reconciliation import export, services
from modules.reconciliation.errors import ReconciliationErrorCode
from modules.reconciliation.models import (
    FileStatus,
    Mismatch,
    MismatchClass,
    MismatchEvent,
    MismatchStatus,
    ReportFile,
    Resolution,
    Source,
)
from modules.reconciliation.permissions import (
    MISMATCH_SEARCH,
    MISMATCH_UPDATE,
    PULL_TOKEN_REVOKE,
    REPORT_SEARCH,
)

FileStatusEnum = choice_enum("ReconciliationFileStatusEnum", FileStatus, "Where a reconciliation file stands.")
SourceEnum = choice_enum("ReconciliationSourceEnum", Source, "How a provider's report arrived.")
MismatchClassEnum = choice_enum("MismatchClassEnum", MismatchClass, "What differs between a payment and its report.")
MismatchStatusEnum = choice_enum("MismatchStatusEnum", MismatchStatus, "Whether a mismatch is still open.")
ResolutionEnum = choice_enum("MismatchResolutionEnum", Resolution, "How a mismatch was resolved.")
GroupByEnum = graphene.Enum("ReconciliationGroupByEnum", [(g.upper(), g) for g in services.GROUPS])


class CsvReconciliationUploadGQLType(CoreNode):
    """A file handed in for reconciliation (openIMIS ``csvReconciliationUpload``); ``error``
    maps row numbers to what was wrong with them."""

    class Meta:
        model = ReportFile
        interfaces = (graphene.relay.Node,)
        connection_class = CountableConnection
        fields = ("id", "file_name", "date_created", "payroll", "rows", "stored")
        filter_fields = {"payroll__id": ["exact"], "status": ["exact"], "file_name": ["icontains"]}

    status = FileStatusEnum(required=True)
    source = SourceEnum(required=True)
    error = JSONString()
    json_ext = JSONString()

    def resolve_status(self, info: Any) -> str:
        return str(self.status)

    def resolve_source(self, info: Any) -> str:
        return str(self.source)

    @classmethod
    def list_queryset(cls, queryset: QuerySet, info: Any) -> QuerySet:
        return services.visible_files(info.context.user, queryset)


def _files_never_deleted(queryset: QuerySet, info: Any, args: dict[str, Any]) -> QuerySet:
    # a handed-in file is part of the payroll's record: it is kept, never soft-deleted
    return queryset.none() if args.get("is_deleted") else queryset


class MismatchEventGQLType(graphene.ObjectType):
    at = graphene.DateTime(required=True)
    action = graphene.String(required=True)
    actor = graphene.String()
    assignee = graphene.String()
    comment = graphene.String(required=True)
    resolution = graphene.String(required=True)


class MismatchGQLType(CoreNode):
    """A difference between a payment and what a provider said, worked as a case."""

    class Meta:
        model = Mismatch
        interfaces = (graphene.relay.Node,)
        connection_class = CountableConnection
        fields = ("id", "version", "date_created", "date_updated", "reference", "detail", "comment", "payroll")
        filter_fields = {"klass": ["exact"], "status": ["exact"], "payroll__id": ["exact"], "reference": ["exact"],
                         "assignee__id": ["exact"]}

    klass = MismatchClassEnum(required=True, description="the class of difference")
    status = MismatchStatusEnum(required=True)
    resolution = ResolutionEnum()
    assignee = graphene.String(description="the assignee's username")
    payment_id = UUID()
    history = graphene.List(graphene.NonNull(MismatchEventGQLType), required=True)
    selection_reads = {"assignee": ("assignee__username",)}  # (core.graphql.fields.select_selection)

    def resolve_klass(self, info: Any) -> str:
        return str(self.klass)

    def resolve_status(self, info: Any) -> str:
        return str(self.status)

    def resolve_resolution(self, info: Any) -> str | None:
        return str(self.resolution) or None

    def resolve_assignee(self, info: Any) -> str | None:
        return self.assignee.username if self.assignee_id else None

    def resolve_history(self, info: Any) -> list[MismatchEventGQLType]:
        return [MismatchEventGQLType(at=e.at, action=e.action, actor=e.actor.username if e.actor_id else None,
                                     assignee=e.assignee.username if e.assignee_id else None, comment=e.comment,
                                     resolution=e.resolution)
                for e in self.events.all()]

    @classmethod
    def list_queryset(cls, queryset: QuerySet, info: Any) -> QuerySet:
        from django.db.models import Prefetch

        queryset = services.visible_mismatches(info.context.user, queryset)
        if selects(info, "history"):
            events = Prefetch("events", MismatchEvent.objects.select_related("actor", "assignee").order_by("at", "id"))
            queryset = queryset.prefetch_related(events)
        return queryset


class MismatchCountType(graphene.ObjectType):
    klass = MismatchClassEnum(required=True)
    count = graphene.Int(required=True)


class ReconciliationReportRowType(graphene.ObjectType):
    """One group's totals (amounts in minor units). Each payment is in exactly one of paid,
    failed, pending and mismatched, so they add up to the ordered count and sum."""

    key = graphene.String(required=True, description="the payroll, cycle, point or location id")
    label = graphene.String()
    ordered_count = graphene.Int(required=True)
    ordered_sum = graphene.Float(required=True)
    paid_count = graphene.Int(required=True)
    paid_sum = graphene.Float(required=True)
    failed_count = graphene.Int(required=True)
    failed_sum = graphene.Float(required=True)
    pending_count = graphene.Int(required=True)
    pending_sum = graphene.Float(required=True)
    mismatched_count = graphene.Int(required=True)
    mismatched_sum = graphene.Float(required=True)
    mismatches = graphene.List(graphene.NonNull(MismatchCountType), required=True,
                               description="open mismatches of the group's payments, by class")


def _row(row: dict[str, Any]) -> ReconciliationReportRowType:
    fields = {k: row[k] for k in ("key", "label", "ordered_count", "ordered_sum", "paid_count", "paid_sum",
                                  "failed_count", "failed_sum", "pending_count", "pending_sum", "mismatched_count",
                                  "mismatched_sum")}
    return ReconciliationReportRowType(**fields, mismatches=[MismatchCountType(klass=k, count=row[k])
                                                             for k in MismatchClass.values if row[k]])


class PullTokenType(graphene.ObjectType):
    """A token the pull API issued to a point's provider (never the token itself)."""

    id = UUID(required=True)
    issued_at = graphene.DateTime(required=True)
    expires_at = graphene.DateTime(required=True)
    revoked_at = graphene.DateTime()
    revoked_by = graphene.String()
    revoked_reason = graphene.String(required=True)

    def resolve_revoked_by(self, info: Any) -> str | None:
        return self.revoked_by.username if self.revoked_by_id else None


class Query(graphene.ObjectType):
    csv_reconciliation_upload = ProtectedConnectionField(
        CsvReconciliationUploadGQLType, permission=REPORT_SEARCH, queryset_hook=_files_never_deleted,
        is_deleted=graphene.Boolean(description="openIMIS's filter: files are never deleted, so true lists none"),
        order_fields=["date_created", "file_name", "status"])
    reconciliation_mismatch = ProtectedConnectionField(MismatchGQLType, permission=MISMATCH_SEARCH,
                                                       order_fields=["date_created", "reference", "klass"])
    reconciliation_report = ProtectedField(
        graphene.List(graphene.NonNull(ReconciliationReportRowType)), permission=REPORT_SEARCH,
        payroll_id=UUID(), payment_cycle_id=UUID(), payment_point_id=UUID(), group_by=GroupByEnum(),
        location_level=graphene.Int(description="with groupBy LOCATION: 0 for provinces, 1 communes, 2 collines"),
    )

    reconciliation_pull_token = ProtectedField(
        graphene.List(graphene.NonNull(PullTokenType)), permission=PULL_TOKEN_REVOKE,
        payment_point_id=UUID(required=True), description="the pull-API tokens a point was issued, newest first")

    def resolve_reconciliation_pull_token(self, info: Any, payment_point_id: Any) -> list[Any]:
        return list(services.pull_tokens(info.context.user, payment_point_id)[:200])

    def resolve_reconciliation_report(self, info: Any, group_by: Any = "payroll", **filters: Any) -> list[Any]:
        request = services.check_report(info.context.user, group_by=getattr(group_by, "value", group_by), **filters)
        return [_row(r) for r in services.report_rows(request)]


class UpdateReconciliationMismatchMutation(CoreMutation):
    """Assign a mismatch, comment on it, or resolve it (with a comment that says why)."""

    permission = MISMATCH_UPDATE
    error_codes = ReconciliationErrorCode
    mismatch = graphene.Field(MismatchGQLType)

    class Input(CoreMutation.Input):
        id = UUID(required=True)
        version = graphene.Int()
        assignee_id = UUID(description="null to unassign")
        comment = graphene.String()
        resolution = ResolutionEnum()

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        request = services.check_update_mismatch(user, data["id"], **_changes(data))
        return {"mismatch": services.do_update_mismatch(request)}


def _changes(data: dict[str, Any]) -> dict[str, Any]:
    """The input as the use case takes it: an omitted assignee is no change, null unassigns."""
    resolution = data.get("resolution")
    changes = {"version": data.get("version"), "comment": data.get("comment") or "",
               "resolution": str(getattr(resolution, "value", resolution) or "")}
    if "assignee_id" in data:
        changes["assignee_id"] = data["assignee_id"]
    return changes


class RevokeReconciliationPullTokensMutation(CoreMutation):
    """Revoke a payment point's pull-API tokens at once: one (``tokenId``) or every live one (a
    leaked or rotated secret). The provider asks for a new token with the current secret."""

    permission = PULL_TOKEN_REVOKE
    error_codes = ReconciliationErrorCode
    revoked = graphene.Int(description="how many live tokens were revoked")

    class Input(CoreMutation.Input):
        payment_point_id = UUID(required=True)
        token_id = UUID()
        reason = graphene.String(required=True)

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        request = services.check_revoke_pull_tokens(user, data["payment_point_id"], token_id=data.get("token_id"),
                                                    reason=data.get("reason") or "")
        return {"revoked": services.do_revoke_pull_tokens(request)}


class ReportFormatEnum(graphene.Enum):
    CSV = "csv"
    XLSX = "xlsx"


class ExportReconciliationReportMutation(CoreMutation):
    """The ``reconciliationReport`` with these arguments as a CSV or XLSX file, within your
    locations. Watch the returned job; when it succeeded, GET
    ``/api/reconciliation/report/<job uuid>/download``."""

    permission = REPORT_SEARCH
    error_codes = ReconciliationErrorCode
    job = graphene.Field(JobType)

    class Input(CoreMutation.Input):
        format = ReportFormatEnum(default_value=ReportFormatEnum.CSV.value)
        payroll_id = UUID()
        payment_cycle_id = UUID()
        payment_point_id = UUID()
        group_by = GroupByEnum()
        location_level = graphene.Int(description="with groupBy LOCATION: 0 for provinces, 1 communes, 2 collines")

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        request = export.check_export_report(user, **_export_arguments(data))
        return {"job": export.do_export_report(request)}


def _export_arguments(data: dict[str, Any]) -> dict[str, Any]:
    """The input as the use case takes it: enums as their values, the defaults of the report."""
    file_format, group_by = data.pop("format", None), data.pop("group_by", None)
    return {**data, "file_format": str(getattr(file_format, "value", file_format) or "csv"),
            "group_by": str(getattr(group_by, "value", group_by) or "payroll")}


class Mutation(graphene.ObjectType):
    update_reconciliation_mismatch = UpdateReconciliationMismatchMutation.Field()
    revoke_reconciliation_pull_tokens = RevokeReconciliationPullTokensMutation.Field()
    export_reconciliation_report = ExportReconciliationReportMutation.Field()
