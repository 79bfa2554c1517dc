"""The base every mutation uses: permission, input checks, mutation log, idempotency, typed
errors, one transaction."""

from __future__ import annotations

import json
import logging
import math
import time
from typing import Any, ClassVar

import graphene
from django.apps import apps
from django.db import IntegrityError, models, transaction
from django.utils import timezone
from graphene import relay
from graphql import GraphQLError

from core.errors import CoreErrorCode, ErrorCode, FieldError, ServiceError
from core.graphql.errors import mutation_error_type, public_code
from core.graphql.inputs import NOT_TEXT, NOT_TEXT_REASON, check_arguments, is_storable_text
from core.graphql.permissions import check_permission, mark
from core.graphql.types import MutationError
from core.history import acting_as
from core.http import classify, unavailable
from core.models import MutationLog

log = logging.getLogger("coremis.mutations")

SECRET_INPUTS = frozenset({"password", "new_password", "token", "refresh_token"})

# What the mutation log keeps of an input: enough to see what was asked, never the whole of
# a megabyte-sized jsonExt someone sent (refused or not).
MAX_LOGGED_TEXT = 1000  # characters of one string
MAX_LOGGED_VALUE = 16 * 1024  # bytes of JSON of one input field
MAX_LOGGED_TOTAL = 64 * 1024  # bytes of JSON of the whole input
TRUNCATED = "_truncated"

MAX_CLIENT_FIELD = 255  # the mutation log's columns

# How long a replay waits for the first request with its key to finish.
REPLAY_WAIT_SECONDS = 30.0


def _text(value: str) -> str:
    # The log must be storable even when the input is refused for what it holds (jsonb
    # cannot hold a NUL or a lone surrogate): the character is shown as an escape, not kept.
    value = NOT_TEXT.sub(lambda m: f"\\u{ord(m.group(0)):04x}", value)
    if len(value) > MAX_LOGGED_TEXT:
        return f"{value[:MAX_LOGGED_TEXT]}… [truncated: {len(value)} characters]"
    return value


def _loggable(value: Any, hidden: frozenset[str] = SECRET_INPUTS) -> Any:
    if isinstance(value, dict):
        return {_text(str(k)): ("***" if k in hidden else _loggable(v, hidden)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_loggable(v, hidden) for v in value]
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # NaN and Infinity are not JSON
    if isinstance(value, int | float | bool) or value is None:
        return value
    return str(value)


def logged_input(data: dict[str, Any], hidden: frozenset[str]) -> dict[str, Any]:
    """The input as the mutation log keeps it: secrets hidden, each field and the whole capped
    (a cut is marked, and ``_truncated`` is set)."""
    kept: dict[str, Any] = {}
    total = 0
    cut = False
    for name, value in data.items():
        shown = _loggable({name: value}, hidden)[name]
        size = len(json.dumps(shown, default=str))
        if size > MAX_LOGGED_VALUE or total + size > MAX_LOGGED_TOTAL:
            sent = len(json.dumps(value, default=str)) if name not in hidden else size
            shown, size, cut = f"[truncated: {sent} bytes]", 32, True
        elif _cut(shown):
            cut = True
        kept[name] = shown
        total += size
    if cut:
        kept[TRUNCATED] = True
    return kept


def _cut(value: Any) -> bool:
    """Whether :func:`_loggable` cut a text somewhere in ``value``."""
    if isinstance(value, dict):
        return any(_cut(v) for v in value.values())
    if isinstance(value, list):
        return any(_cut(v) for v in value)
    return isinstance(value, str) and value.endswith(" characters]") and "… [truncated: " in value


class CoreMutation(relay.ClientIDMutation):
    """Subclasses set ``permission`` and ``error_codes`` and implement
    ``perform(info, user, **input) -> dict``, which calls the module's ``check_*`` / ``do_*``
    use case and nothing else.

    ``error_codes`` names the module's :class:`core.errors.ErrorCode` enum; the payload's
    ``errors`` are then typed with it (``core.graphql.errors``); ``tests/test_conventions.py``
    fails for a mutation without it.

    ``perform`` runs in one transaction whose changes history attributes to the user and to
    the mutation log entry. A :class:`core.errors.ServiceError` rolls it back and comes out as
    ``errors: [{field, code, message}]`` with status 1 in ``mutationLogs``; success returns the
    changed objects directly and status 2; the entry's outcome commits with the changes.

    ``clientMutationId`` is the user's idempotency key: a request with a key the user already
    sent does nothing and answers the first request's outcome (its errors, or its objects as
    they are now), even when both arrive at once. A request that did not complete (a crash,
    a statement timeout, a lost database) releases its key, since it changed nothing.
    """

    class Meta:
        abstract = True

    class Input:
        client_mutation_label = graphene.String()

    errors = graphene.List(graphene.NonNull(MutationError), required=True)
    internal_id = graphene.String(description="the mutationLogs entry of this request (openIMIS's internalId)")

    permission: ClassVar[str] = ""
    error_codes: ClassVar[type[ErrorCode] | None] = None
    # Inputs the mutation log keeps as "***", beyond the passwords and tokens every mutation
    # hides: settings no query may return must not come back through ``mutationLogs`` either.
    unlogged_inputs: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __init_subclass_with_meta__(cls, **options: Any) -> None:
        if cls.error_codes is not None and "errors" not in cls.__dict__:
            cls.errors = graphene.List(graphene.NonNull(mutation_error_type(cls.error_codes)), required=True)
        super().__init_subclass_with_meta__(**options)

    @classmethod
    def _errors(cls, errors: list[dict[str, Any]]) -> list[Any]:
        """The payload's ``errors`` from ``{field, code, message}`` entries."""
        if cls.error_codes is None:
            return [MutationError(**_error_fields(e)) for e in errors]
        error_type = mutation_error_type(cls.error_codes)
        name = cls._meta.name.removesuffix("Payload")
        return [error_type(field=e["field"], message=e["message"],
                           code=public_code(cls.error_codes, name, e["code"]))
                for e in map(_error_fields, errors)]

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
        refusal = _client_fields_refusal(client_id, label)
        if refusal is not None:  # before the log entry, which could not hold them
            return cls(errors=cls._errors([refusal]), client_mutation_id=None)
        fields = {
            "mutation_name": cls._meta.name.removesuffix("Payload"),
            "client_mutation_id": client_id,
            "client_mutation_label": label,
            "json_content": logged_input(data, SECRET_INPUTS | cls.unlogged_inputs),
            "user": user,
        }
        if not client_id:
            return cls._run(info, user, data, MutationLog.objects.create(**fields), client_id)
        for _ in range(3):
            entry = _claim(fields, user, client_id)
            if entry is not None:
                return cls._run(info, user, data, entry, client_id)
            replayed = cls._replay(user, client_id, fields["json_content"])
            if replayed is not None:
                return replayed
            # the first request did not complete and released its key: this one runs
        raise ServiceError(CoreErrorCode.IN_PROGRESS, "Requests with this clientMutationId keep failing; send it again later.",
                           "clientMutationId")

    @classmethod
    def _run(cls, info: Any, user: Any, data: dict[str, Any], entry: MutationLog, client_id: str | None) -> Any:
        committed: list[bool] = []
        try:
            with transaction.atomic():
                # The entry stays locked until its outcome commits with the changes, so a
                # replay arriving meanwhile waits for that outcome instead of guessing it.
                list(MutationLog.objects.select_for_update().filter(pk=entry.pk).values_list("pk"))
                transaction.on_commit(lambda: committed.append(True))
                try:
                    check_arguments(data)
                    with acting_as(user, mutation=str(entry.pk)):
                        output = cls.perform(info, user, **data)
                except (ServiceError, GraphQLError) as exc:
                    errors = _refusal(exc)
                    _close(entry, MutationLog.ERROR, error=errors)
                    return cls(errors=cls._errors(errors), client_mutation_id=client_id, internal_id=str(entry.pk))
                # ``errors`` in the output: the change is kept, but it did not do what was asked
                # (an approval recorded whose approved action failed); the client is told so.
                failures = list(output.pop("errors", None) or [])
                affected = [str(v.pk) for v in output.values() if hasattr(v, "pk")]
                _close(entry, MutationLog.ERROR if failures else MutationLog.SUCCESS, affected=affected,
                       result=_outcome(output), error=[_error_fields(f) for f in failures] or None)
                if failures:
                    return cls(errors=cls._errors(failures), client_mutation_id=client_id, internal_id=str(entry.pk),
                               **output)
        except Exception as exc:
            if committed:
                raise  # done and recorded; what failed came after (an on-commit action)
            edge = classify(exc) if unavailable(exc) is None else None
            error = {"code": edge.code if edge else CoreErrorCode.SERVICE_UNAVAILABLE,
                     "message": edge.message if edge else "The database or Redis was not reachable."}
            if edge is not None and edge.status < 500 and edge.code != CoreErrorCode.CONFLICT:
                # a value the database refused: typed like any refusal, and final
                _close(entry, MutationLog.ERROR, error=[{"field": None, **error}])
                return cls(errors=cls._errors([{"field": None, **error}]), client_mutation_id=client_id, internal_id=str(entry.pk))
            try:
                _close(entry, MutationLog.ERROR, error=[error], release=True)
            except Exception:  # the database went away: the entry stays RECEIVED
                log.warning("mutation log entry left open", extra={"entry": str(entry.pk)})
            if edge is not None:
                exc.coremis_edge = edge  # type: ignore[attr-defined]  # one reference, logged once
            raise
        return cls(errors=[], client_mutation_id=client_id, internal_id=str(entry.pk), **output)

    @classmethod
    def _replay(cls, user: Any, client_id: str, logged: dict[str, Any]) -> Any:
        """The first request's outcome for a key sent again (``None``: the key was released)."""
        deadline = time.monotonic() + REPLAY_WAIT_SECONDS
        while True:
            with transaction.atomic():
                entry = (MutationLog.objects.select_for_update()
                         .filter(user=user, idempotency_key=client_id).first())
            if entry is None:
                return None
            if entry.status != MutationLog.RECEIVED:
                break
            if time.monotonic() > deadline:
                raise ServiceError(CoreErrorCode.IN_PROGRESS, "A request with this clientMutationId is still being "
                                   "processed; read its outcome with mutationLogs.", "clientMutationId")
            time.sleep(0.05)
        if entry.mutation_name != cls._meta.name.removesuffix("Payload") or entry.json_content != logged:
            # the same key for another request is a client's mistake, not a retry: saying so
            # beats answering an outcome that is not this request's
            errors = [{"field": "clientMutationId", "code": CoreErrorCode.CLIENT_MUTATION_ID_REUSED,
                       "message": f"This clientMutationId was already used for another request "
                                  f"({entry.mutation_name}); use a new one for each mutation."}]
            return cls(errors=cls._errors(errors), client_mutation_id=client_id)
        if entry.status == MutationLog.ERROR:
            return cls(errors=cls._errors(entry.error or []), client_mutation_id=client_id,
                       internal_id=str(entry.pk), **_restore(entry.result or {}))
        return cls(errors=[], client_mutation_id=client_id, internal_id=str(entry.pk), **_restore(entry.result or {}))


def _client_fields_refusal(client_id: str | None, label: str | None) -> dict[str, Any] | None:
    for name, value in (("clientMutationId", client_id), ("clientMutationLabel", label)):
        if value is None:
            continue
        if len(value) > MAX_CLIENT_FIELD:
            return {"field": name, "code": CoreErrorCode.TOO_LONG,
                    "message": f"{name} is longer than {MAX_CLIENT_FIELD} characters."}
        if not is_storable_text(value):
            return {"field": name, "code": CoreErrorCode.INVALID_CHARACTER, "message": f"{name} {NOT_TEXT_REASON}."}
    return None


def _claim(fields: dict[str, Any], user: Any, client_id: str) -> MutationLog | None:
    """A new entry holding ``client_id`` as the user's key, or ``None`` when the user already
    sent it (the unique index decides, including between two requests at the same moment)."""
    try:
        with transaction.atomic():
            return MutationLog.objects.create(**fields, idempotency_key=client_id)
    except IntegrityError:
        if not MutationLog.objects.filter(user=user, idempotency_key=client_id).exists():
            raise
        return None


def _error_fields(error: dict[str, Any]) -> dict[str, Any]:
    return {"field": error.get("field"), "code": str(error.get("code") or CoreErrorCode.INVALID),
            "message": error.get("message") or ""}


def _ref(value: Any) -> Any:
    if isinstance(value, models.Model):
        ref = {"model": value._meta.label_lower, "pk": str(value.pk)}
        code = getattr(value, "code", None)
        if isinstance(code, str) and code:  # openIMIS's autogeneratedCode, kept so reading it costs no query
            ref["code"] = code
        return ref
    if isinstance(value, list | tuple):
        return [_ref(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return {"value": value}
    return None  # nothing a replay can answer again; the field comes back empty


def _outcome(output: dict[str, Any]) -> dict[str, Any]:
    return {name: _ref(value) for name, value in output.items()}


def _restore(result: dict[str, Any]) -> dict[str, Any]:
    """The payload's objects again, as they are now (soft-deleted ones included)."""

    def load(ref: Any) -> Any:
        if isinstance(ref, list):
            return [item for item in (load(r) for r in ref) if item is not None]
        if not isinstance(ref, dict):
            return None
        if "value" in ref:
            return ref["value"]
        model = apps.get_model(ref["model"])
        return model._base_manager.filter(pk=ref["pk"]).first()

    return {name: load(ref) for name, ref in result.items()}


def _as_dict(error: FieldError) -> dict[str, Any]:
    return {"field": error.field, "code": error.code, "message": error.message}


def _refusal(exc: ServiceError | GraphQLError) -> list[dict[str, Any]]:
    """A typed refusal as ``{field, code, message}`` entries (a GraphQLError raised by a helper
    a mutation shares with queries, such as an ``orderBy`` check, is one too)."""
    if isinstance(exc, ServiceError):
        return [_as_dict(e) for e in exc.errors]
    extensions = exc.extensions or {}
    return [{"field": extensions.get("field"), "code": str(extensions.get("code") or CoreErrorCode.INVALID),
             "message": exc.message}]


def _close(entry: MutationLog, status: int, *, error: Any = None, affected: Any = None,
           result: Any = None, release: bool = False) -> None:
    changes: dict[str, Any] = {"status": status, "error": error, "affected_ids": affected, "result": result,
                               "finished_date_time": timezone.now()}
    if release:
        changes["idempotency_key"] = None
    MutationLog.objects.filter(pk=entry.pk).update(**changes)
