"""The individual module's test plug-in (registered by the core's, see ``core/testing``).

``slow_import_batches`` is the seam the crash tests use to kill a worker in the middle of an
import's commit: a trigger on the batch markers, so each batch stays open a moment after its
rows are written, inside its transaction. The production code has no pause of its own.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

SLOW_BATCHES = "coremis_test_slow_import_batch"


def slow_batches_sql(seconds: float) -> str:
    """SQL making every import batch wait ``seconds`` before it commits (0: not any more)."""
    if not seconds:
        return (f"DROP TRIGGER IF EXISTS {SLOW_BATCHES} ON individual_importbatch; "
                f"DROP FUNCTION IF EXISTS {SLOW_BATCHES}()")
    return (f"CREATE OR REPLACE FUNCTION {SLOW_BATCHES}() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN PERFORM pg_sleep({float(seconds)}); RETURN NULL; END $$; "
            f"DROP TRIGGER IF EXISTS {SLOW_BATCHES} ON individual_importbatch; "
            f"CREATE TRIGGER {SLOW_BATCHES} AFTER INSERT ON individual_importbatch "
            f"FOR EACH ROW EXECUTE FUNCTION {SLOW_BATCHES}()")


@pytest.fixture(scope="session")
def slow_import_batches() -> Callable[[float], str]:
    """``slow_import_batches(0.5)``: the SQL (run it on the database the workers use) that
    keeps each batch of an import open half a second after its rows, before its commit;
    ``slow_import_batches(0)`` undoes it."""
    return slow_batches_sql
