"""The location module's hook implementations (imports stay inside the hooks: this module is
imported by the loader before Django is set up)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.hooks import hookimpl
from core.permissions import PermissionSpec


@hookimpl
def coremis_permissions() -> list[PermissionSpec]:
    return [
        PermissionSpec("location.search", "List and read locations"),
        PermissionSpec("location.create", "Create locations"),
        PermissionSpec("location.update", "Change locations"),
        PermissionSpec("location.delete", "Delete (and restore) locations"),
        PermissionSpec("location.import", "Import a location hierarchy from CSV"),
        PermissionSpec("location.scope.national", "See every location, whatever one's scope"),
        PermissionSpec("location.scope.manage", "Assign the locations users are scoped to"),
    ]


@hookimpl
def coremis_upload_purposes() -> list[Any]:
    from core.uploads import UploadPurpose

    return [UploadPurpose("location.import", permission="location.import",
                          description="A CSV of locations (code, name, type, parent_code) for importLocations")]


@hookimpl
def coremis_graphql_query() -> type:
    from modules.location.schema import Query

    return Query


@hookimpl
def coremis_graphql_mutation() -> type:
    from modules.location.schema import Mutation

    return Mutation


@hookimpl
def coremis_jobs() -> dict[str, Callable[..., Any]]:
    from modules.location.importer import run_import

    return {"location.import": run_import}


@hookimpl
def coremis_urls() -> list[Any]:
    from modules.location.views import urlpatterns

    return urlpatterns


@hookimpl
def coremis_seed_demo(stdout: Any) -> None:
    from modules.location.demo import seed_demo_locations

    created = seed_demo_locations()
    stdout.write(f"Demo locations: {created} created." if created else "Demo locations present.")
