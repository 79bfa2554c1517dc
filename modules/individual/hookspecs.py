"""Events the individual module owns. ``after_*`` hooks fire once the transaction commits;
``validate_*`` hooks run inside it and may refuse by raising ``ServiceError``."""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("coremis")


@hookspec
def individual_after_created(individual_ids: list[Any], source: str) -> None:
    """Individuals were created (``source``: "mutation" or "import:<job id>"). For a bulk
    import this fires once per chunk committed, with that chunk's ids."""


@hookspec
def individual_validate_delete(individual: Any) -> None:
    """An individual is about to be soft-deleted; raise
    ``ServiceError(IndividualErrorCode.ACTIVE_BENEFICIARY, …)`` to refuse (for example, an
    active beneficiary): ``deleteIndividual`` answers that code."""


@hookspec
def group_validate_delete(group: Any) -> None:
    """A household is about to be soft-deleted; raise
    ``ServiceError(IndividualErrorCode.ACTIVE_BENEFICIARY, …)`` to refuse."""


@hookspec
def individual_list_filters() -> dict[str, tuple[Any, Any]]:
    """Extra arguments of the ``individual`` list that another module contributes:
    ``{"benefitPlanToEnroll": (UUID(description=...), apply)}`` where
    ``apply(queryset, value) -> queryset``. Read once when the schema is built."""
