"""Hostile and refused files: a zip bomb is refused from its directory before anything is
inflated, a NUL character is a row error rather than a database error, and a refused upload
or import leaves no file on disk."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest

from core.auth.tokens import issue
from core.models import ImportIssue, Job, Upload
from modules.individual.models import Individual

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("import_media_in_tmp")]

REJECT = """mutation($input: RejectIndividualImportMutationInput!) { rejectIndividualImport(input: $input) {
    errors { code } } }"""


def stored_files(settings: Any) -> list[Path]:
    return [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]


def zip_bomb(inflated_mib: int) -> bytes:
    """A workbook-shaped zip whose sheet inflates to ``inflated_mib`` MiB of blanks."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            block = b" " * (1024 * 1024)
            for _ in range(inflated_mib):
                sheet.write(block)
    return out.getvalue()


def test_a_zip_bomb_is_refused_before_it_is_inflated(run_import, importer, hierarchy, settings, monkeypatch):
    bomb = zip_bomb(160)
    assert len(bomb) < 400 * 1024  # about a thousand times smaller than what it inflates to
    # What "before it is inflated" means, counted rather than timed (a loaded machine makes any
    # time limit flaky): the bytes anything in this process inflated out of a zip member.
    inflated = []
    real_read = zipfile.ZipExtFile.read

    def counting_read(self, *args):
        data = real_read(self, *args)
        inflated.append(len(data))
        return data

    monkeypatch.setattr(zipfile.ZipExtFile, "read", counting_read)
    job = run_import(importer, bomb, name="people.xlsx")
    assert sum(inflated) < 1024 * 1024
    assert job.state == Job.FAILED
    assert "inflates" in job.message and "160 MiB" in job.message
    assert stored_files(settings) == []  # refused: its file is not kept


def test_a_real_workbook_is_well_within_the_limits(run_import, importer, hierarchy, registry_files):
    rows = [registry_files.row(f"P{i}", "Ndayishimiye", location="H111") for i in range(300)]
    job = run_import(importer, registry_files.xlsx_bytes(rows), name="people.xlsx")
    assert job.state == Job.SUCCEEDED, (job.message, job.errors)


def test_a_nul_character_in_a_csv_refuses_its_row_only(run_import, importer, hierarchy, report, registry_files):
    text = registry_files.csv_text([registry_files.row("Jean", "Ndayishimiye"), registry_files.row("Ma\x00rie", "Irakoze", sex="F\x00"), registry_files.row("Eric", "Bosco")])
    job = run_import(importer, text, mode="VALID_ROWS")
    assert job.state in (Job.SUCCEEDED, Job.PARTIAL), job.message
    assert sorted(Individual.objects.values_list("first_name", flat=True)) == ["Eric", "Jean"]
    issues = list(ImportIssue.objects.filter(report__job=job).values_list("row", "code"))
    assert (3, "INVALID_CHARACTER") in issues
    lines = report(importer, job)
    assert all("\x00" not in cell for line in lines for cell in line)


def test_a_nul_character_in_the_header_refuses_the_file(run_import, importer, hierarchy):
    job = run_import(importer, "first_name,last\x00_name,dob\nJean,N,1980-01-01\n")
    assert job.state == Job.FAILED and "NUL character" in job.message


def test_an_import_refused_whole_leaves_no_file(run_import, importer, hierarchy, settings, registry_files):
    job = run_import(importer, registry_files.csv_text([registry_files.row("", "Nameless")]))
    assert job.state == Job.FAILED
    assert stored_files(settings) == []
    assert Upload.objects.count() == 1  # the record of what was sent stays


def test_a_rejected_import_leaves_no_file(run_import, gql, importer, approver, settings, import_approval,
                                          django_capture_on_commit_callbacks, registry_files):
    job = run_import(importer, registry_files.csv_text([registry_files.row("Jean", "Ndayishimiye")]))
    assert job.state == Job.WAITING and len(stored_files(settings)) == 1
    with django_capture_on_commit_callbacks(execute=True):
        gql(approver).ok(REJECT, {"input": {"jobId": str(job.pk), "reason": "Wrong province"}})
    assert stored_files(settings) == []


def test_a_refused_one_step_import_leaves_no_file(client, run_import, make_user, importer, hierarchy, settings,
                                                  django_capture_on_commit_callbacks, registry_files):
    content = registry_files.csv_text([registry_files.row("Jean", "Ndayishimiye")])
    run_import(importer, content)
    kept = stored_files(settings)
    data = io.BytesIO(content.encode())
    data.name = "people.csv"
    response = client.post("/api/individual/import", {"file": data},
                           HTTP_AUTHORIZATION=f"Bearer {issue(importer).token}")
    assert response.status_code == 400 and response.json()["error"]["code"] == "DUPLICATE_FILE"
    assert stored_files(settings) == kept
    assert Upload.objects.count() == 1


def test_only_declared_upload_purposes_are_accepted(client, make_user, hierarchy, settings, registry_files):
    from core.uploads import upload_purposes

    assert {"individual.import", "location.import"} <= set(upload_purposes())
    # individual.search is a permission code, not something files are uploaded for
    user = make_user([*registry_files.IMPORTER, "location.scope.national"])
    data = io.BytesIO(b"a,b\n")
    data.name = "x.csv"
    response = client.post("/api/upload?purpose=individual.search", {"file": data},
                           HTTP_AUTHORIZATION=f"Bearer {issue(user).token}")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "UNKNOWN_PURPOSE" and "individual.import" in error["message"]
    assert stored_files(settings) == []
