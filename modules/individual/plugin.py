"""Hook implementations of the individual module (imports stay inside the hooks)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.hooks import hookimpl
from core.permissions import PermissionSpec


@hookimpl
def coremis_permissions() -> list[PermissionSpec]:
    return [
        PermissionSpec("individual.search", "List and read individuals, households and members", openimis=(159001, 180001)),
        PermissionSpec("individual.create", "Register individuals and households", openimis=(159002, 180002)),
        PermissionSpec("individual.update", "Change individuals, households and memberships", openimis=(159003, 180003)),
        PermissionSpec("individual.delete", "Delete and restore individuals and households", openimis=(159004, 180004)),
        PermissionSpec("individual.import", "Upload a registry file for bulk import"),
        PermissionSpec("individual.import_approve", "Approve another user's bulk import"),
        PermissionSpec("individual.export", "Export individuals and households"),
    ]


@hookimpl
def coremis_upload_purposes() -> list[Any]:
    from core.uploads import UploadPurpose

    return [UploadPurpose("individual.import", permission="individual.import",
                          description="A CSV or XLSX registry file for importIndividuals")]


@hookimpl
def coremis_graphql_query() -> type:
    from modules.individual.schema import Query

    return Query


@hookimpl
def coremis_graphql_mutation() -> type:
    from modules.individual.schema import Mutation

    return Mutation


@hookimpl
def coremis_jobs() -> dict[str, Callable[..., Any]]:
    from modules.individual.bulk_import import run_import
    from modules.individual.export import run_export

    return {"individual.import": run_import, "individual.export": run_export}


@hookimpl
def coremis_urls() -> list[Any]:
    from modules.individual.views import urlpatterns

    return urlpatterns


@hookimpl
def location_validate_delete(location: Any) -> None:
    from core.errors import ServiceError
    from modules.individual.models import Group, Individual

    if Individual.objects.filter(location=location).exists() or Group.objects.filter(location=location).exists():
        raise ServiceError(
            "LOCATION_IN_USE", "People or households are registered in this location; move them first.", "uuid"
        )


@hookimpl
def coremis_custom_filter_schema(actor: Any, module_name: str, object_type_name: str, uuid_of_object: Any,
                                 additional_params: dict[str, Any]) -> dict[str, Any] | None:
    from modules.individual.openimis import custom_filter_schema

    return custom_filter_schema(actor, module_name, object_type_name, additional_params)


@hookimpl
def coremis_seed_demo(stdout: Any, actor: Any) -> None:
    from modules.individual.demo import seed_demo_registry as seed

    created = seed(actor)
    stdout.write(f"Demo individual data: {created} created." if created else "Demo individual data present.")
