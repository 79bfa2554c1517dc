"""GraphQL mutations that start an export job; the file is fetched from the download route."""

from __future__ import annotations

from typing import Any

import graphene

from core.graphql.jobs import JobType
from core.graphql.mutations import CoreMutation
from core.graphql.scalars import UUID
from modules.individual.errors import IndividualErrorCode
from modules.individual.export import check_export, do_export
from modules.individual.permissions import REGISTRY_EXPORT


class ExportFormat(graphene.Enum):
    CSV = "csv"
    XLSX = "xlsx"


def _format(data: dict[str, Any]) -> str:
    file_format = data.pop("format", None)
    return getattr(file_format, "value", file_format) or ExportFormat.CSV.value


class ExportIndividualsMutation(CoreMutation):
    """Export the individuals the list would show with these filters, within your locations.
    Watch the returned job; when it succeeded, GET ``/api/individual/export/<job uuid>/download``."""

    permission = REGISTRY_EXPORT
    error_codes = IndividualErrorCode
    job = graphene.Field(JobType)

    class Input(CoreMutation.Input):
        format = ExportFormat(default_value=ExportFormat.CSV.value)
        first_name__icontains = graphene.String()
        last_name__icontains = graphene.String()
        dob__gte = graphene.Date()
        dob__lte = graphene.Date()
        sex = graphene.String()
        location = UUID(description="this location and everything under it")
        group_id = UUID(description="members of this household")
        filter_not_attached_to_group = graphene.Boolean()
        is_deleted = graphene.Boolean(description="deleted people instead of live ones")
        custom_filters = graphene.List(graphene.String, description='["field__lookup__type=value"]')

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        return {"job": do_export(check_export(user, "individual", _format(data), data))}


class ExportGroupsMutation(CoreMutation):
    """Export the households the list would show with these filters, within your locations."""

    permission = REGISTRY_EXPORT
    error_codes = IndividualErrorCode
    job = graphene.Field(JobType)

    class Input(CoreMutation.Input):
        format = ExportFormat(default_value=ExportFormat.CSV.value)
        code__icontains = graphene.String()
        location = UUID(description="this location and everything under it")
        is_deleted = graphene.Boolean(description="deleted households instead of live ones")
        custom_filters = graphene.List(graphene.String, description='["field__lookup__type=value"]')

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        return {"job": do_export(check_export(user, "group", _format(data), data))}


class ExportMutation(graphene.ObjectType):
    export_individuals = ExportIndividualsMutation.Field()
    export_groups = ExportGroupsMutation.Field()
