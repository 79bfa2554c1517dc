"""Importing a hierarchy from CSV as a background job run by a real RQ worker (in-process)."""

from __future__ import annotations

import io
from typing import Any

import pytest

from core.models import Job
from modules.location.models import Location

pytestmark = pytest.mark.django_db

PERMS = ["location.location.import", "location.location.search", "location.scope.national", "core.job.view"]

GOOD = """code,name,type,parent_code
H900,Nyakabiga,Colline,C900
P900,Rumonge,Province,
C900,Muhuta,Commune,P900
H901,Gitaza,Colline,C900
"""

BAD = """code,name,type,parent_code
P900,Rumonge,Province,
C900,Muhuta,Commune,P900
H900,,Colline,C900
H901,Gitaza,Village,C900
C901,Bugarama,Commune,NOPE
H902,Kizuka,Colline,C901
H903,Magara,Colline,P900
C900,Again,Commune,P900
"""

IMPORT = """mutation($input: ImportLocationsMutationInput!) { importLocations(input: $input) {
    errors { field code message } job { uuid state } } }"""

JOB = """query($kind: String) { jobs(kind: $kind, orderBy: ["-created_at"], first: 1) { edges { node {
    uuid state stage processed total errorCount errors result message } } } }"""


def upload(client: Any, user: Any, text: str) -> str:
    from core.auth.tokens import issue

    response = client.post(
        "/api/upload?purpose=location.import",
        {"file": _named(text)},
        HTTP_AUTHORIZATION=f"Bearer {issue(user).token}",
    )
    assert response.status_code == 201, response.content
    return response.json()["uploadId"]


def _named(text: str) -> io.BytesIO:
    buffer = io.BytesIO(text.encode())
    buffer.name = "locations.csv"
    return buffer


def start(gql_client: Any, upload_id: str, mode: str, capture: Any) -> dict[str, Any]:
    with capture(execute=True):
        data = gql_client.ok(IMPORT, {"input": {"uploadId": upload_id, "mode": mode}})
    assert data["importLocations"]["errors"] == []
    return data["importLocations"]["job"]


def last_job(gql_client: Any) -> dict[str, Any]:
    return gql_client.ok(JOB, {"kind": "location.import"})["jobs"]["edges"][0]["node"]


def test_valid_file_imports_with_parents_after_children(client, gql, make_user, run_jobs,
                                                         django_capture_on_commit_callbacks):
    user = make_user(PERMS)
    api = gql(user)
    job = start(api, upload(client, user, GOOD), "ALL_OR_NOTHING", django_capture_on_commit_callbacks)
    assert job["state"] == "QUEUED"
    assert run_jobs() == 1
    done = last_job(api)
    assert done["state"] == "SUCCEEDED" and done["errorCount"] == 0
    assert done["processed"] == done["total"] == 4
    assert Location.objects.get(code="H900").parent.code == "C900"
    assert Location.objects.get(code="C900").parent.code == "P900"
    assert done["message"] == "Imported 4 new locations; 0 were already there."

    # The same file again changes nothing and duplicates nothing.
    start(api, upload(client, user, GOOD), "ALL_OR_NOTHING", django_capture_on_commit_callbacks)
    run_jobs()
    again = last_job(api)
    assert again["state"] == "SUCCEEDED"
    assert '"unchanged": 4' in again["result"] and '"created": 0' in again["result"]
    assert Location.objects.filter(code__in=["P900", "C900", "H900", "H901"]).count() == 4


def test_all_or_nothing_refuses_the_whole_file_and_explains_each_row(
        client, gql, make_user, run_jobs, django_capture_on_commit_callbacks):
    user = make_user(PERMS)
    api = gql(user)
    before = Location.all_objects.count()
    start(api, upload(client, user, BAD), "ALL_OR_NOTHING", django_capture_on_commit_callbacks)
    run_jobs()
    job = Job.objects.get(kind="location.import")
    assert job.state == Job.FAILED
    assert Location.all_objects.count() == before
    reasons = {e["row"]: e["code"] for e in job.errors}
    assert reasons == {
        4: "REQUIRED",            # empty name
        5: "INVALID_TYPE",        # Village is not a level
        6: "UNKNOWN_PARENT",      # NOPE
        7: "INVALID_PARENT",      # its parent C901 is invalid
        8: "INVALID_PARENT",      # a Colline directly under a Province
        9: "DUPLICATE_IN_FILE",   # C900 twice
    }
    assert all(e["message"] for e in job.errors)
    assert job.message == ("6 of 8 rows are invalid, so nothing was imported (all or nothing); "
                           "the job's errors list them.")
    # The core's import report holds the same refusals, with the cell the file had.
    report = job.import_report
    assert (report.module, report.mode) == ("location", "all_or_nothing")
    issues = {i.row: (i.field, i.code, i.raw_value) for i in report.issues.all()}
    assert issues[5] == ("type", "INVALID_TYPE", "Village")
    assert issues[6] == ("parent_code", "UNKNOWN_PARENT", "NOPE")
    assert issues[9] == ("code", "DUPLICATE_IN_FILE", "C900")
    assert report.counts["total"] == 8 and report.counts["invalid"] == report.counts["issues"] == 6


def test_the_rest_route_and_graphql_start_the_same_import(client, make_user, run_jobs):
    from core.auth.tokens import issue

    user = make_user(PERMS)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {issue(user).token}"}
    refused = client.post("/api/location/import?mode=sometimes", {"file": _named(GOOD)}, **headers)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "INVALID_MODE"
    clerk = make_user(["location.location.search"])
    forbidden = client.post("/api/location/import", {"file": _named(GOOD)},
                            HTTP_AUTHORIZATION=f"Bearer {issue(clerk).token}")
    assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "PERMISSION_DENIED"
    assert not Job.objects.filter(kind="location.import").exists()
    started = client.post("/api/location/import?mode=valid_rows", {"file": _named(GOOD)}, **headers)
    assert started.status_code == 202, started.content
    job = Job.objects.get(pk=started.json()["jobId"])
    assert job.params["mode"] == "valid_rows" and job.created_by == user


def test_valid_rows_mode_keeps_the_good_rows(client, gql, make_user, run_jobs,
                                             django_capture_on_commit_callbacks):
    user = make_user(PERMS)
    api = gql(user)
    start(api, upload(client, user, BAD), "VALID_ROWS", django_capture_on_commit_callbacks)
    run_jobs()
    job = last_job(api)
    assert job["state"] == "PARTIAL" and job["errorCount"] == 6
    assert set(Location.objects.filter(code__in=["P900", "C900", "H900", "H901", "C901", "H902", "H903"])
               .values_list("code", flat=True)) == {"P900", "C900"}


def test_missing_columns_fail_with_a_clear_message(client, gql, make_user, run_jobs,
                                                    django_capture_on_commit_callbacks):
    user = make_user(PERMS)
    api = gql(user)
    start(api, upload(client, user, "code;name\nX;Y\n"), "ALL_OR_NOTHING", django_capture_on_commit_callbacks)
    run_jobs()
    job = last_job(api)
    assert job["state"] == "FAILED"
    assert "lacks the column(s)" in job["message"]


def test_upload_needs_the_purpose_permission(client, make_user):
    user = make_user(["location.location.search"])
    from core.auth.tokens import issue

    response = client.post("/api/upload?purpose=location.import", {"file": _named(GOOD)},
                           HTTP_AUTHORIZATION=f"Bearer {issue(user).token}")
    assert response.status_code == 403
    anonymous = client.post("/api/upload?purpose=location.import", {"file": _named(GOOD)})
    assert anonymous.status_code == 401


def test_someone_elses_upload_cannot_be_imported(client, gql, make_user):
    owner = make_user(PERMS)
    other = make_user(PERMS)
    upload_id = upload(client, owner, GOOD)
    data = gql(other).ok(IMPORT, {"input": {"uploadId": upload_id}})["importLocations"]
    assert data["job"] is None and data["errors"][0]["code"] == "UPLOAD_NOT_FOUND"


def test_an_import_run_again_after_its_work_committed_duplicates_nothing(client, gql, make_user, run_jobs, run_again,
                                                                         django_capture_on_commit_callbacks):
    user = make_user(PERMS)
    api = gql(user)
    start(api, upload(client, user, GOOD), "ALL_OR_NOTHING", django_capture_on_commit_callbacks)
    run_jobs()
    job = run_again(Job.objects.get(kind="location.import"))
    assert (job.state, job.attempts, job.result["created"], job.result["unchanged"]) == ("SUCCEEDED", 2, 0, 4)
    assert job.message == "Imported 0 new locations; 4 were already there."
    assert Location.objects.filter(code__in=["P900", "C900", "H900", "H901"]).count() == 4
