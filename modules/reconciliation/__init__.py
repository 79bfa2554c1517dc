"""Did the money arrive? Every provider statement (callbacks, polls, result files, the openIMIS
reconciliation CSV) lands in one ledger, is matched set-based against the payments ordered,
and every difference becomes a mismatch case; payrolls close only when they add up."""

from core.module import ModuleSpec

COLUMNS = ("reference", "provider_transaction_id", "amount", "currency", "status", "message", "date", "account")

POINT_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "columns": {
            "description": "Which header of the provider's file holds each field (case and spaces ignored).",
            "type": "object", "additionalProperties": False,
            "properties": {name: {"type": "string", "minLength": 1} for name in COLUMNS},
        },
        "paid_values": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "failed_values": {"type": "array", "items": {"type": "string"}},
        "ignored_values": {"description": "Status values that say nothing yet (pending).",
                           "type": "array", "items": {"type": "string"}},
        "delimiter": {"description": "Detected from the header when absent.", "type": "string",
                      "minLength": 1, "maxLength": 1},
        "encoding": {"type": "string", "default": "utf-8"},
        "date_formats": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "decimal_comma": {"description": "Amounts written 1.234,50", "type": "boolean", "default": False},
        "rule_match": {"description": "Match statement lines without a reference by amount, account and date "
                                      "(exactly one candidate payment).", "type": "boolean", "default": True},
        "date_window_days": {"description": "How many days after sending a statement line may be dated and still "
                                            "match by rule.", "type": "integer", "minimum": 0, "maximum": 90,
                             "default": 7},
        "deadline_days": {"description": "Days after sending by which the provider must report a payment "
                                         "(else NOT_REPORTED).", "type": "integer", "minimum": 1, "maximum": 365},
    },
}

MODULE = ModuleSpec(
    name="reconciliation",
    version="0.1.0",
    app="modules.reconciliation",
    plugin="modules.reconciliation.plugin",
    requires={"core": ">=0.1,<0.2", "location": ">=0.1,<1.0", "payroll": ">=0.1,<1.0"},
    description=__doc__ or "",
    config_schema={
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "points": {
                "description": "Per payment point code: how its result files are read.",
                "type": "object", "additionalProperties": POINT_SCHEMA,
            },
            "round_rule": {"description": "Refuse a new payroll of a plan for a location of round_level while the "
                                          "plan's previous payroll there is not reconciled.",
                           "type": "boolean", "default": True},
            "round_level": {"description": "The location level (type) whose payrolls are rounds.",
                            "type": "string", "default": "Commune"},
            "default_deadline_days": {"type": "integer", "minimum": 1, "maximum": 365, "default": 14},
            "pull_token_retention_days": {"description": "Days after a pull-API token expired or was revoked "
                                                         "before the daily purge deletes it (core_history keeps it).",
                                          "type": "integer", "minimum": 1, "maximum": 3650, "default": 90},
        },
    },
)
