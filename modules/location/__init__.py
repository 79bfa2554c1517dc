"""The administrative hierarchy (Province / Commune / Colline…) and user scoping."""

from core.module import ModuleSpec

MODULE = ModuleSpec(
    name="location",
    version="0.1.0",
    app="modules.location",
    plugin="modules.location.plugin",
    hookspecs="modules.location.hookspecs",
    requires={"core": ">=0.1,<0.2"},
    description=__doc__ or "",
    config_schema={
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "levels": {
                "description": "Level names from the top down; a location's parent is one level up.",
                "type": "array",
                "items": {"type": "string", "minLength": 1, "maxLength": 50},
                "minItems": 1,
                "uniqueItems": True,
                "default": ["Province", "Commune", "Colline"],
            },
            "import_chunk_size": {
                "description": "Rows written per statement by the CSV import.",
                "type": "integer",
                "minimum": 10,
                "maximum": 100000,
                "default": 1000,
            },
        },
    },
)
