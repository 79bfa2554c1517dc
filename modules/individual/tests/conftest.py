from __future__ import annotations

import datetime
from typing import Any

import pytest

from modules.individual import services
from modules.location.models import Location
from modules.location.services import create_location


@pytest.fixture
def places(admin_user: Any) -> dict[str, Location]:
    made: dict[str, Location] = {}
    for code, type_, parent in (("P1", "Province", None), ("C1", "Commune", "P1"), ("C2", "Commune", "P1"),
                                ("H1", "Colline", "C1"), ("H2", "Colline", "C2")):
        made[code] = create_location(admin_user, code=code, name=f"Place {code}", type=type_,
                                     parent_id=made[parent].pk if parent else None)
    return made


@pytest.fixture
def person(admin_user: Any, places: dict[str, Location]) -> Any:
    def make(first: str, last: str, born: str = "1990-01-01", place: str = "H1", **ext: Any) -> Any:
        return services.create_individual(
            admin_user, first_name=first, last_name=last, dob=datetime.date.fromisoformat(born),
            sex="F", location_id=places[place].pk, json_ext=ext,
        )

    return make
