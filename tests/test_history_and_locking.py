"""Every change is in the history (bulk ones too), stale edits are refused, deletes are soft."""

from __future__ import annotations

import io
import uuid
from typing import Any

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection, transaction

from core import services
from core.errors import StaleVersion
from core.history import acting_as, history_of, tracked_tables
from core.models import CoreModel, HistoryEntry, Role
from modules.location.models import Location
from modules.location.services import create_location, delete_location, update_location

TABLE = Location._meta.db_table


def new_province(user: Any, code: str = "P1", name: str = "Bujumbura") -> Location:
    with acting_as(user):
        return create_location(user, code=code, name=name, type="Province")


def history(row_id: Any) -> list[dict[str, Any]]:
    return history_of(TABLE, row_id)


def unsaved_province(code: str) -> Location:
    location_id = uuid.uuid4()
    return Location(id=location_id, code=code, name=f"Province {code}", type="Province", level=0,
                    path=f"{location_id.hex}/")


def test_insert_update_and_delete_are_recorded_with_the_acting_user(admin_user: Any, make_user: Any) -> None:
    editor = make_user(superuser=True)
    location = new_province(admin_user)
    with acting_as(editor, job="j-1"):
        update_location(editor, location.pk, name="Bujumbura Mairie")
    with acting_as(admin_user):
        Location.all_objects.filter(pk=location.pk).delete()

    entries = history(location.pk)
    assert [e["operation"] for e in entries] == ["I", "U", "D"]
    assert [e["user_id"] for e in entries] == [admin_user.pk, editor.pk, admin_user.pk]
    assert entries[0]["data"]["name"] == "Bujumbura"
    assert entries[1]["data"]["name"] == "Bujumbura Mairie"
    assert entries[1]["data"]["version"] == 2
    assert entries[1]["context"] == {"job": "j-1"}
    assert entries[2]["data"]["code"] == "P1"


def test_a_bulk_queryset_update_is_recorded_row_by_row(admin_user: Any) -> None:
    rows = [new_province(admin_user, f"P{i}", f"Name {i}") for i in range(3)]
    with acting_as(admin_user):
        changed = Location.objects.filter(code__in=["P0", "P1"]).update(name="Renamed")
    assert changed == 2
    updates = HistoryEntry.objects.filter(table_name=TABLE, operation="U")
    assert sorted(str(r) for r in updates.values_list("row_id", flat=True)) == sorted(
        str(r.pk) for r in rows[:2]
    )
    assert set(updates.values_list("user_id", flat=True)) == {admin_user.pk}
    assert {e.data["name"] for e in updates} == {"Renamed"}


def test_bulk_create_of_500_rows_writes_500_history_rows(admin_user: Any) -> None:
    locations = [unsaved_province(f"B{i:03}") for i in range(500)]
    with acting_as(admin_user, job="bulk"):
        Location.objects.bulk_create(locations)
    inserted = HistoryEntry.objects.filter(table_name=TABLE, operation="I")
    assert inserted.count() == 500
    assert set(inserted.values_list("row_id", flat=True)) == {loc.pk for loc in locations}
    assert set(inserted.values_list("user_id", flat=True)) == {admin_user.pk}
    assert inserted.filter(context={"job": "bulk"}).count() == 500


def test_raw_sql_is_recorded_too(admin_user: Any) -> None:
    location = new_province(admin_user)
    with acting_as(admin_user), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET name = 'Via SQL' WHERE id = %s", [location.pk])
    assert history(location.pk)[-1]["data"]["name"] == "Via SQL"


def test_an_update_that_changes_nothing_writes_no_history(admin_user: Any) -> None:
    location = new_province(admin_user)
    with acting_as(admin_user):
        touched = Location.objects.filter(pk=location.pk).update(name="Bujumbura", code="P1")
    assert touched == 1
    assert [e["operation"] for e in history(location.pk)] == ["I"]


def test_changes_outside_acting_as_have_no_user(admin_user: Any) -> None:
    role = Role.objects.create(name="Clerk")
    entry = history_of(Role._meta.db_table, role.pk)[0]
    assert entry["user_id"] is None and entry["context"] is None


def test_the_actor_does_not_leak_out_of_a_nested_acting_as(admin_user: Any, make_user: Any) -> None:
    clerk = make_user()
    with transaction.atomic():
        with acting_as(admin_user, mutation="outer"):
            with acting_as(clerk, mutation="inner"):
                inner = Role.objects.create(name="Inner")
            with pytest.raises(ValueError), acting_as(clerk, mutation="failed"):
                raise ValueError("refused")
            outer = Role.objects.create(name="Outer")
        after = Role.objects.create(name="After")
    table = Role._meta.db_table
    assert history_of(table, inner.pk)[0]["user_id"] == clerk.pk
    assert history_of(table, outer.pk)[0]["user_id"] == admin_user.pk
    assert history_of(table, outer.pk)[0]["context"] == {"mutation": "outer"}
    assert history_of(table, after.pk)[0]["user_id"] is None


def test_a_stale_version_is_refused_and_changes_nothing(admin_user: Any) -> None:
    location = new_province(admin_user)
    with acting_as(admin_user):
        update_location(admin_user, location.pk, version=1, name="First edit")
    with pytest.raises(StaleVersion) as refused, acting_as(admin_user):
        update_location(admin_user, location.pk, version=1, name="Second edit")
    assert refused.value.code == "STALE_VERSION" and refused.value.field == "version"
    assert "you edited version 1, it is now version 2" in refused.value.message
    stored = Location.objects.get(pk=location.pk)
    assert (stored.name, stored.version) == ("First edit", 2)
    assert [e["operation"] for e in history(location.pk)] == ["I", "U"]


def test_two_editors_of_the_same_version_cannot_both_win(admin_user: Any, make_user: Any) -> None:
    role = Role.objects.create(name="Enumerator", description="collects data")
    first, second = Role.objects.get(pk=role.pk), Role.objects.get(pk=role.pk)
    first.name = "Field enumerator"
    services.save_versioned(first, admin_user, ["name"])
    second.description = "overwrites the other edit"
    with pytest.raises(StaleVersion):
        services.save_versioned(second, make_user(), ["description"])
    stored = Role.objects.get(pk=role.pk)
    assert (stored.name, stored.description, stored.version) == ("Field enumerator", "collects data", 2)
    assert stored.user_updated_id == admin_user.pk


def test_soft_deleted_rows_are_hidden_but_kept(admin_user: Any) -> None:
    location = new_province(admin_user)
    with acting_as(admin_user):
        delete_location(admin_user, location.pk, version=1)
    assert not Location.objects.filter(pk=location.pk).exists()
    kept = Location.all_objects.get(pk=location.pk)
    assert kept.is_deleted and kept.version == 2
    assert history(location.pk)[-1]["operation"] == "U"
    assert history(location.pk)[-1]["data"]["is_deleted"] is True
    # the code is free again for a live location
    new_province(admin_user, code="P1", name="Another")
    assert Location.objects.filter(code="P1").count() == 1
    assert Location.all_objects.filter(code="P1").count() == 2


def test_a_soft_deleted_role_no_longer_grants_permissions(make_user: Any, admin_user: Any) -> None:
    user = make_user(["core.job.view"])
    role = user.roles.get()
    services.set_deleted(role, admin_user, True)
    assert not Role.objects.filter(pk=role.pk).exists() and Role.all_objects.filter(pk=role.pk).exists()
    user = type(user).objects.get(pk=user.pk)
    assert not user.has_code("core.job.view")


def core_models() -> list[type[CoreModel]]:
    return [
        m for m in apps.get_models()
        if issubclass(m, CoreModel) and not m._meta.proxy and not m._meta.abstract
    ]


@pytest.mark.django_db
def test_every_core_model_table_has_history_triggers() -> None:
    models = core_models()
    assert {Role, Location} <= set(models)
    missing = sorted(m._meta.db_table for m in models if m._meta.db_table not in tracked_tables())
    assert missing == [], f"add core.history.TrackHistory(<table>) to a migration for: {missing}"


@pytest.mark.django_db
def test_models_and_migrations_agree() -> None:
    out = io.StringIO()
    try:
        call_command("makemigrations", check=True, dry_run=True, stdout=out, stderr=out)
    except SystemExit:
        pytest.fail(f"models changed without a migration; run makemigrations:\n{out.getvalue()}")
