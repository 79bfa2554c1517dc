"""``manage.py seed_demo`` (run by ``make run``): the demo starts with maker-checker on money, a
demo checker whose credentials are printed with the administrator's (issue 9.8)."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from django.core.management import call_command

from core.approvals.services import configured_task_group, request_approval, resolve_task
from core.errors import ServiceError
from core.models import TaskGroup, User

pytestmark = pytest.mark.django_db


def seed(monkeypatch: Any, settings: Any) -> str:
    settings.EMBEDDED = True
    for variable in ("COREMIS_ADMIN_PASSWORD", "COREMIS_CHECKER_PASSWORD"):
        monkeypatch.delenv(variable, raising=False)
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_the_demo_has_a_checker_for_payrolls_and_prints_its_password(monkeypatch, settings):
    printed = seed(monkeypatch, settings)
    passwords = dict(re.findall(r"username '(\w+)', password (\S+)", printed))
    assert set(passwords) == {"admin", "checker"}, printed
    checker = User.objects.get(username="checker")
    assert checker.check_password(passwords["checker"]) and not checker.is_superuser

    code = configured_task_group("payroll.approve")
    assert code == "PAYROLL-CHECKERS"
    group = TaskGroup.objects.get(code=code)
    assert list(group.memberships.values_list("user__username", flat=True)) == ["checker"]
    # the admin's payroll waits for the checker, who may decide on it
    admin = User.objects.get(username="admin")
    task = request_approval(admin, "payroll.approve", "Payroll", "demo", {"id": "demo"})
    assert task.task_group == group
    # the checker may decide: past membership and permission, only the made-up payroll is missing
    with pytest.raises(ServiceError) as caught:
        resolve_task(checker, task.pk, "APPROVED")
    assert caught.value.code == "NOT_FOUND" and "Payroll demo" in caught.value.message

    again = seed(monkeypatch, settings)
    assert "password" not in again.replace("password was printed", "")
    assert TaskGroup.objects.filter(code=code).count() == 1 and User.objects.filter(username="checker").count() == 1
