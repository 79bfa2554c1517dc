"""Maker-checker approvals, a core service every module can put its sensitive actions behind.

A module declares actions (``coremis_approval_actions``), lets deployers route them to a task
group in ``modules_config.json`` (its schema puts :data:`APPROVALS_CONFIG_SCHEMA` under an
``approvals`` key), and calls ``core.approvals.services.needs_approval`` /
``request_approval`` where the action would otherwise run. See ``README.md`` here.

This package's top level imports no Django model, so manifests and plug-ins can import it
before Django starts.
"""

from __future__ import annotations

from typing import Any

from core.approvals.actions import ApprovalAction, ApprovalContext

# The ``approvals`` section of a module's configuration: ``{"<action>": "<task group code>"}``.
# An action listed here needs approval by that group; an action not listed runs directly.
APPROVALS_CONFIG_SCHEMA: dict[str, Any] = {
    "description": "Actions that need a checker's approval, mapped to the code of the task "
                   "group whose checkers decide.",
    "type": "object",
    "propertyNames": {"pattern": r"^[a-z][a-z0-9_]*\.[a-z0-9_.]+$"},
    "additionalProperties": {"type": "string", "minLength": 1, "maxLength": 100},
    "default": {},
}

__all__ = ["APPROVALS_CONFIG_SCHEMA", "ApprovalAction", "ApprovalContext"]
