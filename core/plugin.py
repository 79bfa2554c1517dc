"""The core's own contributions, made through the same hooks as any module's.

The loader registers this plug-in first, under the name ``core``, so the permission registry,
the job kinds and the GraphQL root read the core exactly as they read a module: no list of
the core's own codes or kinds beside the hooks, and no import of a core service by the
mechanism that calls it (``core.jobs`` knows no approval, the schema builder no root type).

Its implementations are ``tryfirst``: the core's results come before every module's
(``results_by_module`` reads them in calling order), as the core's fields open the printed
schema.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from core.hooks import hookimpl

if TYPE_CHECKING:
    from core.jobs import JobContext
    from core.permissions import Permission

@hookimpl(tryfirst=True)
def coremis_permissions() -> list[Permission]:
    from core import permissions
    from core.permissions import declared

    return declared(permissions)


@hookimpl(tryfirst=True)
def coremis_jobs() -> dict[str, Callable[[JobContext], Any]]:
    from core import events
    from core.approvals.decisions import EXECUTE_JOB_KIND, run_approved_task

    return {EXECUTE_JOB_KIND: run_approved_task, events.DELIVERY_JOB_KIND: events.deliver}


@hookimpl(tryfirst=True)
def coremis_graphql_query() -> type:
    from core.graphql.core_schema import Query

    return Query


@hookimpl(tryfirst=True)
def coremis_graphql_mutation() -> type:
    from core.graphql.core_schema import Mutation

    return Mutation
