"""The location module on the conventions: renamed codes keep roles working, the system acts
as the system actor, ``None`` is no actor."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from django.apps import apps

from core.actors import MissingActor, system_actor
from core.migration_operations import rename_codes
from core.models import Role
from core.permissions import has_permission
from modules.location import services
from modules.location.models import Location
from modules.location.permissions import LOCATION_IMPORT, LOCATION_SEARCH

pytestmark = pytest.mark.django_db


def test_the_migration_renames_the_old_codes_of_stored_roles(make_user: Any) -> None:
    clerk = make_user(["location.scope.national"])
    role = clerk.roles.get()
    Role.objects.filter(pk=role.pk).update(permissions=["location.import", "location.scope.national",
                                                        "location.search"])
    migration = importlib.import_module("modules.location.migrations.0003_permission_codes").Migration
    (operation,) = migration.operations
    rename_codes(apps, **operation.renames)
    role.refresh_from_db()
    assert role.permissions == ["location.location.import", "location.location.search", "location.scope.national"]
    clerk = type(clerk).objects.get(pk=clerk.pk)
    assert has_permission(clerk, LOCATION_SEARCH) and has_permission(clerk, LOCATION_IMPORT)


def test_the_system_actor_is_national_and_none_is_no_actor(tree: dict[str, Location]) -> None:
    system = system_actor()
    services.require_national(system, "Closing a plan")
    services.require_all_in_scope(system, Location.objects.all(), "", "Moving", "locations")
    assert services.scope_queryset(Location.objects.all(), system, "").count() == len(tree)
    with pytest.raises(MissingActor):
        services.require_national(None, "Closing a plan")
    with pytest.raises(MissingActor):
        services.require_all_in_scope(None, Location.objects.all(), "", "Moving", "locations")


def test_demo_data_is_written_as_the_system_actor(settings: Any) -> None:
    from modules.location.demo import seed_demo_locations

    Location.all_objects.all().delete()
    assert seed_demo_locations(system_actor()) > 0
    assert set(Location.objects.values_list("user_created_id", flat=True).distinct()) == {system_actor().pk}
