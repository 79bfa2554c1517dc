"""Renamed permission codes keep stored roles working; the job kind and the approval action
``social_protection.enroll`` no longer share their string with a permission."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from django.apps import apps

from core.approvals.actions import approval_actions
from core.jobs import job_kinds
from core.migration_operations import rename_codes
from core.models import Role
from core.permissions import has_permission, registry
from modules.social_protection.permissions import BENEFICIARY_ENROLL, PLAN_SEARCH

pytestmark = pytest.mark.django_db


def test_the_migration_renames_the_old_codes_of_stored_roles(make_user: Any) -> None:
    clerk = make_user(["location.scope.national"])
    role = clerk.roles.get()
    Role.objects.filter(pk=role.pk).update(permissions=["social_protection.enroll", "social_protection.plan_search"])
    migration = importlib.import_module("modules.social_protection.migrations.0003_permission_codes").Migration
    (operation,) = migration.operations
    rename_codes(apps, **operation.renames)
    role.refresh_from_db()
    assert role.permissions == ["social_protection.beneficiary.enroll", "social_protection.plan.search"]
    clerk = type(clerk).objects.get(pk=clerk.pk)
    assert has_permission(clerk, BENEFICIARY_ENROLL) and has_permission(clerk, PLAN_SEARCH)


def test_enroll_is_a_job_kind_and_an_action_not_a_permission() -> None:
    assert "social_protection.enroll" in job_kinds() and "social_protection.enroll" in approval_actions()
    assert "social_protection.enroll" not in registry()
