"""Benchmark stages, one file per module.

Files are imported in the modules' dependency order, so a stage may use data that an earlier
module's stage loaded (declared with ``needs=``).
"""

# Dependency order, not alphabetical: a stage may name only stages registered before it.
# isort: off
from bench.stages import location  # noqa: F401
from bench.stages import individual  # noqa: F401
from bench.stages import social_protection  # noqa: F401
from bench.stages import payroll  # noqa: F401
from bench.stages import reconciliation  # noqa: F401
from bench.stages import grievance  # noqa: F401
from bench.stages import http  # noqa: F401  (last: it reads what the others loaded)
# isort: on
