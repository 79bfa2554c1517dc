"""The location module's GraphQL surface (openIMIS shapes: ``locations``, ``createLocation``…)."""

from __future__ import annotations

from typing import Any

import django_filters
import graphene
from django.db.models import QuerySet

from core.graphql.fields import ProtectedConnectionField
from core.graphql.history import history_connection
from core.graphql.jobs import JobType
from core.graphql.mutations import CoreMutation
from core.graphql.scalars import UUID
from core.graphql.types import (
    CoreNode,
    CountableConnection,
    ImportModeEnum,
    UserType,  # noqa: F401 - UserType resolves userUpdated
)
from core.imports import ImportMode
from modules.location import services
from modules.location.errors import LocationErrorCode
from modules.location.models import Location
from modules.location.permissions import (
    LOCATION_CREATE,
    LOCATION_DELETE,
    LOCATION_IMPORT,
    LOCATION_SEARCH,
    LOCATION_UPDATE,
    SCOPE_MANAGE,
)


class LocationFilter(django_filters.FilterSet):
    uuid = django_filters.UUIDFilter(field_name="id")
    parent__uuid = django_filters.UUIDFilter(field_name="parent_id")
    within__uuid = django_filters.UUIDFilter(method="filter_within", label="this location and all under it")

    class Meta:
        model = Location
        fields = {
            "code": ["exact", "istartswith", "icontains"],
            "name": ["exact", "istartswith", "icontains"],
            "type": ["exact"],
            "level": ["exact"],
            "is_deleted": ["exact"],
        }

    def filter_within(self, queryset: QuerySet, name: str, value: Any) -> QuerySet:
        return queryset.filter(services.descendants_of([value]))


class LocationGQLType(CoreNode):
    class Meta:
        model = Location
        name = "LocationGQLType"
        interfaces = (graphene.relay.Node,)
        connection_class = CountableConnection
        filterset_class = LocationFilter
        fields = (
            "id", "code", "name", "type", "level", "parent", "json_ext", "is_deleted", "version",
            "date_created", "date_updated", "user_created", "user_updated",
        )

    @classmethod
    def list_queryset(cls, queryset: QuerySet, info: Any) -> QuerySet:
        return services.scope_queryset(queryset, info.context.user, location_field="")


# openIMIS names its four levels by letter: region, district, ward (municipality), village.
OPENIMIS_LEVEL_LETTERS = {"R": 0, "D": 1, "W": 2, "M": 2, "V": 3}


class LocationStrFilter(django_filters.FilterSet):
    """openIMIS's ``locationsStr(type, str)``: the location pickers' search as you type."""

    type = django_filters.CharFilter(method="filter_type", label="a level: its name (Province), or openIMIS's "
                                                                  "letter (R, D, W, V: the first four levels)")
    parent__uuid = django_filters.UUIDFilter(field_name="parent_id")

    class Meta:
        model = Location
        fields = {"is_deleted": ["exact"]}

    def filter_type(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        level = OPENIMIS_LEVEL_LETTERS.get(value.strip().upper()) if len(value.strip()) == 1 else None
        return queryset.filter(level=level) if level is not None else queryset.filter(type=value)


def _search_text(queryset: QuerySet, info: Any, args: dict[str, Any]) -> QuerySet:
    from django.db.models import Q

    text = (args.get("str") or "").strip()
    if not text:
        return queryset
    return queryset.filter(Q(code__istartswith=text) | Q(name__icontains=text))


def _visible_locations(queryset: QuerySet, user: Any) -> QuerySet:
    return services.scope_queryset(queryset, user, location_field="")


class Query(graphene.ObjectType):
    locations = ProtectedConnectionField(
        LocationGQLType, permission=LOCATION_SEARCH,
        order_fields=["code", "name", "type", "level", "date_created", "date_updated"],
    )
    location_history = history_connection(Location, LOCATION_SEARCH, _visible_locations)
    locations_str = ProtectedConnectionField(
        LocationGQLType, permission=LOCATION_SEARCH, filterset_class=LocationStrFilter, queryset_hook=_search_text,
        str=graphene.String(description="code starting with, or name containing, this text"),
        order_fields=["code", "name", "level"],
        description="openIMIS's location search as you type: locations of a level whose code starts with or name "
                    "contains `str`, in your locations (orderBy: name, code or level)")


class CreateLocationMutation(CoreMutation):
    """Create a location; its parent must be one level up and inside your locations."""

    permission = LOCATION_CREATE
    error_codes = LocationErrorCode
    location = graphene.Field(LocationGQLType)

    class Input(CoreMutation.Input):
        code = graphene.String(required=True)
        name = graphene.String(required=True)
        type = graphene.String(required=True)
        parent_uuid = UUID()
        json_ext = graphene.JSONString()

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        request = services.check_create_location(user, code=data["code"], name=data["name"], type=data["type"],
                                                 parent_id=data.get("parent_uuid"), json_ext=data.get("json_ext"))
        return {"location": services.do_create_location(request)}


class UpdateLocationMutation(CoreMutation):
    """Change a location; send ``version`` to refuse the change if someone else changed it."""

    permission = LOCATION_UPDATE
    error_codes = LocationErrorCode
    location = graphene.Field(LocationGQLType)

    class Input(CoreMutation.Input):
        uuid = UUID(required=True)
        version = graphene.Int()
        code = graphene.String()
        name = graphene.String()
        parent_uuid = UUID(description="null moves it to the top level; omit to keep")
        json_ext = graphene.JSONString()

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        request = services.check_update_location(
            user, data["uuid"], version=data.get("version"), code=data.get("code"), name=data.get("name"),
            parent_id=data.get("parent_uuid", ...), json_ext=data.get("json_ext", ...))
        return {"location": services.do_update_location(request)}


class DeleteLocationMutation(CoreMutation):
    """Soft-delete a location that has nothing under it."""

    permission = LOCATION_DELETE
    error_codes = LocationErrorCode
    location = graphene.Field(LocationGQLType)

    class Input(CoreMutation.Input):
        uuid = UUID(required=True)
        version = graphene.Int()

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        request = services.check_delete_location(user, data["uuid"], data.get("version"))
        return {"location": services.do_delete_location(request)}


class RestoreLocationMutation(CoreMutation):
    permission = LOCATION_DELETE
    error_codes = LocationErrorCode
    location = graphene.Field(LocationGQLType)

    class Input(CoreMutation.Input):
        uuid = UUID(required=True)
        version = graphene.Int()

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        request = services.check_restore_location(user, data["uuid"], data.get("version"))
        return {"location": services.do_delete_location(request)}


class ImportLocationsMutation(CoreMutation):
    """Start importing a CSV (columns code, name, type, parent_code) uploaded with
    ``POST /api/upload?purpose=location.import``; watch the returned job."""

    permission = LOCATION_IMPORT
    error_codes = LocationErrorCode
    job = graphene.Field(JobType)

    class Input(CoreMutation.Input):
        upload_id = UUID(required=True)
        mode = ImportModeEnum(default_value=ImportMode.ALL_OR_NOTHING.value)

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        request = services.check_import_locations(user, data["upload_id"], data.get("mode"))
        return {"job": services.do_import_locations(request)}


class SetUserLocationsMutation(CoreMutation):
    """Scope a user to these locations (and everything under them)."""

    permission = SCOPE_MANAGE
    error_codes = LocationErrorCode
    locations = graphene.List(graphene.NonNull(LocationGQLType))

    class Input(CoreMutation.Input):
        user_uuid = UUID(required=True)
        location_uuids = graphene.List(graphene.NonNull(UUID), required=True)

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        request = services.check_set_user_locations(user, data["user_uuid"], data["location_uuids"])
        return {"locations": services.do_set_user_locations(request)}


class Mutation(graphene.ObjectType):
    create_location = CreateLocationMutation.Field()
    update_location = UpdateLocationMutation.Field()
    delete_location = DeleteLocationMutation.Field()
    restore_location = RestoreLocationMutation.Field()
    import_locations = ImportLocationsMutation.Field()
    set_user_locations = SetUserLocationsMutation.Field()
