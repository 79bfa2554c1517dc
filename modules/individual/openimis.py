"""openIMIS's frontend shapes over the registry: the advanced filters of the individual and
group lists (``customFilters(moduleName: "individual", objectTypeName: "Individual",
additionalParams: "{\\"type\\": \\"INDIVIDUAL\\"|\\"GROUP\\"}")``) come from the deployment's
``individual_schema`` / ``group_schema``."""

from __future__ import annotations

from typing import Any

from core.errors import CoreErrorCode, ServiceError
from core.permissions import require
from modules.individual.permissions import REGISTRY_SEARCH

OBJECT_TYPES = {"individual", "group"}


def custom_filter_schema(actor: Any, module_name: str, object_type_name: str,
                         additional_params: dict[str, Any]) -> dict[str, Any] | None:
    if module_name != "individual" or object_type_name.lower() not in OBJECT_TYPES:
        return None
    from modules.individual.validation import group_schema, individual_schema

    require(actor, REGISTRY_SEARCH)
    kind = str(additional_params.get("type") or object_type_name).upper()
    if kind not in {"INDIVIDUAL", "GROUP"}:
        raise ServiceError(CoreErrorCode.INVALID_VALUE, "additionalParams.type is INDIVIDUAL or GROUP.",
                           "additionalParams")
    return (group_schema() if kind == "GROUP" else individual_schema()).schema


# openIMIS's individual upload dialog (``workflow(group: "individual")``) lists these; they are
# the bulk import's modes, under the names ``importIndividuals(mode:)`` and
# ``POST /api/individual/import?mode=`` take.
UPLOAD_WORKFLOWS = {
    "all_or_nothing": "Write nothing unless every row is valid; the report lists what to fix.",
    "valid_rows": "Write the valid rows; the report lists the rows left out and why.",
}


def upload_workflows(actor: Any, group: str) -> list[tuple[str, str]] | None:
    """The individual import's modes for openIMIS's group ``individual`` (none for one who may
    not start an import); None for another group."""
    from core.imports import ImportMode
    from core.permissions import has_permission
    from modules.individual.permissions import IMPORT_START

    if group != "individual":
        return None
    if not has_permission(actor, IMPORT_START):
        return []
    return [(mode.value, UPLOAD_WORKFLOWS[mode.value]) for mode in ImportMode]
