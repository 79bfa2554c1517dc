"""Validating programme-defined fields (``json_ext``) against the deployer's JSON Schema.

The fast path uses a compiled validator (``fastjsonschema``, about 1 µs a row); only a value
that fails is run through ``jsonschema`` to list every reason in plain words.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import fastjsonschema
import jsonschema

from core.errors import CoreErrorCode, FieldError


class JsonExtSchema:
    def __init__(self, schema: Mapping[str, Any], field_name: str = "jsonExt") -> None:
        self.schema = dict(schema)
        self.field_name = field_name
        jsonschema.Draft202012Validator.check_schema(self.schema)
        self._fast = fastjsonschema.compile(self.schema)
        self._full = jsonschema.Draft202012Validator(self.schema)

    @property
    def properties(self) -> dict[str, Any]:
        return dict(self.schema.get("properties", {}))

    def is_valid(self, value: Any) -> bool:
        try:
            self._fast(value)
        except fastjsonschema.JsonSchemaException:
            return False
        return True

    def errors(self, value: Any) -> list[FieldError]:
        """Every reason ``value`` is invalid, one per JSON path (empty when valid)."""
        if self.is_valid(value):
            return []
        found: list[FieldError] = []
        for error in sorted(self._full.iter_errors(value), key=lambda e: list(e.absolute_path)):
            path = ".".join(str(p) for p in error.absolute_path)
            where = f"{self.field_name}.{path}" if path else self.field_name
            found.append(FieldError(where, CoreErrorCode.INVALID_JSON_EXT, f"{where}: {error.message}"))
        return found or [FieldError(self.field_name, CoreErrorCode.INVALID_JSON_EXT, f"{self.field_name} is invalid")]
