"""Benefit plans, targeting (eligibility criteria and previews), enrollment and beneficiaries."""

from core.approvals import APPROVALS_CONFIG_SCHEMA
from core.module import ModuleSpec

MODULE = ModuleSpec(
    name="social_protection",
    version="0.1.0",
    app="modules.social_protection",
    plugin="modules.social_protection.plugin",
    hookspecs="modules.social_protection.hookspecs",
    requires={"core": ">=0.1,<0.2", "location": ">=0.1,<1.0", "individual": ">=0.1,<1.0"},
    description=__doc__ or "",
    config_schema={
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "enrollment_chunk_size": {
                "description": "Beneficiaries written per statement by enrollment and bulk status changes.",
                "type": "integer", "minimum": 1000, "maximum": 1000000, "default": 100000,
            },
            "preview_sample_size": {"type": "integer", "minimum": 0, "maximum": 100, "default": 10},
            # e.g. {"social_protection.enroll": "ENROLMENT_CHECKERS"}; actions: enroll,
            # change_status, close_plan, resolve_duplicates
            "approvals": APPROVALS_CONFIG_SCHEMA,
        },
    },
)
