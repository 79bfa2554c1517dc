"""Who handles a ticket: routing when it arrives and the next person up when it is overdue.

A ticket goes to a holder of its category's handler roles scoped to the ticket's colline,
else to its commune, else to its province, else to the least-loaded holder of those roles
anywhere. Escalation climbs from where the handler was found to the parent location (skipping
levels with no holder), and from the top to a holder of the national lead role. Among several
holders at one place the least loaded (open tickets attending) is chosen.

A :class:`Router` reads the holders, their places and their loads once, so routing 10,000
tickets or escalating 50,000 costs a handful of queries, not some per ticket; it counts what
it hands out, so one run spreads a batch over the holders instead of piling it on one.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Count

from core.models import User
from modules.grievance.models import OPEN_STATUSES, Ticket
from modules.location.models import Location, UserLocation


@dataclass(frozen=True)
class Assignment:
    user_id: Any | None
    location_id: Any | None  # where the holder was found; None: anywhere, or the national lead
    national_lead: bool = False


def ancestors(path: str) -> list[uuid.UUID]:
    """The location of ``path`` and every one above it, nearest first."""
    return [uuid.UUID(part) for part in reversed(path.strip("/").split("/")) if part]


class Router:
    def __init__(self, roles: Iterable[str], national_lead_role: str) -> None:
        self.lead_role = national_lead_role
        wanted = set(roles) | {national_lead_role}
        holders = (User.objects.filter(is_active=True, roles__name__in=wanted, roles__is_deleted=False)
                   .values_list("pk", "roles__name").distinct())
        self.by_role: dict[str, set[Any]] = defaultdict(set)
        for user_id, role in holders:
            self.by_role[role].add(user_id)
        users = set().union(*self.by_role.values()) if self.by_role else set()
        self.at: dict[Any, set[Any]] = defaultdict(set)  # location id -> users scoped exactly there
        for user_id, location_id in UserLocation.objects.filter(user_id__in=users, location__is_deleted=False
                                                                ).values_list("user_id", "location_id"):
            self.at[location_id].add(user_id)
        self.load: Counter[Any] = Counter({row["attending_staff"]: row["n"] for row in (
            Ticket.objects.filter(attending_staff__in=users, status__in=OPEN_STATUSES)
            .values("attending_staff").annotate(n=Count("id")))})
        self._paths: dict[Any, str] = {}
        self._ancestors: dict[Any, list[uuid.UUID]] = {}
        self._holders_of: dict[tuple[str, ...], set[Any]] = {}

    def path_of(self, location_id: Any) -> str:
        if location_id not in self._paths:
            self._paths[location_id] = Location.all_objects.filter(pk=location_id).values_list(
                "path", flat=True).first() or ""
        return self._paths[location_id]

    def remember_paths(self, paths: dict[Any, str]) -> None:
        self._paths.update(paths)

    def _holders(self, roles: Iterable[str]) -> set[Any]:
        key = tuple(roles)
        found = self._holders_of.get(key)
        if found is None:
            found = set()
            for role in key:
                found |= self.by_role.get(role, set())
            self._holders_of[key] = found
        return found

    def _above(self, location_id: Any) -> list[uuid.UUID]:
        places = self._ancestors.get(location_id)
        if places is None:
            places = self._ancestors[location_id] = ancestors(self.path_of(location_id))
        return places

    def _pick(self, candidates: set[Any]) -> Any:
        chosen = min(candidates, key=lambda u: (self.load[u], str(u)))
        self.load[chosen] += 1
        return chosen

    def route(self, roles: Iterable[str], location_id: Any | None) -> Assignment:
        """The handler of a new (or re-categorised) ticket."""
        holders = self._holders(roles)
        if location_id is not None:
            for place in self._above(location_id):
                here = holders & self.at.get(place, set())
                if here:
                    return Assignment(self._pick(here), place)
        if holders:
            return Assignment(self._pick(holders), None)
        return Assignment(None, None)

    def escalate(self, roles: Iterable[str], from_location_id: Any | None) -> Assignment:
        """The next person up from ``from_location_id``: a holder at a place above it, else the
        national lead."""
        holders = self._holders(roles)
        if from_location_id is not None:
            for place in self._above(from_location_id)[1:]:
                here = holders & self.at.get(place, set())
                if here:
                    return Assignment(self._pick(here), place)
        leads = self.by_role.get(self.lead_role, set())
        if leads:
            return Assignment(self._pick(leads), None, national_lead=True)
        return Assignment(None, None, national_lead=True)

    def holds(self, user_id: Any, role: str) -> bool:
        return user_id in self.by_role.get(role, set())
