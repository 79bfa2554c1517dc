"""Users, roles and the permission codes roles group."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from django.contrib.auth.models import AbstractUser
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from core.models.base import CoreModel

# The system actor's row (``core.actors``; made by migration 0011_conventions_system_actor).
SYSTEM_ACTOR_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")


class Role(CoreModel):
    """A named set of permission codes (``individual.registry.search``…) declared by modules."""

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

    def remember_permission_codes(self, codes: Iterable[str]) -> None:
        """The codes of the user's live roles, read with the user (the token check does)."""
        self._permission_codes = frozenset(codes)

    @property
    def is_system(self) -> bool:
        """The platform itself (``core.actors.system_actor``): it holds every permission."""
        return self.pk == SYSTEM_ACTOR_ID

    def has_code(self, code: str) -> bool:
        if self.is_system:
            return True
        if not self.is_active:
            return False
        return self.is_superuser or code in self.permission_codes()


class LoginSession(models.Model):
    """One log-in and the refresh token it currently holds.

    A refresh token is ``<family key>.<secret>``; only hashes of both are stored. Refreshing
    spends the token and gives the session a new secret, so each refresh token works once.
    A token of a known family whose secret is not the current one was already spent: someone
    kept a copy, and the whole session is revoked, except for the token spent by the last
    refresh within a few seconds of it (``previous_token_hash``): two tabs of one browser that
    share the cookie and refresh at the same moment are a race, not a theft. Access tokens name the session (``sid``),
    so revoking it ends them too, not only their refresh.
    """

    REVOKED_LOGOUT = "logout"
    REVOKED_REUSE = "reuse"
    REVOKED_PASSWORD = "password"
    REVOKED_DEACTIVATED = "deactivated"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="login_sessions")
    family_hash = models.CharField(max_length=64, unique=True)
    token_hash = models.CharField(max_length=64)
    previous_token_hash = models.CharField(max_length=64, blank=True, default="",
                                           help_text="the token the last refresh spent (accepted for a few seconds)")
    password_stamp = models.CharField(max_length=16)
    created_at = models.DateTimeField(default=timezone.now)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    refresh_count = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField(db_index=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=20, blank=True, default="")

    def __str__(self) -> str:
        return f"{self.user_id} since {self.created_at:%Y-%m-%d %H:%M}"
