"""The platform acts as an explicit system actor; ``None`` is no actor."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from core import roles
from core.actors import SYSTEM_ACTOR_ID, MissingActor, checked_actor, is_system, system_actor
from core.cron import Schedule, fire_due
from core.errors import ServiceError
from core.history import acting_as
from core.models import HistoryEntry, ScheduleRun, TaskGroup, User
from core.permissions import registry, require

pytestmark = pytest.mark.django_db

LOG_IN = 'mutation { tokenAuth(username: "system", password: "") { token } }'


def test_the_system_actor_is_a_row_nobody_logs_in_as(gql: Any) -> None:
    actor = User.objects.get(pk=SYSTEM_ACTOR_ID)  # made by the migration
    assert (actor.username, actor.is_active, actor.has_usable_password()) == ("system", False, False)
    assert system_actor() == actor and is_system(actor) and actor.is_system
    refused = gql(None).execute(LOG_IN)
    assert refused["errors"][0]["extensions"]["code"] == "INVALID_CREDENTIALS"


def test_it_holds_every_permission_and_is_checked_like_anyone() -> None:
    actor = system_actor()
    assert all(actor.has_code(code) for code in registry())
    require(actor, "core.role.manage")
    with acting_as(actor, job="a scheduled one"):  # as a job handler does with ctx.user
        role = roles.create_role(actor, "Made by the platform", ["core.job.view"])
    assert role.user_created_id == SYSTEM_ACTOR_ID
    written = HistoryEntry.objects.filter(table_name="core_role", row_id=role.pk, operation="I").get()
    assert str(written.user_id) == str(SYSTEM_ACTOR_ID)


def test_none_is_refused_by_the_core(make_user: Any) -> None:
    with pytest.raises(MissingActor):
        require(None, "core.role.manage")
    with pytest.raises(MissingActor):
        roles.create_role(None, "Nobody's", [])  # type: ignore[arg-type]
    with pytest.raises(MissingActor):
        checked_actor(None)


def test_none_is_refused_from_a_modules_code_too() -> None:
    # code run from a module's namespace (payroll was the last module allowed None for "the
    # system"): None means nobody there either
    namespace: dict[str, Any] = {"__name__": "modules.payroll.example", "require": require}
    exec("def act():\n    require(None, 'core.role.manage')\n", namespace)
    with pytest.raises(MissingActor):
        namespace["act"]()


def test_users_administrators_neither_see_nor_change_it(gql: Any, make_user: Any) -> None:
    admin = gql(make_user(superuser=True))
    users = admin.ok("{ users(first: 100) { edges { node { username } } } }")["users"]["edges"]
    assert "system" not in {u["node"]["username"] for u in users}
    reset = admin.ok('mutation($id: UUID!) { resetUserPassword(input: {uuid: $id, newPassword: "a long new pass 1"}) '
                     "{ errors { code } } }", {"id": str(SYSTEM_ACTOR_ID)})
    assert reset["resetUserPassword"]["errors"] == [{"code": "NOT_FOUND"}]


def test_scheduled_jobs_run_as_the_system_actor() -> None:
    schedule = Schedule("payroll:payroll.poll", "payroll.poll", "*/15 * * * *")
    fire_due(schedule)
    ScheduleRun.objects.filter(name=schedule.name).update(since=timezone.now() - timedelta(minutes=16))
    job = fire_due(schedule)
    assert job is not None and job.created_by_id == SYSTEM_ACTOR_ID


def test_the_demo_data_is_made_by_the_system_actor(monkeypatch: Any, settings: Any) -> None:
    settings.EMBEDDED = True
    monkeypatch.delenv("COREMIS_CHECKER_PASSWORD", raising=False)
    monkeypatch.delenv("COREMIS_ADMIN_PASSWORD", raising=False)
    call_command("seed_demo", stdout=io.StringIO())
    group = TaskGroup.objects.get(code="PAYROLL-CHECKERS")
    assert group.user_created_id == SYSTEM_ACTOR_ID


def test_a_refusal_of_the_system_is_a_refusal_like_any() -> None:
    with pytest.raises(ServiceError) as refused:
        roles.create_role(system_actor(), "", [])
    assert refused.value.code == "REQUIRED"
