"""Payment cycles, payment plans, payment points (providers), payrolls and payment instructions."""

from core.approvals import APPROVALS_CONFIG_SCHEMA
from core.module import ModuleSpec
from core.secrets import OUTBOUND_URLS_SCHEMA, SECRET_PREFIX_SCHEMA

MODULE = ModuleSpec(
    name="payroll",
    version="0.1.0",
    app="modules.payroll",
    plugin="modules.payroll.plugin",
    hookspecs="modules.payroll.hookspecs",
    requires={
        "core": ">=0.1,<0.2",
        "location": ">=0.1,<1.0",
        "individual": ">=0.1,<1.0",
        "social_protection": ">=0.1,<1.0",
    },
    description=__doc__ or "",
    config_schema={
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "send_batch_size": {
                "description": "Instructions handed to an adaptor per call unless the payment point sets its own.",
                "type": "integer", "minimum": 1, "maximum": 100000, "default": 1000,
            },
            "send_resume_seconds": {
                "description": "How long a payroll send that stopped short (a silent provider, unknown "
                               "outcomes) waits before it resumes by itself; doubled each time it stops "
                               "short again, up to 15 minutes.",
                "type": "integer", "minimum": 1, "maximum": 900, "default": 60,
            },
            "file_output_dir": {
                "description": "Where the file adaptor writes payment files (under MEDIA_ROOT).",
                "type": "string", "default": "payment_files",
            },
            # e.g. {"payroll.approve": "PAYROLL-CHECKERS"}
            "approvals": APPROVALS_CONFIG_SCHEMA,
            # Payment points' credentials and provider URLs (see core/secrets.py).
            "secret_env_prefix": {**SECRET_PREFIX_SCHEMA, "default": "COREMIS_PSP_"},
            "outbound_urls": OUTBOUND_URLS_SCHEMA,
        },
    },
)
