"""openIMIS's frontend shapes over locations: ``userDistricts`` (the second-level locations the
caller works in, each with its first-level parent), read by every screen's location pickers.
Scope is the module's own (``services.scope_paths``)."""

from __future__ import annotations

import uuid
from typing import Any

import graphene
from django.db.models import Q

from core.graphql.fields import ProtectedField
from modules.location import services
from modules.location.models import Location
from modules.location.permissions import LOCATION_SEARCH
from modules.location.schema import LocationGQLType


class Query(graphene.ObjectType):
    user_districts = ProtectedField(
        graphene.List(graphene.NonNull(LocationGQLType)), permission=LOCATION_SEARCH,
        description="Second-level locations within or above the caller's scope (openIMIS's districts).",
    )

    def resolve_user_districts(self, info: Any) -> list[Location]:
        districts = Location.objects.filter(level=1, is_deleted=False).select_related("parent")
        paths = services.scope_paths(info.context.user)
        if paths is not None:
            # a district inside one's scope, or the district above a location of one's scope
            above = [p.rstrip("/").split("/") for p in paths]
            ancestors = {uuid.UUID(parts[1]) for parts in above if len(parts) > 1}
            districts = districts.filter(services.within_paths(paths, "") | Q(pk__in=ancestors))
        return list(districts.order_by("parent__name", "name"))
