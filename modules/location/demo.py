"""Demo hierarchy shaped like a real country (5 provinces, ~40 communes, ~2,900 collines)."""

from __future__ import annotations

from typing import Any

from bench.generate import iter_locations
from core.imports import ImportMode
from modules.location.importer import import_rows
from modules.location.models import Location


def seed_demo_locations(actor: Any) -> int:
    """Write the demo hierarchy as ``actor`` (the system actor), once."""
    if Location.all_objects.exists():
        return 0
    rows = (
        {"code": code, "name": name, "type": type_, "parent_code": parent or ""}
        for code, name, type_, parent in iter_locations()
    )
    result = import_rows(rows, actor, ImportMode.ALL_OR_NOTHING, context={"seed": "demo"})
    if result.errors:
        raise RuntimeError(f"demo locations are inconsistent: {result.errors[:3]}")
    return result.created
