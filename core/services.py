"""Write helpers every module's services use: optimistic locking and soft delete."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from django.db.models import F

from core.errors import StaleVersion
from core.models import CoreModel

M = TypeVar("M", bound=CoreModel)


def check_version(obj: CoreModel, expected_version: int | None) -> None:
    """Refuse an edit made on another version of ``obj`` than the one just read.

    ``save_versioned`` does this itself; a service calls it first when it also checks rules
    that depend on the current state, so a stale edit is told to reload rather than told
    about a rule its author could not have seen.
    """
    if expected_version is not None and expected_version != obj.version:
        raise StaleVersion(f"{obj._meta.verbose_name} {obj.pk}", expected_version, obj.version)


def save_versioned(obj: M, user: Any, fields: Iterable[str], expected_version: int | None = None) -> M:
    """Write ``fields`` of ``obj`` only if nobody changed it since it was read.

    The ``WHERE version = …`` makes the check and the write one statement, so two concurrent
    editors cannot both win; the loser gets :class:`StaleVersion` and changes nothing.
    """
    check_version(obj, expected_version)
    label = f"{obj._meta.verbose_name} {obj.pk}"
    obj.stamp(user)
    values = {name: getattr(obj, name) for name in fields}
    values.update(date_updated=obj.date_updated, user_updated_id=obj.user_updated_id)
    model = type(obj)
    updated = model.all_objects.filter(pk=obj.pk, version=obj.version).update(
        version=F("version") + 1, **values
    )
    if not updated:
        actual = model.all_objects.values_list("version", flat=True).get(pk=obj.pk)
        raise StaleVersion(str(label), obj.version, actual)
    obj.version += 1
    return obj


def create(obj: M, user: Any) -> M:
    obj.stamp(user)
    obj.save(force_insert=True)
    return obj


def set_deleted(obj: M, user: Any, deleted: bool, expected_version: int | None = None) -> M:
    obj.is_deleted = deleted
    return save_versioned(obj, user, ["is_deleted"], expected_version)
