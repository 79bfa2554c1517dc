"""The registry: individuals, households (groups), memberships, and the bulk import."""

from core.approvals import APPROVALS_CONFIG_SCHEMA
from core.module import ModuleSpec

_JSON_SCHEMA = {
    "description": "A JSON Schema (draft 2020-12) for json_ext; programme-defined fields.",
    "type": "object",
}

MODULE = ModuleSpec(
    name="individual",
    version="0.1.0",
    app="modules.individual",
    plugin="modules.individual.plugin",
    hookspecs="modules.individual.hookspecs",
    requires={"core": ">=0.1,<0.2", "location": ">=0.1,<1.0"},
    description=__doc__ or "",
    config_schema={
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "individual_schema": {**_JSON_SCHEMA, "default": {"type": "object"}},
            "group_schema": {**_JSON_SCHEMA, "default": {"type": "object"}},
            "unique_keys": {
                "description": "json_ext fields unique across the live registry (e.g. national_id).",
                "type": "array",
                "items": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,62}$"},
                "uniqueItems": True,
                "default": [],
            },
            # {"individual.import": "<task group>"}: an import waits for a checker's approval
            # before it writes (the key import_requires_approval it replaces is gone).
            "approvals": APPROVALS_CONFIG_SCHEMA,
            "import_chunk_size": {"type": "integer", "minimum": 100, "maximum": 200000, "default": 20000},
            "export_max_rows": {"type": "integer", "minimum": 1, "default": 2000000},
        },
    },
)
