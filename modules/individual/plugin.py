"""Hook implementations of the individual module (imports stay inside the hooks)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.hooks import hookimpl
from core.permissions import Permission, declared


@hookimpl
def coremis_permissions() -> list[Permission]:
    from modules.individual import permissions

    return declared(permissions)


@hookimpl
def coremis_upload_purposes() -> list[Any]:
    from core.uploads import UploadPurpose
    from modules.individual.permissions import IMPORT_START

    return [UploadPurpose("individual.import", permission=IMPORT_START,
                          description="A CSV or XLSX registry file for importIndividuals")]


@hookimpl
def coremis_approval_actions() -> dict[str, Any]:
    from modules.individual.bulk_import.approval import ACTIONS

    return ACTIONS


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
    from modules.location.errors import LocationErrorCode

    if Individual.objects.filter(location=location).exists() or Group.objects.filter(location=location).exists():
        raise ServiceError(
            LocationErrorCode.LOCATION_IN_USE, "People or households are registered in this location; move them first.", "uuid"
        )


@hookimpl
def coremis_custom_filter_schema(actor: Any, module_name: str, object_type_name: str, uuid_of_object: Any,
                                 additional_params: dict[str, Any]) -> dict[str, Any] | None:
    from modules.individual.openimis import custom_filter_schema

    return custom_filter_schema(actor, module_name, object_type_name, additional_params)


@hookimpl
def coremis_upload_workflows(actor: Any, group: str) -> list[tuple[str, str]] | None:
    from modules.individual.openimis import upload_workflows

    return upload_workflows(actor, group)


@hookimpl
def coremis_seed_demo(stdout: Any, actor: Any) -> None:
    from modules.individual.demo import seed_demo_registry as seed

    created = seed(actor)
    stdout.write(f"Demo individual data: {created} created." if created else "Demo individual data present.")
