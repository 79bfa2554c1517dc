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
