from __future__ import annotations

import datetime
from typing import Any

import pytest

from modules.individual import services as registry
from modules.location.models import Location
from modules.location.services import create_location


@pytest.fixture
def country(admin_user: Any) -> dict[str, Location]:
    """One province, two communes, four collines (H1..H4; H1, H2 under C1)."""
    made: dict[str, Location] = {}
    spec = [("P1", "Province", None), ("C1", "Commune", "P1"), ("C2", "Commune", "P1"),
            ("H1", "Colline", "C1"), ("H2", "Colline", "C1"), ("H3", "Colline", "C2"), ("H4", "Colline", "C2")]
    for code, type_, parent in spec:
        made[code] = create_location(admin_user, code=code, name=code, type=type_,
                                     parent_id=made[parent].pk if parent else None)
    return made


@pytest.fixture
def households(admin_user: Any, country: dict[str, Location]) -> list[Any]:
    """24 households, 3 members each, spread over H1..H4; the head's vulnerability score is
    (i * 7) % 100 so the distribution is known."""
    made = []
    for i in range(24):
        colline = country[f"H{i % 4 + 1}"]
        group = registry.create_group(admin_user, code=f"HH-{i:03d}", location_id=colline.pk)
        for j, role in enumerate(("HEAD", "SPOUSE", "SON")):
            person = registry.create_individual(
                admin_user, first_name=f"P{i}-{j}", last_name=f"Family{i:03d}",
                dob=datetime.date(1970 + j * 15, 1 + i % 12, 1), sex="F" if j == 1 else "M",
                location_id=colline.pk,
                json_ext={"vulnerability_score": (i * 7) % 100, "national_id": f"N-{i:03d}-{j}"},
            )
            registry.add_member(admin_user, group_id=group.pk, individual_id=person.pk, role=role,
                                recipient_type="PRIMARY" if j == 0 else None)
        made.append(group)
    return made
