"""Every extension point of the core, in one place.

A module adds to the system only by implementing these hooks (with ``core.hooks.hookimpl``).
Each spec is a typed function with an empty body; its docstring says when it is called and
what the core does with the result. Hooks grow by adding arguments, which implementations
may ignore, so adding one never breaks a module.

Events a module owns (for example "individuals were created") are declared as that module's
own hookspecs (``ModuleSpec.hookspecs``), following the same rules: ``after_*`` hooks fire on
transaction commit, through :func:`core.events.announce` (a listener that fails gets the event
again from a job); ``validate_*`` hooks run inside the transaction and may veto by raising a
``core.errors.ServiceError``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from django.db.models import QuerySet
    from django.urls import URLPattern, URLResolver

    from core.approvals import ApprovalAction
    from core.errors import FieldError
    from core.graphql.types import ContributedField
    from core.jobs import JobContext
    from core.permissions import Permission
    from core.uploads import UploadPurpose

hookspec = pluggy.HookspecMarker("coremis")


@hookspec
def coremis_permissions() -> list[Permission]:
    """The permission codes the module declares: the constants of its ``permissions.py``
    (``return declared(permissions)``, see :mod:`core.permissions`).

    Called once when the permission registry is first used. Codes are
    ``<module>.<noun>.<verb>``; one outside the module's namespace, or one declared twice,
    stops the process.
    """


@hookspec
def coremis_graphql_query() -> type | None:
    """A ``graphene.ObjectType`` whose fields join the root ``Query``.

    Every field must declare its permission (see ``core.graphql.permissions``); the schema
    refuses to build otherwise, and two modules defining the same field stop the process.
    """


@hookspec
def coremis_graphql_mutation() -> type | None:
    """A ``graphene.ObjectType`` whose fields join the root ``Mutation`` (same rules as
    :func:`coremis_graphql_query`)."""


@hookspec
def coremis_graphql_types() -> list[type]:
    """Extra GraphQL types to include even when no root field reaches them yet."""


@hookspec
def coremis_urls() -> list[URLPattern | URLResolver]:
    """URL routes (uploads, downloads, webhooks) mounted under ``/api/<module>/``.

    Returned patterns are included under the module's own prefix, so two modules cannot
    collide.
    """


@hookspec
def coremis_upload_purposes() -> list[UploadPurpose]:
    """What the module accepts files for through ``POST /api/upload?purpose=<code>``:
    ``[UploadPurpose("individual.import", permission=IMPORT_START, description=...)]``.

    Called once when the first file arrives. Codes must start with the module's name and a
    dot, and the permission must be a declared one; the upload is refused for any purpose
    no enabled module declares, and for a user without the purpose's permission.
    """


@hookspec
def coremis_jobs() -> dict[str, Callable[[JobContext], Any]]:
    """Background job kinds the module runs: ``{"location.import": handler}``.

    A handler receives a :class:`core.jobs.JobContext` (the job row, its parameters, a
    progress reporter) and returns a JSON-serialisable result. Kinds must start with the
    module's name and a dot.
    """


@hookspec
def coremis_schedules() -> list[dict[str, Any]]:
    """Periodic jobs: ``[{"kind": "location.rebuild_paths", "cron": "0 3 * * *", "params": {}}]``.

    The scheduler process enqueues them; the kind must be one of the module's job kinds. A
    handler that found nothing to do says so with ``{core.jobs.NOTHING_TO_DO: True}`` in its
    result, and the run then logs only at DEBUG.
    """


@hookspec
def coremis_seed_demo(stdout: Any, actor: Any) -> None:
    """Create the module's demo data idempotently (``make run`` calls it on every start).

    ``actor`` is the system actor (``core.actors.system_actor``): pass it to the services that
    write the data, so they check it like anyone and history names it.
    """


@hookspec
def coremis_health_checks() -> dict[str, Callable[[], tuple[bool, str]]]:
    """Extra checks for ``/health``: ``{name: check}``; a check returns (ok, detail)."""


@hookspec
def coremis_approval_actions() -> dict[str, ApprovalAction]:
    """Actions deployers may put behind maker-checker approval:
    ``{"social_protection.enroll": ApprovalAction(execute=...)}``.

    Names must start with the module's name and a dot. A deployment routes an action to a
    task group in the module's ``approvals`` configuration (see
    ``core.approvals.APPROVALS_CONFIG_SCHEMA``); the module then calls
    ``core.approvals.services.request_approval`` instead of acting, and the core runs
    ``execute`` exactly once when the group's completion policy is met.
    """


# --- users and their location scope ------------------------------------------------------------
# The core owns users; the module that scopes people to places (``location``) tells it, through
# these hooks, who an administrator may see and which places they may hand out. With no
# implementation, users are not scoped and a ``locations`` input is refused.


@hookspec(firstresult=True)
def coremis_users_visible_to(actor: Any, queryset: QuerySet) -> QuerySet | None:
    """``queryset`` (of users) limited to those ``actor`` may see and manage: users whose whole
    location scope lies within the actor's.

    The core applies it to the ``users`` list, to ``node(id:)`` and before every change to a
    user, so a user outside the actor's scope is "not found" everywhere.
    """


@hookspec(firstresult=True)
def coremis_users_at_location(queryset: QuerySet, location_id: Any) -> QuerySet | None:
    """Users of ``queryset`` scoped to ``location_id`` or to a place under it (the ``users``
    filter ``location_Uuid``)."""


@hookspec
def coremis_user_location_problems(actor: Any, location_ids: list[Any], field: str) -> list[FieldError]:
    """Why ``actor`` may not scope a user to exactly ``location_ids`` (unknown places, places
    outside the actor's own scope, …), as errors on ``field``; empty when they may.

    Called before anything is written, so every problem of a request is reported at once.
    """


@hookspec(firstresult=True)
def coremis_set_user_locations(user: Any, location_ids: list[Any]) -> bool | None:
    """Scope ``user`` to exactly ``location_ids`` (already checked with
    :func:`coremis_user_location_problems`), inside the caller's transaction; return True."""


@hookspec
def coremis_user_fields() -> dict[str, ContributedField]:
    """Extra GraphQL fields of ``UserGQLType`` (the ``users`` list), such as ``locations``:
    ``{name: ContributedField(field, prefetch=("location_scopes__location",))}``.

    ``prefetch`` lists the ``prefetch_related`` lookups the field's resolver reads, so a page
    of users costs the same number of queries whatever its size. Two modules adding the same
    name stop the process.
    """


@hookspec(firstresult=True)
def coremis_custom_filter_schema(actor: Any, module_name: str, object_type_name: str, uuid_of_object: Any,
                                 additional_params: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON Schema of the ``json_ext`` that ``customFilters`` filters for this object type
    (openIMIS's ``customFilters(moduleName, objectTypeName, uuidOfObject, additionalParams)``),
    or None when the object type is not the module's. ``actor`` is checked by the module: an
    object out of their scope raises ``NotFound``."""


@hookspec(firstresult=True)
def coremis_upload_workflows(actor: Any, group: str) -> list[tuple[str, str]] | None:
    """The ways an upload of openIMIS's ``group`` (``"individual"``, ``"socialProtection"``…) can
    be processed for ``actor``, as ``(name, description)`` pairs (openIMIS's ``workflow(group)``,
    listed in its upload dialogs), or None when the group is not the module's. A module answers
    an empty list to a caller who may not upload, rather than an error: the dialog asks as it
    opens."""
