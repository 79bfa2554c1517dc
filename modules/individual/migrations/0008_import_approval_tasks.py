"""Imports that wait for approval under the old ``import_requires_approval`` flag move to the
core's maker-checker: each gets the approval task a checker decides on, so it is approved or
rejected like an import started after the upgrade.

The task goes to the task group the deployment routes ``individual.import`` to (a route set
at run time, else ``individual.approvals`` in ``modules_config.json``). When no group is
routed, or the routed group does not exist, nobody could ever decide on such an import: it is
cancelled with a sentence saying why and what to do (route the action, start the import
again; the same file is not refused as a duplicate, nothing of it was written), and its
staged rows are dropped. Backwards, the tasks made here are removed and the imports wait
again; cancelled ones stay cancelled.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations
from django.utils import timezone

ACTION = "individual.import"  # the approval action (modules/individual/bulk_import/approval.py)
ENTITY_TYPE = "IndividualImport"
MADE_HERE = "0008_import_approval_tasks"  # marks the tasks this migration made, for backwards

CANCELLED = ("Cancelled by the upgrade to the core's approvals: imports now wait for a checker of the task "
             "group that 'individual.import' is routed to, and none is routed (or the group is missing). "
             "Route it (setApprovalRoute, or individual.approvals in modules_config.json) and start the "
             "import again; nothing of it was written.")


def _routed_group(apps: Any) -> Any:
    from core.loader import get_registry

    route_model = apps.get_model("core", "ApprovalRoute")
    group_model = apps.get_model("core", "TaskGroup")
    route = route_model.objects.filter(action=ACTION, is_deleted=False).first()
    if route is not None:
        code = None
        if route.task_group_id is not None:
            code = group_model.objects.filter(pk=route.task_group_id).values_list("code", flat=True).first()
    else:
        code = (get_registry().config("individual").get("approvals") or {}).get(ACTION)
    if code is None:
        return None
    return group_model.objects.filter(code=code, is_deleted=False).first()


def adopt_waiting_imports(apps: Any, schema_editor: Any = None) -> dict[str, int]:
    """Give every import waiting under the old flag its approval task, or cancel it."""
    run_model = apps.get_model("individual", "ImportRun")
    task_model = apps.get_model("core", "ApprovalTask")
    job_model = apps.get_model("core", "Job")
    waiting = run_model.objects.filter(phase="waiting", job__state="WAITING").select_related("job", "upload")
    group = _routed_group(apps)
    done = {"tasks": 0, "cancelled": 0}
    for run in waiting:
        key = {"action": ACTION, "entity_type": ENTITY_TYPE, "entity_id": str(run.job_id)}
        if task_model.objects.filter(status__in=("RECEIVED", "ACCEPTED"), is_deleted=False, **key).exists():
            continue
        if group is not None:
            counts = run.counts or {}
            task_model.objects.create(
                module="individual", maker_id=run.job.created_by_id, user_created_id=run.job.created_by_id,
                task_group=group, status="RECEIVED",
                data={"file_name": run.upload.filename, "sha256": run.sha256, "mode": run.mode,
                      "migrated_by": MADE_HERE,
                      **{k: counts[k] for k in ("total", "valid", "invalid", "likely_duplicates") if k in counts}},
                **key,
            )
            done["tasks"] += 1
            continue
        now = timezone.now()
        run_model.objects.filter(pk=run.pk).update(phase="rejected", decided_at=now, decision_reason=CANCELLED)
        job_model.objects.filter(pk=run.job_id).update(state="CANCELLED", stage="rejected", finished_at=now,
                                                       message=CANCELLED)
        suffix = run.job_id.hex
        schema_editor_sql = f"DROP TABLE IF EXISTS individual_stage_{suffix}, individual_stagehh_{suffix}"
        with (schema_editor.connection if schema_editor is not None else _connection()).cursor() as cursor:
            cursor.execute(schema_editor_sql)
        done["cancelled"] += 1
    return done


def _connection() -> Any:
    from django.db import connection

    return connection


def forget_tasks(apps: Any, schema_editor: Any) -> None:
    task_model = apps.get_model("core", "ApprovalTask")
    task_model.objects.filter(action=ACTION, entity_type=ENTITY_TYPE, status="RECEIVED",
                              data__migrated_by=MADE_HERE).delete()


class Migration(migrations.Migration):
    dependencies = [("individual", "0007_list_indexes"), ("core", "0012_conventions_import_report")]

    operations = [migrations.RunPython(adopt_waiting_imports, forget_tasks)]
