"""Locations form a tree; ``path`` (the ids from the root down) makes "X and everything under
it" one indexed prefix match instead of a recursive query."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from core.models import CoreModel


class Location(CoreModel):
    code = models.CharField(max_length=50)
    name = models.CharField(max_length=255)
    type = models.CharField(max_length=50, help_text="The level name, from modules_config.json")
    level = models.PositiveSmallIntegerField(help_text="0 for the top level")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    path = models.TextField(editable=False, help_text="'/'-joined ids from the root to this location")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["code"], condition=models.Q(is_deleted=False), name="location_code_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["parent"], name="location_parent"),
            models.Index(fields=["type", "name"], name="location_type_name"),
            models.Index(fields=["path"], name="location_path_prefix", opclasses=["text_pattern_ops"]),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class UserLocation(models.Model):
    """A location (with everything under it) a user may see and act on."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="location_scopes")
    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "location"], name="location_user_scope_unique")
        ]
