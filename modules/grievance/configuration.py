"""The grievance module's configuration: its JSON Schema (checked by the loader) and the typed
view the services read (:func:`config`), with the rules JSON Schema cannot say (unique
category paths, flags and workflows that exist) checked when the app starts.

Categories are a tree; a ticket names one by its path, ``paiement|non_recu``. A child inherits
what it does not say from its parent (priority, resolution time, handler roles, workflow) and
is at least as closed: the access rules of every level of its path apply, as do those of each
of a ticket's flags (the most restrictive wins).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from core.approvals import APPROVALS_CONFIG_SCHEMA
from core.secrets import SECRET_PREFIX_SCHEMA

PRIORITIES = ("Critical", "High", "Normal", "Low")  # highest first; the openIMIS frontend's values
SEPARATOR = "|"
RESOLUTION_TIME = r"^(0|[1-9][0-9]?),([0-9]|1[0-9]|2[0-3])$"
# Ticket fields a restricted reader may be shown (GraphQL names, as the frontend asks for them).
TICKET_FIELDS = ("code", "title", "description", "status", "priority", "category", "flags", "channel",
                 "dateOfIncident", "dateCreated", "dueDate", "resolution", "reporter", "attendingStaff",
                 "location", "jsonExt", "comments", "attachments", "contact", "payment")
DEFAULT_VISIBLE = ("code", "status", "priority", "category", "dateCreated", "dueDate")
ANONYMISABLE = ("reporter", "contact", "description", "title", "jsonExt")

_ROLES = {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 100}, "uniqueItems": True}
_ACCESS = {
    "description": "Who may read tickets of this category or flag; with it, nobody else sees them.",
    "type": "object", "additionalProperties": False,
    "properties": {"read": {**_ROLES, "description": "roles that read everything"},
                   "restricted_read": {**_ROLES, "description": "roles that read only visible_fields"}},
}
_FIELDS = {"type": "array", "items": {"enum": list(TICKET_FIELDS)}, "uniqueItems": True}
_DURATION = {"type": "string", "pattern": RESOLUTION_TIME, "description": '"days,hours", as openIMIS stores it'}
_PRIORITY = {"enum": list(PRIORITIES)}
_CONDITION = {
    "description": "A condition on the ticket: {field, equals | in | contains}",
    "type": "object", "additionalProperties": False, "required": ["field"],
    "properties": {"field": {"enum": ["priority", "channel", "category", "flags", "status"]},
                   "equals": {"type": "string"}, "in": {"type": "array", "items": {"type": "string"}},
                   "contains": {"type": "string"}},
}
STEP_ACTIONS = ("payment_status", "name_new_recipient", "notify")

CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "$defs": {"category": {
        "type": "object", "additionalProperties": False, "required": ["slug"],
        "properties": {
            "slug": {"type": "string", "pattern": "^[a-z0-9_]{1,50}$"},
            "name": {"type": "string", "maxLength": 200},
            "priority": _PRIORITY,
            "resolution_time": _DURATION,
            "default_flags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
            "handler_roles": {**_ROLES, "description": "roles whose holders handle the category"},
            "access": _ACCESS,
            "visible_fields": _FIELDS,
            "anonymised_fields": {"type": "array", "items": {"enum": list(ANONYMISABLE)}, "uniqueItems": True},
            "workflow": {"type": "string", "pattern": "^[a-z0-9_]{1,50}$"},
            "children": {"type": "array", "items": {"$ref": "#/$defs/category"}},
        },
    }},
    "properties": {
        "code_prefix": {"type": "string", "pattern": "^[A-Z][A-Z0-9]{0,9}$", "default": "GRV",
                        "description": "tickets are coded <prefix>-<year>-<number>"},
        "default_priority": {**_PRIORITY, "default": "Normal"},
        "default_resolution_time": {**_DURATION, "default": "5,0"},
        "categories": {"type": "array", "items": {"$ref": "#/$defs/category"}, "default": []},
        "flags": {"type": "array", "default": [], "items": {
            "type": "object", "additionalProperties": False, "required": ["code"],
            "properties": {"code": {"type": "string", "pattern": "^[A-Z0-9_]{1,50}$"},
                           "name": {"type": "string", "maxLength": 200}, "priority": _PRIORITY,
                           "access": _ACCESS, "visible_fields": _FIELDS}}},
        "channels": {"type": "array", "items": {"type": "string", "pattern": "^[a-z0-9_]{1,50}$"},
                     "uniqueItems": True, "default": []},
        "workflows": {"type": "object", "default": {}, "propertyNames": {"pattern": "^[a-z0-9_]{1,50}$"},
                      "additionalProperties": {
            "type": "object", "additionalProperties": False, "required": ["steps"],
            "properties": {"name": {"type": "string"}, "steps": {"type": "array", "minItems": 1, "items": {
                "type": "object", "additionalProperties": False, "required": ["code", "role"],
                "properties": {"code": {"type": "string", "pattern": "^[a-z0-9_]{1,50}$"},
                               "name": {"type": "string"}, "role": {"type": "string", "minLength": 1},
                               "days": {"type": "integer", "minimum": 0, "maximum": 365, "default": 2},
                               "condition": _CONDITION, "action": {"enum": list(STEP_ACTIONS)}}}}}}},
        "escalation": {"type": "object", "additionalProperties": False, "default": {}, "properties": {
            "national_lead_role": {"type": "string", "default": "Grievance national lead"},
            "interval": {**_DURATION, "default": "1,0",
                         "description": "how long an escalated ticket waits before it escalates again"},
            "cron": {"type": "string", "default": "*/5 * * * *"}}},
        "notifications": {"type": "object", "additionalProperties": False, "default": {}, "properties": {
            "channels": {"type": "array", "items": {"type": "string"}, "default": ["email"]},
            "max_attempts": {"type": "integer", "minimum": 1, "maximum": 50, "default": 6},
            "retry_seconds": {"type": "integer", "minimum": 1, "maximum": 86400, "default": 60}}},
        "email": {"type": "object", "additionalProperties": False, "default": {}, "properties": {
            "host": {"type": "string", "default": ""}, "port": {"type": "integer", "default": 25},
            "from_address": {"type": "string", "default": "grievances@coremis.local"},
            "starttls": {"type": "boolean", "default": False},
            "username": {"type": "string"}, "password": {"type": "object"},
            "timeout": {"type": "number", "minimum": 1, "maximum": 120, "default": 30}}},
        "attachments": {"type": "object", "additionalProperties": False, "default": {}, "properties": {
            "max_mb": {"type": "number", "minimum": 0.01, "maximum": 1024, "default": 10},
            "types": {"type": "array", "items": {"type": "string"},
                      "default": ["application/pdf", "image/jpeg", "image/png", "audio/mpeg", "audio/x-wav"]}}},
        "json_ext_schema": {"type": "object", "default": {"type": "object"},
                            "description": "JSON Schema of a ticket's jsonExt"},
        "export_max_rows": {"type": "integer", "minimum": 1, "default": 500000},
        "approvals": APPROVALS_CONFIG_SCHEMA,
        "secret_env_prefix": {**SECRET_PREFIX_SCHEMA, "default": "COREMIS_GRIEVANCE_"},
    },
}


@dataclass(frozen=True)
class Access:
    read: frozenset[str]
    restricted_read: frozenset[str]
    visible_fields: tuple[str, ...]


@dataclass(frozen=True)
class Category:
    path: str
    name: str
    priority: str
    resolution_time: str
    default_flags: tuple[str, ...]
    handler_roles: tuple[str, ...]
    access: tuple[Access, ...]  # one per restricted level of the path, the root first
    anonymised_fields: frozenset[str]
    workflow: str | None
    parent: str | None


@dataclass(frozen=True)
class Flag:
    code: str
    name: str
    priority: str | None
    access: Access | None


@dataclass(frozen=True)
class Step:
    code: str
    name: str
    role: str
    days: int
    condition: dict[str, Any] | None
    action: str | None


@dataclass(frozen=True)
class Workflow:
    code: str
    name: str
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Config:
    code_prefix: str
    default_priority: str
    default_resolution_time: str
    categories: dict[str, Category]
    flags: dict[str, Flag]
    channels: tuple[str, ...]
    workflows: dict[str, Workflow]
    national_lead_role: str
    escalation_interval: str
    escalation_cron: str
    notification_channels: tuple[str, ...]
    max_attempts: int
    retry_seconds: int
    email: dict[str, Any]
    max_attachment_bytes: int
    attachment_types: tuple[str, ...]
    json_ext_schema: dict[str, Any]
    export_max_rows: int
    roles: frozenset[str] = field(default_factory=frozenset)  # every role the configuration names


class ConfigProblem(ValueError):
    """A rule of the configuration JSON Schema cannot express; the message names the place."""


def _access(raw: dict[str, Any] | None, visible: list[str] | None) -> Access | None:
    if raw is None:
        return None
    return Access(frozenset(raw.get("read", [])), frozenset(raw.get("restricted_read", [])),
                  tuple(visible) if visible is not None else DEFAULT_VISIBLE)


def parse(raw: dict[str, Any]) -> Config:
    """The typed configuration; :class:`ConfigProblem` names what is inconsistent."""
    flags: dict[str, Flag] = {}
    for item in raw.get("flags", []):
        if item["code"] in flags:
            raise ConfigProblem(f"flags: '{item['code']}' is declared twice")
        flags[item["code"]] = Flag(item["code"], item.get("name") or item["code"], item.get("priority"),
                                   _access(item.get("access"), item.get("visible_fields")))
    workflows: dict[str, Workflow] = {}
    for code, item in raw.get("workflows", {}).items():
        steps = tuple(Step(s["code"], s.get("name") or s["code"], s["role"], int(s.get("days", 2)),
                           s.get("condition"), s.get("action")) for s in item["steps"])
        if len({s.code for s in steps}) != len(steps):
            raise ConfigProblem(f"workflows.{code}: two steps share a code")
        workflows[code] = Workflow(code, item.get("name") or code, steps)
    categories: dict[str, Category] = {}
    default_time = raw.get("default_resolution_time", "5,0")

    def walk(items: list[dict[str, Any]], parent: Category | None, where: str) -> None:
        for index, item in enumerate(items):
            here = f"{where}[{index}]"
            path = f"{parent.path}{SEPARATOR}{item['slug']}" if parent else item["slug"]
            if path in categories:
                raise ConfigProblem(f"{here}: the category '{path}' is declared twice")
            unknown = [f for f in item.get("default_flags", []) if f not in flags]
            if unknown:
                raise ConfigProblem(f"{here}.default_flags: no flag {', '.join(unknown)} is declared")
            workflow = item.get("workflow", parent.workflow if parent else None)
            if workflow is not None and workflow not in workflows:
                raise ConfigProblem(f"{here}.workflow: no workflow '{workflow}' is declared")
            own = _access(item.get("access"), item.get("visible_fields"))
            if own is None and item.get("visible_fields") is not None:
                raise ConfigProblem(f"{here}.visible_fields: only a category with access rules has restricted readers")
            category = Category(
                path=path, name=item.get("name") or item["slug"],
                priority=item.get("priority", parent.priority if parent else raw.get("default_priority", "Normal")),
                resolution_time=item.get("resolution_time", parent.resolution_time if parent else default_time),
                default_flags=tuple(item.get("default_flags", parent.default_flags if parent else ())),
                handler_roles=tuple(item.get("handler_roles", parent.handler_roles if parent else ())),
                access=(parent.access if parent else ()) + ((own,) if own else ()),
                anonymised_fields=frozenset(item.get("anonymised_fields", parent.anonymised_fields if parent else ())),
                workflow=workflow, parent=parent.path if parent else None,
            )
            categories[path] = category
            walk(item.get("children", []), category, f"{here}.children")

    walk(raw.get("categories", []), None, "categories")
    escalation = raw.get("escalation", {})
    notifications = raw.get("notifications", {})
    attachments = raw.get("attachments", {})
    config = Config(
        code_prefix=raw.get("code_prefix", "GRV"), default_priority=raw.get("default_priority", "Normal"),
        default_resolution_time=default_time, categories=categories, flags=flags,
        channels=tuple(raw.get("channels", [])), workflows=workflows,
        national_lead_role=escalation.get("national_lead_role", "Grievance national lead"),
        escalation_interval=escalation.get("interval", "1,0"), escalation_cron=escalation.get("cron", "*/5 * * * *"),
        notification_channels=tuple(notifications.get("channels", ["email"])),
        max_attempts=int(notifications.get("max_attempts", 6)), retry_seconds=int(notifications.get("retry_seconds", 60)),
        email=dict(raw.get("email", {})), max_attachment_bytes=int(float(attachments.get("max_mb", 10)) * 1024 * 1024),
        attachment_types=tuple(attachments.get("types", [])), json_ext_schema=raw.get("json_ext_schema") or {"type": "object"},
        export_max_rows=int(raw.get("export_max_rows", 500000)),
    )
    roles = {config.national_lead_role}
    for category in categories.values():
        roles.update(category.handler_roles)
        for access in category.access:
            roles.update(access.read | access.restricted_read)
    for flag in flags.values():
        if flag.access:
            roles.update(flag.access.read | flag.access.restricted_read)
    for workflow in workflows.values():
        roles.update(step.role for step in workflow.steps)
    return Config(**{**config.__dict__, "roles": frozenset(roles)})


@cache
def config() -> Config:
    """The deployment's configuration, parsed once per process."""
    from core.loader import module_config

    return parse(module_config("grievance"))


def duration_hours(value: str) -> int:
    """``"3,12"`` (days, hours) as hours."""
    match = re.match(RESOLUTION_TIME, value or "")
    if not match:
        raise ValueError(f"{value!r} is not 'days,hours'")
    return int(match.group(1)) * 24 + int(match.group(2))


def highest_priority(*priorities: str | None) -> str:
    given = [p for p in priorities if p in PRIORITIES]
    return min(given, key=PRIORITIES.index) if given else "Normal"
