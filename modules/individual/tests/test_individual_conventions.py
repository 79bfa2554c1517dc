"""The individual module on the conventions: renamed codes keep roles working, and a write the
database refuses is told apart (a unique key's index, or anything else) without its text."""

from __future__ import annotations

import datetime
import importlib
from typing import Any

import pytest
from django.apps import apps

from core.errors import ServiceError
from core.migration_operations import rename_codes
from core.models import Role
from core.permissions import has_permission
from modules.individual import services
from modules.individual.models import Individual
from modules.individual.permissions import IMPORT_APPROVE, IMPORT_START, REGISTRY_SEARCH

pytestmark = pytest.mark.django_db


def test_the_migration_renames_the_old_codes_of_stored_roles(make_user: Any) -> None:
    clerk = make_user(["location.scope.national"])
    role = clerk.roles.get()
    Role.objects.filter(pk=role.pk).update(permissions=["individual.import", "individual.import_approve",
                                                        "individual.search"])
    migration = importlib.import_module("modules.individual.migrations.0005_permission_codes").Migration
    (operation,) = migration.operations
    rename_codes(apps, **operation.renames)
    role.refresh_from_db()
    assert role.permissions == ["individual.import.approve", "individual.import.start", "individual.registry.search"]
    clerk = type(clerk).objects.get(pk=clerk.pk)
    assert all(has_permission(clerk, code) for code in (REGISTRY_SEARCH, IMPORT_START, IMPORT_APPROVE))


def _person(places: Any, **fields: Any) -> Individual:
    values = {"first_name": "Ana", "last_name": "Iradukunda", "dob": datetime.date(1990, 1, 1), "sex": "F",
              "location": places["H1"], **fields}
    return Individual(**values)


def test_only_a_unique_keys_index_is_a_duplicate_key(admin_user: Any, places: Any) -> None:
    _person(places, json_ext={"national_id": "BI-1"}).save()
    # What two writers passing the check at the same moment meet: the index refuses the second.
    with pytest.raises(ServiceError) as taken:
        services._save_unique(lambda: _person(places, json_ext={"national_id": "BI-1"}).save())
    assert (taken.value.code, taken.value.field) == ("DUPLICATE_KEY", "jsonExt.national_id")
    assert "national_id" in taken.value.message and "violates" not in taken.value.message

    with pytest.raises(ServiceError) as other:
        services._save_unique(lambda: _person(places, json_ext={}, first_name=None).save())
    assert other.value.code == "CONFLICT"
    assert "null" not in other.value.message.lower() and "first_name" not in other.value.message
    assert Individual.objects.count() == 1
