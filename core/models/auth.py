"""Users, roles and the permission codes roles group."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractUser
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from core.models.base import CoreModel


class Role(CoreModel):
    """A named set of permission codes (``individual.search``…) declared by modules."""

    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, default="")
    permissions = ArrayField(models.CharField(max_length=100), default=list, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["name"], condition=models.Q(is_deleted=False), name="core_role_name_unique"
            )
        ]

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    roles = models.ManyToManyField(Role, blank=True, related_name="users")
    failed_login_attempts = models.PositiveIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)

    @property
    def uuid(self) -> uuid.UUID:
        return self.id

    def is_locked(self) -> bool:
        return self.locked_until is not None and self.locked_until > timezone.now()

    def permission_codes(self) -> frozenset[str]:
        """The union of the user's roles' codes, cached on the instance for one request."""
        cached: frozenset[str] | None = getattr(self, "_permission_codes", None)
        if cached is None:
            codes: set[str] = set()
            for perms in self.roles.filter(is_deleted=False).values_list("permissions", flat=True):
                codes.update(perms)
            cached = frozenset(codes)
            self._permission_codes = cached
        return cached

    def has_code(self, code: str) -> bool:
        if not self.is_active:
            return False
        return self.is_superuser or code in self.permission_codes()
