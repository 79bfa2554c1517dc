"""The manifest a module declares so the loader can check it before Django starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModuleSpec:
    """What a module tells the loader about itself.

    ``app`` is the Django app (a dotted path, usually the package itself); ``plugin`` is the
    dotted path of the object registered with pluggy (usually ``<package>.plugin``);
    ``hookspecs`` is the dotted path of a module's *own* hookspecs (events other modules may
    implement), if it owns any. ``requires`` maps ``core`` or a module name to a version range
    in PEP 440 syntax (``">=0.1,<1.0"``). ``config_schema`` is the JSON Schema of the module's
    section in ``modules_config.json``; defaults declared in it are applied.
    """

    name: str
    version: str
    app: str
    plugin: str | None = None
    hookspecs: str | None = None
    requires: dict[str, str] = field(default_factory=dict)
    config_schema: dict[str, Any] = field(default_factory=lambda: {"type": "object"})
    description: str = ""
