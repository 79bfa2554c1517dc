"""The base every mutation uses: permission, mutation log, typed errors, one transaction."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import graphene
from django.utils import timezone
from graphene import relay

from core.errors import FieldError, ServiceError
from core.graphql.permissions import check_permission, mark
from core.graphql.types import MutationError
from core.history import acting_as
from core.models import MutationLog

log = logging.getLogger("coremis.mutations")

SECRET_INPUTS = frozenset({"password", "new_password", "token", "refresh_token"})


def _loggable(value: Any, hidden: frozenset[str] = SECRET_INPUTS) -> Any:
    if isinstance(value, dict):
        return {k: ("***" if k in hidden else _loggable(v, hidden)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_loggable(v, hidden) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


class CoreMutation(relay.ClientIDMutation):
    """Subclasses set ``permission`` and implement ``perform(info, user, **input) -> dict``.

    ``perform`` runs in one transaction whose changes history attributes to the user and to
    the mutation log entry. A :class:`core.errors.ServiceError` rolls it back and comes out as
    ``errors: [{field, code, message}]`` with status 1 in ``mutationLogs``; success returns the
    changed objects directly and status 2.
    """

    class Meta:
        abstract = True

    class Input:
        client_mutation_label = graphene.String()

    errors = graphene.List(graphene.NonNull(MutationError), required=True)

    permission: ClassVar[str] = ""
    # Inputs the mutation log keeps as "***", beyond the passwords and tokens every mutation
    # hides: settings no query may return must not come back through ``mutationLogs`` either.
    unlogged_inputs: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def Field(cls, *args: Any, **kwargs: Any) -> graphene.Field:
        if not cls.permission:
            raise TypeError(f"{cls.__name__} must declare the permission it needs")
        return mark(super().Field(*args, **kwargs), cls.permission)

    @classmethod
    def perform(cls, info: Any, user: Any, **data: Any) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def mutate(cls, root: Any, info: Any, input: dict[str, Any]) -> Any:
        user = check_permission(info, cls.permission)
        data = dict(input)
        client_id = data.pop("client_mutation_id", None)
        label = data.pop("client_mutation_label", None)
        entry = MutationLog.objects.create(
            mutation_name=cls._meta.name.removesuffix("Payload"),
            client_mutation_id=client_id,
            client_mutation_label=label,
            json_content=_loggable(data, SECRET_INPUTS | cls.unlogged_inputs),
            user=user,
        )
        try:
            with acting_as(user, mutation=str(entry.pk)):
                output = cls.perform(info, user, **data)
        except ServiceError as exc:
            errors = exc.errors
            _close(entry, MutationLog.ERROR, error=[_as_dict(e) for e in errors])
            return cls(errors=[MutationError(**_as_dict(e)) for e in errors], client_mutation_id=client_id)
        except Exception as exc:
            log.exception("mutation crashed", extra={"mutation": entry.mutation_name})
            _close(entry, MutationLog.ERROR, error=[{"code": "INTERNAL", "message": repr(exc)}])
            raise
        affected = [str(v.pk) for v in output.values() if hasattr(v, "pk")]
        _close(entry, MutationLog.SUCCESS, affected=affected)
        return cls(errors=[], client_mutation_id=client_id, **output)


def _as_dict(error: FieldError) -> dict[str, Any]:
    return {"field": error.field, "code": error.code, "message": error.message}


def _close(entry: MutationLog, status: int, *, error: Any = None, affected: Any = None) -> None:
    MutationLog.objects.filter(pk=entry.pk).update(
        status=status, error=error, affected_ids=affected, finished_date_time=timezone.now()
    )
