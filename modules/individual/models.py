"""People, households and who belongs where."""

from __future__ import annotations

from typing import ClassVar

from django.db import models
from django.db.models import Q

from core.models import CoreModel
from modules.location.models import Location


class Sex(models.TextChoices):
    MALE = "M", "male"
    FEMALE = "F", "female"
    OTHER = "O", "other"


class Individual(CoreModel):
    first_name = models.CharField(max_length=255)
    last_name = models.CharField(max_length=255)
    dob = models.DateField()
    sex = models.CharField(max_length=1, choices=Sex.choices, blank=True, default="")
    location = models.ForeignKey(Location, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # live rows per location kept by triggers (core.row_counts): a scoped totalCount is a sum
    counted_by: ClassVar[tuple[str, ...]] = ("location",)

    class Meta:
        indexes = [
            models.Index(fields=["last_name", "first_name"], name="individual_name"),
            models.Index(fields=["dob"], name="individual_dob"),
            # the frontend's first page: newest first (orderBy: ["-dateCreated"]), and the
            # primary key that ends every ordering: an import gives thousands of people one
            # date_created, and an index on it alone leaves them all to sort for a page of 10
            models.Index(fields=["date_created", "id"], name="individual_created_id"),
        ]

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name}"


class Group(CoreModel):
    """A household."""

    code = models.CharField(max_length=64)
    location = models.ForeignKey(Location, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    head = models.ForeignKey(Individual, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # live rows per location kept by triggers (core.row_counts): a scoped totalCount is a sum
    counted_by: ClassVar[tuple[str, ...]] = ("location",)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["code"], condition=Q(is_deleted=False), name="individual_group_code_unique"),
        ]
        indexes = [models.Index(fields=["date_created", "id"], name="individual_group_created_id")]

    def __str__(self) -> str:
        return self.code


class Role(models.TextChoices):
    HEAD = "HEAD"
    SPOUSE = "SPOUSE"
    SON = "SON"
    DAUGHTER = "DAUGHTER"
    FATHER = "FATHER"
    MOTHER = "MOTHER"
    GRANDFATHER = "GRANDFATHER"
    GRANDMOTHER = "GRANDMOTHER"
    GRANDSON = "GRANDSON"
    GRANDDAUGHTER = "GRANDDAUGHTER"
    BROTHER = "BROTHER"
    SISTER = "SISTER"
    OTHER_RELATIVE = "OTHER_RELATIVE"
    NOT_RELATED = "NOT_RELATED"


class RecipientType(models.TextChoices):
    PRIMARY = "PRIMARY"
    SECONDARY = "SECONDARY"


class GroupIndividual(CoreModel):
    """Membership; the database guarantees one head and one primary recipient per household,
    and one household per person."""

    group = models.ForeignKey(Group, on_delete=models.PROTECT, related_name="memberships")
    individual = models.ForeignKey(Individual, on_delete=models.PROTECT, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.OTHER_RELATIVE)
    recipient_type = models.CharField(max_length=10, choices=RecipientType.choices, null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["group"], condition=Q(is_deleted=False, role="HEAD"), name="individual_one_head"
            ),
            models.UniqueConstraint(
                fields=["group"], condition=Q(is_deleted=False, recipient_type="PRIMARY"),
                name="individual_one_primary",
            ),
            models.UniqueConstraint(
                fields=["individual"], condition=Q(is_deleted=False), name="individual_one_household"
            ),
        ]
        indexes = [models.Index(fields=["group"], name="individual_membership_group")]


# Django finds models only in models.py; the bulk import's own tables live in their own file.
from modules.individual.import_models import ImportBatch, ImportRun  # noqa: E402, F401
