"""Renamed permission codes keep stored roles working; the approval actions ``payroll.approve``
and ``payroll.reconcile`` no longer share their string with a permission, and a checker of each
needs the permission ``approvals.py`` names."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from django.apps import apps

from core.approvals.actions import approval_actions
from core.migration_operations import rename_codes
from core.models import Role
from core.permissions import has_permission, registry
from modules.payroll.permissions import PAYROLL_APPROVE, PAYROLL_CLOSE, PROVIDER_MANAGE

pytestmark = pytest.mark.django_db


def test_the_migration_renames_the_old_codes_of_stored_roles(make_user: Any) -> None:
    clerk = make_user(["location.scope.national"])
    role = clerk.roles.get()
    Role.objects.filter(pk=role.pk).update(permissions=["payroll.approve", "payroll.configure_providers"])
    migration = importlib.import_module("modules.payroll.migrations.0007_permission_codes").Migration
    (operation,) = migration.operations
    rename_codes(apps, **operation.renames)
    role.refresh_from_db()
    assert role.permissions == ["payroll.payroll.approve", "payroll.provider.manage"]
    clerk = type(clerk).objects.get(pk=clerk.pk)
    assert has_permission(clerk, PAYROLL_APPROVE) and has_permission(clerk, PROVIDER_MANAGE)


def test_the_approval_actions_are_no_permissions_and_name_the_checkers_permission() -> None:
    actions = approval_actions()
    assert "payroll.approve" not in registry() and "payroll.reconcile" not in registry()
    assert actions["payroll.approve"][1].permission == PAYROLL_APPROVE
    assert actions["payroll.reconcile"][1].permission == PAYROLL_CLOSE
