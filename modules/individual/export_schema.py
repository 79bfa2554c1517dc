"""GraphQL mutations that start an export job; the file is fetched from the download route."""

from __future__ import annotations

from typing import Any

import graphene

from core.graphql.core_schema import JobType
from core.graphql.mutations import CoreMutation
from core.graphql.scalars import UUID
from core.jobs import start_job
from modules.individual.export import export_params, export_queryset


class ExportFormat(graphene.Enum):
    CSV = "csv"
    XLSX = "xlsx"


def _start(user: Any, entity: str, data: dict[str, Any]) -> dict[str, Any]:
    file_format = data.pop("format", None)
    file_format = getattr(file_format, "value", file_format) or ExportFormat.CSV.value
    params = export_params(entity, file_format, data)
    # Building the queryset validates every filter (custom ones included) now, so a bad
    # filter is a typed error here rather than a failed job later.
    export_queryset(entity, user, params["filters"])
    return {"job": start_job("individual.export", params, user)}


class ExportIndividualsMutation(CoreMutation):
    """Export the individuals the list would show with these filters, within your locations.
    Watch the returned job; when it succeeded, GET ``/api/individual/export/<job uuid>/download``."""

    permission = "individual.export"
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
        return _start(user, "individual", data)


class ExportGroupsMutation(CoreMutation):
    """Export the households the list would show with these filters, within your locations."""

    permission = "individual.export"
    job = graphene.Field(JobType)

    class Input(CoreMutation.Input):
        format = ExportFormat(default_value=ExportFormat.CSV.value)
        code__icontains = graphene.String()
        location = UUID(description="this location and everything under it")
        is_deleted = graphene.Boolean(description="deleted households instead of live ones")
        custom_filters = graphene.List(graphene.String, description='["field__lookup__type=value"]')

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        return _start(user, "group", data)


class ExportMutation(graphene.ObjectType):
    export_individuals = ExportIndividualsMutation.Field()
    export_groups = ExportGroupsMutation.Field()
