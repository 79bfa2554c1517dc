"""An import's approval goes through the core's maker-checker like every other action: the
import asks for a task of the action ``individual.import``, a checker of the routed group
decides (with the openIMIS-shaped ``approveIndividualImport`` / ``rejectIndividualImport`` or
the core's ``resolveTask``), and the approval's executor resumes the job."""

from __future__ import annotations

import datetime
import importlib
import json
from typing import Any

import pytest
from django.apps import apps
from django.db import connection

from core.loader import module_config
from core.models import ApprovalTask, HistoryEntry, Job
from modules.individual import services
from modules.individual.import_models import ImportRun
from modules.individual.models import Individual

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("import_media_in_tmp")]

APPROVE = """mutation($input: ApproveIndividualImportMutationInput!) { approveIndividualImport(input: $input) {
    errors { field code message } job { uuid state stage } } }"""
REJECT = """mutation($input: RejectIndividualImportMutationInput!) { rejectIndividualImport(input: $input) {
    errors { field code message } job { uuid state stage message } } }"""
RESOLVE = """mutation($input: ResolveTaskMutationInput!) { resolveTask(input: $input) {
    errors { field code message } task { status } } }"""
DETAILS = """query($id: UUID!) { individualImport(jobId: $id) {
    phase mode needsApproval decidedBy { username } decisionReason job { uuid state } } }"""


@pytest.fixture
def family(registry_files: Any) -> list[tuple[str, ...]]:
    return [
        registry_files.row("Jean", "Ndayishimiye", "1980-05-17", "M", "H111", "HH-1", "HEAD", "PRIMARY", "BI-0001"),
        registry_files.row("Marie", "Ndayishimiye", "1984-02-01", "F", "", "HH-1", "SPOUSE", "SECONDARY", "BI-0002"),
        registry_files.row("Goreth", "Niyonzima", "1975-11-11", "F", "H211", "HH-2", "HEAD", "PRIMARY", "BI-0003"),
        registry_files.row("Odette", "Irakoze", "1999-12-31", "", "H112", national_id="BI-0004"),
    ]


def refresh(job: Job) -> Job:
    job.refresh_from_db()
    return job


def staging_tables() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE tablename LIKE 'individual_stage%%'")
        return [r[0] for r in cursor.fetchall()]


def task_of(job: Job) -> ApprovalTask:
    return ApprovalTask.objects.get(action="individual.import", entity_id=str(job.pk))


def test_an_import_waits_for_a_checkers_approval_and_the_uploader_cannot_give_it(
        run_import, run_jobs, gql, make_user, approver, import_approval, hierarchy,
        django_capture_on_commit_callbacks, registry_files, family):
    # the maker may approve imports and is a checker of the group too, just not for this one
    importer = make_user([*registry_files.IMPORTER, *registry_files.APPROVER], username="maker")
    import_approval(importer)
    job = run_import(importer, registry_files.csv_text(family))
    assert (job.state, job.stage, job.finished_at) == (Job.WAITING, "waiting_for_approval", None)
    assert job.result["awaiting_approval"] is True and job.result["valid"] == 4
    assert not Individual.objects.exists()
    task = task_of(job)
    assert (task.status, task.maker, task.task_group.code, task.module) == (
        ApprovalTask.ACCEPTED, importer, "IMPORT-CHECKERS", "individual")
    assert task.data["valid"] == 4 and task.data["file_name"].endswith(".csv")
    details = gql(approver).ok(DETAILS, {"id": str(job.pk)})["individualImport"]
    assert (details["phase"], details["needsApproval"], details["job"]["state"]) == ("WAITING", True, "WAITING")

    refused = gql(importer).ok(APPROVE, {"input": {"jobId": str(job.pk)}})["approveIndividualImport"]
    assert [(e["code"], e["field"]) for e in refused["errors"]] == [("SELF_APPROVAL", "jobId")]
    assert refresh(job).state == Job.WAITING and task_of(job).status == ApprovalTask.ACCEPTED

    with django_capture_on_commit_callbacks(execute=True):
        approved = gql(approver).ok(APPROVE, {"input": {"jobId": str(job.pk)}})["approveIndividualImport"]
    assert approved["errors"] == [] and approved["job"]["state"] == "QUEUED"
    task = task_of(job)
    assert task.status == ApprovalTask.COMPLETED and task.executed_at is not None
    assert task.decisions.get().checker == approver
    with django_capture_on_commit_callbacks(execute=True):
        assert run_jobs() == 1
    assert (refresh(job).state, job.stage) == (Job.SUCCEEDED, "done")
    assert Individual.objects.count() == 4
    assert ImportRun.objects.get(job=job).decided_by == approver
    # history names the uploader: the approver let the rows in, the uploader wrote them
    assert set(HistoryEntry.objects.filter(table_name="individual_individual").values_list("user_id", flat=True)) == {
        importer.pk}
    again = gql(approver).ok(APPROVE, {"input": {"jobId": str(job.pk)}})["approveIndividualImport"]
    assert again["errors"][0]["code"] == "NOT_AWAITING_APPROVAL"


def test_the_cores_resolve_task_approves_an_import_too(run_import, run_jobs, gql, importer, approver, import_approval,
                                                       django_capture_on_commit_callbacks, registry_files, family):
    job = run_import(importer, registry_files.csv_text(family))
    decision = json.dumps({str(approver.pk): "APPROVED"})
    with django_capture_on_commit_callbacks(execute=True):
        done = gql(approver).ok(RESOLVE, {"input": {"id": str(task_of(job).pk), "businessStatus": decision}})
    assert done["resolveTask"] == {"errors": [], "task": {"status": "COMPLETED"}}
    assert refresh(job).state == Job.QUEUED
    with django_capture_on_commit_callbacks(execute=True):
        run_jobs()
    assert refresh(job).state == Job.SUCCEEDED and Individual.objects.count() == 4


def test_approval_checks_the_registry_again(run_import, run_jobs, gql, importer, approver, admin_user, hierarchy,
                                            import_approval, django_capture_on_commit_callbacks, report,
                                            registry_files, family):
    job = run_import(importer, registry_files.csv_text(family))
    # meanwhile someone registers a person with one of the file's national ids
    services.create_individual(admin_user, first_name="Quick", last_name="Clerk", dob=datetime.date(1970, 1, 1),
                               location_id=hierarchy["H111"].pk, json_ext={"national_id": "BI-0004"})
    with django_capture_on_commit_callbacks(execute=True):
        gql(approver).ok(APPROVE, {"input": {"jobId": str(job.pk)}})
    with django_capture_on_commit_callbacks(execute=True):
        run_jobs()
    assert refresh(job).state == Job.FAILED
    assert report(importer, job) == [
        ["5", "national_id", "DUPLICATE_KEY", "Another individual in the registry already has national_id 'BI-0004'."]]
    assert Individual.objects.count() == 1


def test_a_rejected_import_writes_nothing_and_tells_why(run_import, gql, importer, approver, import_approval,
                                                        django_capture_on_commit_callbacks, registry_files, family):
    job = run_import(importer, registry_files.csv_text(family))
    empty = gql(approver).ok(REJECT, {"input": {"jobId": str(job.pk), "reason": "  "}})["rejectIndividualImport"]
    assert empty["errors"][0]["code"] == "REQUIRED"
    with django_capture_on_commit_callbacks(execute=True):
        rejected = gql(approver).ok(REJECT, {"input": {"jobId": str(job.pk), "reason": "Wrong province"}})
    payload = rejected["rejectIndividualImport"]
    assert payload["errors"] == []
    assert payload["job"] == {"uuid": str(job.pk), "state": "CANCELLED", "stage": "rejected",
                              "message": "Rejected by approver: Wrong province"}
    assert task_of(job).status == ApprovalTask.FAILED
    assert not Individual.objects.exists()
    assert staging_tables() == []
    late = gql(approver).ok(APPROVE, {"input": {"jobId": str(job.pk)}})["approveIndividualImport"]
    assert late["errors"][0]["code"] == "NOT_AWAITING_APPROVAL"
    details = gql(importer).ok(DETAILS, {"id": str(job.pk)})["individualImport"]
    assert (details["phase"], details["decidedBy"], details["decisionReason"]) == (
        "REJECTED", {"username": "approver"}, "Wrong province")


def test_a_rejection_through_resolve_task_ends_the_import(run_import, gql, importer, approver, import_approval,
                                                          django_capture_on_commit_callbacks, registry_files, family):
    job = run_import(importer, registry_files.csv_text(family))
    decision = json.dumps({str(approver.pk): "REJECTED"})
    with django_capture_on_commit_callbacks(execute=True):
        gql(approver).ok(RESOLVE, {"input": {"id": str(task_of(job).pk), "businessStatus": decision,
                                             "comment": "Not this month"}})
    assert (refresh(job).state, job.message) == (Job.CANCELLED, "Rejected by approver: Not this month")
    assert staging_tables() == [] and not Individual.objects.exists()


def test_only_a_checker_of_the_group_whose_locations_cover_the_rows_decides(
        run_import, gql, make_user, admin_user, importer, approver, import_approval, hierarchy, registry_files, family):
    from modules.location.services import set_user_locations

    job = run_import(importer, registry_files.csv_text(family))
    outsider = make_user(registry_files.APPROVER, username="outsider")  # may approve imports, not in the group
    refused = gql(outsider).ok(APPROVE, {"input": {"jobId": str(job.pk)}})["approveIndividualImport"]
    assert refused["errors"][0]["code"] == "NOT_A_CHECKER"
    local = make_user([c for c in registry_files.APPROVER if c != "location.scope.national"], username="local")
    set_user_locations(admin_user, local, [hierarchy["P1"].pk])  # HH-2 lives in P2
    import_approval(local)
    refused = gql(local).ok(APPROVE, {"input": {"jobId": str(job.pk)}})["approveIndividualImport"]
    assert [(e["code"], e["field"]) for e in refused["errors"]] == [("OUT_OF_SCOPE", "jobId")]
    assert "1 of the rows" in refused["errors"][0]["message"]
    assert refresh(job).state == Job.WAITING and task_of(job).status == ApprovalTask.ACCEPTED


def test_an_import_nobody_could_approve_is_refused_before_it_starts(gql, start, importer, approver, import_approval,
                                                                     registry_files, family, monkeypatch):
    monkeypatch.setitem(module_config("individual")["approvals"], "individual.import", "NO-SUCH-GROUP")
    refused = start(importer, registry_files.csv_text(family))
    assert refused["errors"][0]["code"] == "TASK_GROUP_MISSING"
    assert not Job.objects.filter(kind="individual.import").exists()


def test_approving_needs_the_permission(gql, importer, run_import, import_approval, hierarchy, registry_files, family):
    job = run_import(importer, registry_files.csv_text(family))
    result = gql(importer).execute(APPROVE, {"input": {"jobId": str(job.pk)}})
    assert result["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"


# --- imports waiting under the old flag (migration 0008) -------------------------------------


def _adopt() -> Any:
    return importlib.import_module("modules.individual.migrations.0008_import_approval_tasks").adopt_waiting_imports


def _waiting_without_a_task(run_import: Any, importer: Any, registry_files: Any, family: Any) -> Job:
    """An import that waits the way it did before the upgrade: no task to decide on."""
    job = run_import(importer, registry_files.csv_text(family))
    ApprovalTask.objects.filter(entity_id=str(job.pk)).delete()
    return job


def test_the_upgrade_gives_an_import_waiting_under_the_old_flag_its_task(
        run_import, run_jobs, gql, importer, approver, import_approval, django_capture_on_commit_callbacks,
        registry_files, family):
    job = _waiting_without_a_task(run_import, importer, registry_files, family)
    assert _adopt()(apps) == {"tasks": 1, "cancelled": 0}
    assert _adopt()(apps) == {"tasks": 0, "cancelled": 0}  # once
    assert (task_of(job).maker, task_of(job).data["valid"]) == (importer, 4)
    with django_capture_on_commit_callbacks(execute=True):
        approved = gql(approver).ok(APPROVE, {"input": {"jobId": str(job.pk)}})["approveIndividualImport"]
    assert approved["errors"] == []
    with django_capture_on_commit_callbacks(execute=True):
        run_jobs()
    assert refresh(job).state == Job.SUCCEEDED and Individual.objects.count() == 4


def test_the_upgrade_cancels_a_waiting_import_nobody_could_decide_on(
        run_import, importer, approver, import_approval, registry_files, family, monkeypatch):
    job = _waiting_without_a_task(run_import, importer, registry_files, family)
    monkeypatch.delitem(module_config("individual")["approvals"], "individual.import")
    assert _adopt()(apps) == {"tasks": 0, "cancelled": 1}
    assert refresh(job).state == Job.CANCELLED and "start the import again" in job.message
    assert ImportRun.objects.get(job=job).phase == ImportRun.REJECTED
    assert staging_tables() == [] and not ApprovalTask.objects.exists()


def test_an_import_whose_approval_was_unrouted_meanwhile_stops_saying_so(
        start, run_jobs, importer, approver, import_approval, django_capture_on_commit_callbacks,
        registry_files, family, monkeypatch):
    payload = start(importer, registry_files.csv_text(family))
    monkeypatch.delitem(module_config("individual")["approvals"], "individual.import")
    with django_capture_on_commit_callbacks(execute=True):
        run_jobs()
    job = Job.objects.get(pk=payload["job"]["uuid"])
    # not written without the approval it was started under; the uploader reads what to do
    assert job.state == Job.FAILED and "setApprovalRoute" in job.message
    assert not Individual.objects.exists() and not ApprovalTask.objects.exists() and staging_tables() == []


def test_a_checker_sees_the_import_tasks_whose_rows_lie_within_their_locations(
        run_import, gql, make_user, admin_user, importer, approver, import_approval, hierarchy, registry_files, family):
    from modules.location.services import set_user_locations

    spanning = run_import(importer, registry_files.csv_text(family))  # rows in P1 and P2
    in_p1 = run_import(importer, registry_files.csv_text([registry_files.row("Ana", "Bizimana", "1990-01-01", "F", "H111")]))
    local = make_user([*(c for c in registry_files.APPROVER if c != "location.scope.national"), "core.task.view"],
                      username="local")
    set_user_locations(admin_user, local, [hierarchy["P1"].pk])
    import_approval(local)
    tasks = gql(local).ok("{ task { edges { node { entityId } } } }")["task"]["edges"]
    assert [t["node"]["entityId"] for t in tasks] == [str(in_p1.pk)]
    # rows in two provinces lie within the root only: national checkers see it
    assert task_of(spanning).data["within"] == "" and task_of(in_p1).data["within"].startswith(hierarchy["P1"].path)
