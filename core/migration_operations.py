"""Migration operations a module's data migrations use when it renames one of its codes.

A renamed permission must keep every role that grants it working; a renamed approval action
keeps its run-time route and its open tasks; a renamed job kind keeps its queued and waiting
jobs and its schedule's history; a renamed upload purpose keeps the uploads not yet imported::

    from core.migration_operations import RenameCodes

    class Migration(migrations.Migration):
        dependencies = [("payroll", "0007_…"), ("core", "0011_conventions_system_actor")]
        operations = [RenameCodes(permissions={"payroll.approve": "payroll.payroll.approve"})]

Going backwards renames back. Each code must belong to the migrating module; a rename to a
code already stored in the same row merges the two.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import migrations


def _renamed_list(codes: list[str], renames: Mapping[str, str]) -> list[str]:
    return sorted({renames.get(code, code) for code in codes})


def rename_codes(apps: Any, *, permissions: Mapping[str, str] = {}, approval_actions: Mapping[str, str] = {},
                 job_kinds: Mapping[str, str] = {}, upload_purposes: Mapping[str, str] = {}) -> None:
    """Rename codes wherever the core stores them (historical models, so it runs at any
    point of the migration graph after ``core.0011``)."""
    if permissions:
        Role = apps.get_model("core", "Role")
        # Roles are few (tens): one read and one update per affected role.
        for role in Role._base_manager.filter(permissions__overlap=list(permissions)):
            role.permissions = _renamed_list(role.permissions, permissions)
            role.save(update_fields=["permissions"])
    for old, new in approval_actions.items():
        apps.get_model("core", "ApprovalRoute")._base_manager.filter(action=old).update(action=new)
        apps.get_model("core", "ApprovalTask")._base_manager.filter(action=old).update(action=new)
    for old, new in job_kinds.items():
        apps.get_model("core", "Job").objects.filter(kind=old).update(kind=new)
        ScheduleRun = apps.get_model("core", "ScheduleRun")
        for run in ScheduleRun.objects.filter(kind=old):
            run.kind = new
            run.save(update_fields=["kind"])
    for old, new in upload_purposes.items():
        apps.get_model("core", "Upload").objects.filter(purpose=old).update(purpose=new)


def _as_system(schema_editor: Any) -> None:
    """History attributes the renames to the system actor (the migration's transaction)."""
    from core.actors import SYSTEM_ACTOR_ID

    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT set_config('coremis.user_id', %s, true), set_config('coremis.context', %s, true)",
                       [str(SYSTEM_ACTOR_ID), '{"migration": "RenameCodes"}'])


class RenameCodes(migrations.RunPython):
    """``RunPython`` renaming codes forwards and back (see the module docstring)."""

    def __init__(self, *, permissions: Mapping[str, str] = {}, approval_actions: Mapping[str, str] = {},
                 job_kinds: Mapping[str, str] = {}, upload_purposes: Mapping[str, str] = {}) -> None:
        self.renames = {"permissions": dict(permissions), "approval_actions": dict(approval_actions),
                        "job_kinds": dict(job_kinds), "upload_purposes": dict(upload_purposes)}
        back = {kind: {new: old for old, new in pairs.items()} for kind, pairs in self.renames.items()}

        def forwards(apps: Any, schema_editor: Any) -> None:
            _as_system(schema_editor)
            rename_codes(apps, **self.renames)

        def backwards(apps: Any, schema_editor: Any) -> None:
            _as_system(schema_editor)
            rename_codes(apps, **back)

        super().__init__(forwards, backwards, elidable=False)

    def describe(self) -> str:
        count = sum(len(pairs) for pairs in self.renames.values())
        return f"Rename {count} code(s) stored by the core"

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return self.__class__.__qualname__, [], {k: v for k, v in self.renames.items() if v}
