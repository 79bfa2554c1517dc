"""The location module's hook implementations (imports stay inside the hooks: this module is
imported by the loader before Django is set up)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.hooks import hookimpl
from core.permissions import Permission, declared


@hookimpl
def coremis_permissions() -> list[Permission]:
    from modules.location import permissions

    return declared(permissions)


@hookimpl
def coremis_upload_purposes() -> list[Any]:
    from core.uploads import UploadPurpose
    from modules.location.permissions import LOCATION_IMPORT
    from modules.location.services import IMPORT_PURPOSE

    return [UploadPurpose(IMPORT_PURPOSE, permission=LOCATION_IMPORT,
                          description="A CSV of locations (code, name, type, parent_code) for importLocations")]


@hookimpl
def coremis_graphql_query() -> type:
    from modules.location.openimis import Query as OpenimisQuery
    from modules.location.schema import Query

    return type("Query", (Query, OpenimisQuery), {})


@hookimpl
def coremis_graphql_mutation() -> type:
    from modules.location.schema import Mutation

    return Mutation


@hookimpl
def coremis_jobs() -> dict[str, Callable[..., Any]]:
    from modules.location.importer import run_import
    from modules.location.services import IMPORT_JOB

    return {IMPORT_JOB: run_import}


@hookimpl
def coremis_urls() -> list[Any]:
    from modules.location.views import urlpatterns

    return urlpatterns


@hookimpl
def coremis_seed_demo(stdout: Any, actor: Any) -> None:
    from modules.location.demo import seed_demo_locations

    created = seed_demo_locations(actor)
    stdout.write(f"Demo locations: {created} created." if created else "Demo locations present.")


# --- the core's user hooks: users are scoped to locations here --------------------------------


@hookimpl
def coremis_users_visible_to(actor: Any, queryset: Any) -> Any:
    from modules.location.services import users_visible_to

    return users_visible_to(actor, queryset)


@hookimpl
def coremis_users_at_location(queryset: Any, location_id: Any) -> Any:
    from modules.location.services import users_at

    return users_at(queryset, location_id)


@hookimpl
def coremis_user_location_problems(actor: Any, location_ids: list[Any], field: str) -> list[Any]:
    from modules.location.services import user_location_problems

    return user_location_problems(actor, location_ids, field)


@hookimpl
def coremis_set_user_locations(user: Any, location_ids: list[Any]) -> bool:
    from modules.location.services import assign_user_locations

    assign_user_locations(user, location_ids)
    return True


def _user_locations(user: Any, info: Any) -> list[Any]:
    # Reads the prefetched rows (see ``prefetch`` below): no query per user.
    return [scope.location for scope in user.location_scopes.all() if not scope.location.is_deleted]


@hookimpl
def coremis_user_fields() -> dict[str, Any]:
    import graphene

    from core.graphql.types import ContributedField

    # The type by its import path: this module's schema imports the core's, which is still
    # being built when the core asks for these fields.
    locations = graphene.List(
        graphene.NonNull("modules.location.schema.LocationGQLType"), required=True,
        resolver=_user_locations, description="The places (and everything under them) the user is scoped to",
    )
    return {"locations": ContributedField(locations, prefetch=("location_scopes__location",))}
