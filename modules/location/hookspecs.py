"""Events the location module owns; modules that keep rows per location implement them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from modules.location.models import Location

hookspec = pluggy.HookspecMarker("coremis")


@hookspec
def location_validate_delete(location: Location) -> None:
    """Runs inside the delete's transaction; raise
    ``ServiceError(LocationErrorCode.LOCATION_IN_USE, …)`` to refuse (for example, because
    people are still registered in that location): ``deleteLocation`` answers that code."""
