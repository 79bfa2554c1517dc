"""Demo registry for ``make run``: a few households and their members in one colline, so the
individual and group screens (coremis's API and openIMIS's frontend) have people to show."""

from __future__ import annotations

import datetime
from typing import Any

from modules.individual import services
from modules.individual.models import Group, Individual

HOUSEHOLDS = [
    ("DEMO-HH-001", "permanent", [("Jean", "Ndayishimiye", "M", 1980, "HEAD"), ("Aline", "Ndayishimiye", "F", 1984, "SPOUSE"),
                                  ("Eric", "Ndayishimiye", "M", 2010, "SON")]),
    ("DEMO-HH-002", "semi_permanent", [("Claudine", "Niyonzima", "F", 1975, "HEAD"), ("Divine", "Niyonzima", "F", 2005, "DAUGHTER")]),
    ("DEMO-HH-003", "temporary", [("Pierre", "Hakizimana", "M", 1968, "HEAD"), ("Rose", "Hakizimana", "F", 1970, "SPOUSE"),
                                  ("Fabrice", "Hakizimana", "M", 1999, "SON"), ("Grace", "Hakizimana", "F", 2012, "DAUGHTER")]),
]


def seed_demo_registry(actor: Any) -> int:
    if Individual.all_objects.filter(last_name__in=[m[1] for _, _, ms in HOUSEHOLDS for m in ms]).exists():
        return 0
    from modules.location.models import Location

    colline = Location.objects.filter(level=2, is_deleted=False).order_by("code").first()
    location_id = colline.pk if colline else None
    created = 0
    for code, house_type, members in HOUSEHOLDS:
        group = services.create_group(actor, code=code, location_id=location_id, json_ext={"house_type": house_type})
        for index, (first, last, sex, year, role) in enumerate(members):
            person = services.create_individual(
                actor, first_name=first, last_name=last, dob=datetime.date(year, 3, 1 + index), sex=sex,
                location_id=location_id,
                json_ext={"national_id": f"{code[-3:]}-{index:04d}", "vulnerability_score": 40 + 7 * index})
            services.add_member(actor, group_id=group.pk, individual_id=person.pk, role=role)
            created += 1
    return created + Group.objects.filter(code__startswith="DEMO-HH-").count()
