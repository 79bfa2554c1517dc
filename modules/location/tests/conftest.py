from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from modules.location.models import Location
from modules.location.services import create_location


@pytest.fixture
def tree(admin_user: Any) -> dict[str, Location]:
    """Two provinces, three communes, four collines; keys are the codes."""
    made: dict[str, Location] = {}

    def add(code: str, name: str, type_: str, parent: str | None = None) -> None:
        made[code] = create_location(
            admin_user, code=code, name=name, type=type_,
            parent_id=made[parent].pk if parent else None,
        )

    add("P1", "Bujumbura", "Province")
    add("P2", "Gitega", "Province")
    add("C11", "Mukaza", "Commune", "P1")
    add("C12", "Ntahangwa", "Commune", "P1")
    add("C21", "Giheta", "Commune", "P2")
    add("H111", "Rohero", "Colline", "C11")
    add("H112", "Buyenzi", "Colline", "C11")
    add("H121", "Kamenge", "Colline", "C12")
    add("H211", "Kiremba", "Colline", "C21")
    return made


@pytest.fixture
def many_collines(tree: dict[str, Location], admin_user: Any) -> Callable[[int], None]:
    def make(count: int) -> None:
        parent = tree["C11"]
        Location.objects.bulk_create([
            Location(code=f"X{i:04d}", name=f"Colline {i:04d}", type="Colline", level=2,
                     parent=parent, path="", user_created=admin_user, user_updated=admin_user)
            for i in range(count)
        ])
        # paths derive from ids, which exist only now
        for loc in Location.objects.filter(code__startswith="X"):
            Location.objects.filter(pk=loc.pk).update(path=parent.path + loc.pk.hex + "/")

    return make
