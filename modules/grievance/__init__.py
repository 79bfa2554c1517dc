"""Complaints from every channel: tickets with comments and attachments, routed by role and
location, due by their category's resolution time, escalated when overdue, worked through
workflow templates, and kept to those who may read them when they are sensitive."""

from core.module import ModuleSpec
from modules.grievance.configuration import CONFIG_SCHEMA

MODULE = ModuleSpec(
    name="grievance",
    version="0.1.0",
    app="modules.grievance",
    plugin="modules.grievance.plugin",
    hookspecs="modules.grievance.hookspecs",
    requires={"core": ">=0.1,<0.2", "location": ">=0.1,<1.0", "individual": ">=0.1,<1.0"},
    description=__doc__ or "",
    config_schema=CONFIG_SCHEMA,
)
