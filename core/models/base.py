"""The base every module's data model stands on."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone


class ActiveQuerySet(models.QuerySet):
    def alive(self) -> ActiveQuerySet:
        return self.filter(is_deleted=False)


class ActiveManager(models.Manager.from_queryset(ActiveQuerySet)):  # type: ignore[misc]
    """Hides soft-deleted rows; ``all_objects`` sees them."""

    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().filter(is_deleted=False)


class CoreModel(models.Model):
    """UUID key, audit fields, optimistic-lock ``version``, soft delete and ``json_ext``.

    Writes go through service functions, which bump ``version`` and refuse stale ones (see
    ``core.services.versioned_update``). Every change, bulk ones included, is captured in
    ``core_history`` by database triggers installed by each table's migration
    (``core.history.TrackHistory``).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    date_created = models.DateTimeField(default=timezone.now, editable=False)
    date_updated = models.DateTimeField(default=timezone.now)
    user_created = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    user_updated = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    version = models.PositiveIntegerField(default=1)
    is_deleted = models.BooleanField(default=False)
    json_ext = models.JSONField(null=True, blank=True)

    objects = ActiveManager()
    all_objects = models.Manager()

    class Meta:
        abstract = True
        base_manager_name = "all_objects"

    @property
    def uuid(self) -> uuid.UUID:
        return self.id

    def stamp(self, user: Any) -> None:
        """Set audit fields for a write by ``user`` (used by service functions)."""
        now = timezone.now()
        uid = getattr(user, "pk", None)
        if self._state.adding:
            self.date_created = now
            self.user_created_id = uid
        self.date_updated = now
        self.user_updated_id = uid
