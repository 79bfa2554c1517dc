"""A module renaming its codes keeps existing roles, routes, tasks, jobs and uploads working."""

from __future__ import annotations

from typing import Any

import pytest
from django.apps import apps
from django.db import connection

from core.migration_operations import RenameCodes, rename_codes
from core.models import ApprovalRoute, HistoryEntry, Job, Role, TaskGroup
from core.permissions import has_permission

pytestmark = pytest.mark.django_db


def test_a_renamed_permission_keeps_granting(make_user: Any) -> None:
    clerk = make_user(["location.location.search", "core.job.view"])
    role = clerk.roles.get()
    Role.objects.filter(pk=role.pk).update(permissions=["location.location.search", "core.job.view", "location.old_name"])
    rename_codes(apps, permissions={"location.old_name": "location.location.search"})
    role.refresh_from_db()
    assert role.permissions == ["core.job.view", "location.location.search"]  # merged, once
    clerk = type(clerk).objects.get(pk=clerk.pk)
    assert has_permission(clerk, "location.location.search")


def test_renamed_actions_kinds_and_purposes_follow(make_user: Any) -> None:
    group = TaskGroup.objects.create(code="G", completion_policy=TaskGroup.ANY)
    ApprovalRoute.objects.create(action="payroll.old", task_group=group, reason="r")
    job = Job.objects.create(kind="payroll.old_kind", module="payroll")
    rename_codes(apps, approval_actions={"payroll.old": "payroll.new"}, job_kinds={"payroll.old_kind": "payroll.kind"})
    assert ApprovalRoute.objects.filter(action="payroll.new").exists()
    job.refresh_from_db()
    assert job.kind == "payroll.kind"


def test_the_operation_runs_both_ways_and_history_names_the_system(make_user: Any) -> None:
    role = Role.objects.create(name="R", permissions=["payroll.approve"])
    operation = RenameCodes(permissions={"payroll.approve": "payroll.payroll.approve"})

    class Editor:
        connection = connection

    operation.code(apps, Editor())
    role.refresh_from_db()
    assert role.permissions == ["payroll.payroll.approve"]
    change = HistoryEntry.objects.filter(table_name="core_role", row_id=role.pk, operation="U").latest("id")
    assert str(change.user_id) == "00000000-0000-4000-8000-000000000001"
    operation.reverse_code(apps, Editor())
    role.refresh_from_db()
    assert role.permissions == ["payroll.approve"]
    assert operation.deconstruct() == ("RenameCodes", [], {"permissions": {"payroll.approve": "payroll.payroll.approve"}})
