"""The old path of :mod:`core.custom_filters` (filters over ``json_ext`` are not GraphQL:
targeting and payroll rules use them too). Kept for the modules until the coordinator removes
it with ``core/transition.py``."""

from core.custom_filters import *  # noqa: F403
from core.custom_filters import CustomFilterError, apply, parse  # noqa: F401
