"""Exporting individuals and households: started over GraphQL, run by a real RQ worker in
process, read back through the download route as a user would."""

from __future__ import annotations

import csv
import datetime
import io
from typing import Any

import openpyxl
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.auth.tokens import issue
from core.jobs import JobContext
from core.loader import module_config
from core.models import Job
from modules.individual.export import run_export
from modules.individual.services import (
    add_member,
    create_group,
    create_individual,
    delete_group,
    delete_individual,
)
from modules.location.services import create_location, set_user_locations

pytestmark = pytest.mark.django_db

EXPORTER = ["individual.export", "core.job.view"]
NATIONAL_EXPORTER = [*EXPORTER, "location.scope.national"]

INDIVIDUAL_HEADER = [
    "id", "first_name", "last_name", "dob", "sex", "location_code", "location_name",
    "household_code", "role", "recipient_type",
    "national_id", "phone", "disability", "vulnerability_score", "education_level",
    "date_created", "date_updated",
]
GROUP_HEADER = ["id", "code", "location_code", "head_first_name", "head_last_name", "member_count",
                "livelihood", "house_type"]

EXPORT_INDIVIDUALS = """mutation($input: ExportIndividualsMutationInput!) {
  exportIndividuals(input: $input) { errors { field code message } job { uuid state } } }"""
EXPORT_GROUPS = """mutation($input: ExportGroupsMutationInput!) {
  exportGroups(input: $input) { errors { field code message } job { uuid state } } }"""

FORMULA = '=HYPERLINK("http://evil.example","click")'


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Any) -> Any:
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def registry(admin_user: Any) -> dict[str, Any]:
    """Two communes of one province; a household in each, one person in none, and one
    person whose names a spreadsheet would run as formulas."""
    made: dict[str, Any] = {}

    def place(code: str, name: str, type_: str, parent: str | None = None) -> None:
        made[code] = create_location(admin_user, code=code, name=name, type=type_,
                                     parent_id=made[parent].pk if parent else None)

    place("P1", "Bujumbura", "Province")
    place("C11", "Mukaza", "Commune", "P1")
    place("C12", "Ntahangwa", "Commune", "P1")
    place("H111", "Rohero", "Colline", "C11")
    place("H121", "Kamenge", "Colline", "C12")

    def person(key: str, first: str, last: str, colline: str, **ext: Any) -> None:
        made[key] = create_individual(admin_user, first_name=first, last_name=last,
                                      dob=datetime.date(1980, 5, 17), sex="F",
                                      location_id=made[colline].pk, json_ext=ext or None)

    person("alice", "Alice", "Ndayisenga", "H111", national_id="BI-0001", phone="+257 79000001",
           disability=True, vulnerability_score=72, education_level="primary")
    person("claire", "Claire", "Hakizimana", "H111", national_id="BI-0002", vulnerability_score=40)
    person("bosco", "Bosco", "Ndayishimiye", "H121", national_id="BI-0003", vulnerability_score=90)
    person("evil", FORMULA, "@SUM(A1:A9)", "H111")

    made["hh1"] = create_group(admin_user, code="HH-001", location_id=made["H111"].pk,
                               json_ext={"livelihood": "-2+3+cmd|' /C calc'!A0", "house_type": "permanent"})
    made["hh2"] = create_group(admin_user, code="HH-002", location_id=made["H121"].pk)
    add_member(admin_user, group_id=made["hh1"].pk, individual_id=made["alice"].pk, role="HEAD",
               recipient_type="PRIMARY")
    add_member(admin_user, group_id=made["hh1"].pk, individual_id=made["claire"].pk, role="SPOUSE")
    add_member(admin_user, group_id=made["hh2"].pk, individual_id=made["bosco"].pk, role="HEAD")
    return made


def export(gql: Any, user: Any, capture: Any, run_jobs: Any, mutation: str = EXPORT_INDIVIDUALS,
           **input: Any) -> Job:
    """Start an export as ``user``, run it, and return the finished job."""
    with capture(execute=True):
        data = gql(user).ok(mutation, {"input": input})
    payload = next(iter(data.values()))
    assert payload["errors"] == [], payload["errors"]
    assert payload["job"]["state"] == "QUEUED"
    assert run_jobs() == 1
    return Job.objects.get(pk=payload["job"]["uuid"])


def download(client: Any, user: Any, job: Job) -> Any:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {issue(user).token}"} if user else {}
    return client.get(f"/api/individual/export/{job.pk}/download", **headers)


def csv_rows(client: Any, user: Any, job: Job) -> list[dict[str, str]]:
    response = download(client, user, job)
    assert response.status_code == 200, response.content
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def xlsx_sheet(client: Any, user: Any, job: Job) -> Any:
    response = download(client, user, job)
    assert response.status_code == 200, response.content
    return openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content))).active


def by_first_name(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {row["first_name"]: row for row in rows}


# --- what is exported ------------------------------------------------------------------------


def test_csv_export_has_every_column_household_and_json_ext(
        client, gql, make_user, registry, run_jobs, django_capture_on_commit_callbacks):
    user = make_user(NATIONAL_EXPORTER)
    job = export(gql, user, django_capture_on_commit_callbacks, run_jobs, format="CSV")

    assert job.state == Job.SUCCEEDED, job.message
    assert job.result == {"rows": 4, "file": f"exports/{job.pk}.csv", "format": "csv"}
    response = download(client, user, job)
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"] and ".csv" in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    assert next(csv.reader(io.StringIO(text))) == INDIVIDUAL_HEADER
    rows = by_first_name(list(csv.DictReader(io.StringIO(text))))

    alice = rows["Alice"]
    assert alice["id"] == str(registry["alice"].pk)
    assert (alice["last_name"], alice["dob"], alice["sex"]) == ("Ndayisenga", "1980-05-17", "F")
    assert (alice["location_code"], alice["location_name"]) == ("H111", "Rohero")
    assert (alice["household_code"], alice["role"], alice["recipient_type"]) == ("HH-001", "HEAD", "PRIMARY")
    assert (alice["national_id"], alice["disability"], alice["vulnerability_score"],
            alice["education_level"]) == ("BI-0001", "true", "72", "primary")
    # a leading + would make a spreadsheet compute the phone number
    assert alice["phone"] == "'+257 79000001"
    assert datetime.datetime.fromisoformat(alice["date_created"]) == registry["alice"].date_created
    assert rows["Claire"]["role"] == "SPOUSE" and rows["Claire"]["recipient_type"] == ""
    assert rows["Claire"]["phone"] == "" and rows["Claire"]["disability"] == ""


def test_person_without_household_has_empty_household_columns(
        client, gql, make_user, registry, run_jobs, django_capture_on_commit_callbacks):
    user = make_user(NATIONAL_EXPORTER)
    job = export(gql, user, django_capture_on_commit_callbacks, run_jobs,
                 filterNotAttachedToGroup=True)
    rows = csv_rows(client, user, job)
    assert [(r["last_name"], r["household_code"], r["role"]) for r in rows] == [("'@SUM(A1:A9)", "", "")]


def test_export_honours_name_and_custom_filters(
        client, gql, make_user, registry, run_jobs, django_capture_on_commit_callbacks):
    user = make_user(NATIONAL_EXPORTER)
    job = export(gql, user, django_capture_on_commit_callbacks, run_jobs,
                 lastName_Icontains="ndayi")
    assert sorted(r["first_name"] for r in csv_rows(client, user, job)) == ["Alice", "Bosco"]

    job = export(gql, user, django_capture_on_commit_callbacks, run_jobs,
                 lastName_Icontains="ndayi", customFilters=["vulnerability_score__gte__integer=80"])
    assert [r["first_name"] for r in csv_rows(client, user, job)] == ["Bosco"]
    assert job.params["filters"] == {"last_name__icontains": "ndayi",
                                     "custom_filters": ["vulnerability_score__gte__integer=80"]}


def test_export_honours_location_and_household_filters(
        client, gql, make_user, registry, run_jobs, django_capture_on_commit_callbacks):
    user = make_user(NATIONAL_EXPORTER)
    job = export(gql, user, django_capture_on_commit_callbacks, run_jobs, location=str(registry["C12"].pk),
                 dob_Gte="1980-05-17", dob_Lte="1980-05-17")
    assert [r["first_name"] for r in csv_rows(client, user, job)] == ["Bosco"]
    job = export(gql, user, django_capture_on_commit_callbacks, run_jobs, dob_Gte="1980-05-18")
    assert job.result["rows"] == 0
    job = export(gql, user, django_capture_on_commit_callbacks, run_jobs, groupId=str(registry["hh1"].pk))
    assert sorted(r["first_name"] for r in csv_rows(client, user, job)) == ["Alice", "Claire"]


def test_deleted_rows_are_exported_only_when_asked_for(
        client, gql, make_user, admin_user, registry, run_jobs, django_capture_on_commit_callbacks):
    delete_individual(admin_user, registry["claire"].pk)
    delete_individual(admin_user, registry["bosco"].pk)
    delete_group(admin_user, registry["hh2"].pk)
    user = make_user(NATIONAL_EXPORTER)
    job = export(gql, user, django_capture_on_commit_callbacks, run_jobs)
    assert "Claire" not in {r["first_name"] for r in csv_rows(client, user, job)}
    job = export(gql, user, django_capture_on_commit_callbacks, run_jobs, isDeleted=True)
    assert sorted((r["first_name"], r["household_code"]) for r in csv_rows(client, user, job)) == [
        ("Bosco", ""), ("Claire", "")]
    job = export(gql, user, django_capture_on_commit_callbacks, run_jobs, EXPORT_GROUPS, isDeleted=True)
    assert [(r["code"], r["member_count"]) for r in csv_rows(client, user, job)] == [("HH-002", "0")]


def test_scoped_user_exports_only_their_commune_without_any_filter(
        client, gql, make_user, admin_user, registry, run_jobs, django_capture_on_commit_callbacks):
    user = make_user(EXPORTER)
    set_user_locations(admin_user, user, [registry["C12"].pk])
    job = export(gql, user, django_capture_on_commit_callbacks, run_jobs)
    assert [r["first_name"] for r in csv_rows(client, user, job)] == ["Bosco"]
    assert job.result["rows"] == 1

    job = export(gql, user, django_capture_on_commit_callbacks, run_jobs, EXPORT_GROUPS)
    assert [r["code"] for r in csv_rows(client, user, job)] == ["HH-002"]


def test_user_without_scope_exports_nobody(
        client, gql, make_user, registry, run_jobs, django_capture_on_commit_callbacks):
    user = make_user(EXPORTER)
    job = export(gql, user, django_capture_on_commit_callbacks, run_jobs)
    assert job.state == Job.SUCCEEDED and job.result["rows"] == 0
    assert csv_rows(client, user, job) == []


def test_household_export_counts_members_and_names_the_head(
        client, gql, make_user, registry, run_jobs, django_capture_on_commit_callbacks):
    user = make_user(NATIONAL_EXPORTER)
    job = export(gql, user, django_capture_on_commit_callbacks, run_jobs, EXPORT_GROUPS)
    response = download(client, user, job)
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    assert next(csv.reader(io.StringIO(text))) == GROUP_HEADER
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["code"], r["location_code"], r["head_first_name"], r["head_last_name"], r["member_count"])
            for r in rows] == [("HH-001", "H111", "Alice", "Ndayisenga", "2"),
                               ("HH-002", "H121", "Bosco", "Ndayishimiye", "1")]
    assert rows[0]["livelihood"] == "'-2+3+cmd|' /C calc'!A0"
    assert rows[0]["house_type"] == "permanent" and rows[1]["house_type"] == ""

    job = export(gql, user, django_capture_on_commit_callbacks, run_jobs, EXPORT_GROUPS, code_Icontains="002")
    assert [r["code"] for r in csv_rows(client, user, job)] == ["HH-002"]


def test_xlsx_export_reads_back_with_typed_cells(
        client, gql, make_user, registry, run_jobs, django_capture_on_commit_callbacks):
    user = make_user(NATIONAL_EXPORTER)
    job = export(gql, user, django_capture_on_commit_callbacks, run_jobs, format="XLSX")
    assert job.result["file"] == f"exports/{job.pk}.xlsx"
    response = download(client, user, job)
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

    sheet = xlsx_sheet(client, user, job)
    values = list(sheet.iter_rows(values_only=True))
    assert list(values[0]) == INDIVIDUAL_HEADER
    rows = {row[1]: dict(zip(INDIVIDUAL_HEADER, row, strict=True)) for row in values[1:]}
    assert len(rows) == 4
    alice = rows["Alice"]
    assert alice["dob"] == datetime.datetime(1980, 5, 17)
    assert (alice["household_code"], alice["role"], alice["disability"], alice["vulnerability_score"]) == (
        "HH-001", "HEAD", True, 72)
    assert alice["phone"] == "'+257 79000001"
    # Excel keeps times to the millisecond
    created = registry["alice"].date_created.replace(tzinfo=None)
    assert abs(alice["date_created"] - created) < datetime.timedelta(milliseconds=1)


# --- formula injection -----------------------------------------------------------------------


def test_formula_cells_are_neutralised_in_csv(
        client, gql, make_user, registry, run_jobs, django_capture_on_commit_callbacks):
    user = make_user(NATIONAL_EXPORTER)
    job = export(gql, user, django_capture_on_commit_callbacks, run_jobs, lastName_Icontains="sum")
    [row] = csv_rows(client, user, job)
    assert row["first_name"] == "'" + FORMULA
    assert row["last_name"] == "'@SUM(A1:A9)"


def test_formula_cells_are_text_not_formulas_in_xlsx(
        client, gql, make_user, registry, run_jobs, django_capture_on_commit_callbacks):
    user = make_user(NATIONAL_EXPORTER)
    job = export(gql, user, django_capture_on_commit_callbacks, run_jobs, format="XLSX")
    sheet = xlsx_sheet(client, user, job)
    cells = [cell for row in sheet.iter_rows() for cell in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    [evil] = [row for row in sheet.iter_rows(min_row=2) if row[2].value == "'@SUM(A1:A9)"]
    assert evil[1].value == "'" + FORMULA and evil[1].data_type == "s"

    job = export(gql, user, django_capture_on_commit_callbacks, run_jobs, EXPORT_GROUPS, format="XLSX")
    sheet = xlsx_sheet(client, user, job)
    assert sheet.cell(row=2, column=GROUP_HEADER.index("livelihood") + 1).value == "'-2+3+cmd|' /C calc'!A0"
    assert not [c.coordinate for row in sheet.iter_rows() for c in row if c.data_type == "f"]


def test_control_characters_do_not_break_an_xlsx_export(
        client, gql, make_user, admin_user, registry, run_jobs, django_capture_on_commit_callbacks):
    # such bytes arrive from legacy files; openpyxl refuses them in a cell
    create_individual(admin_user, first_name="Jean\x07", last_name="Bell", dob=datetime.date(1990, 1, 1),
                      location_id=registry["H111"].pk)
    user = make_user(NATIONAL_EXPORTER)
    job = export(gql, user, django_capture_on_commit_callbacks, run_jobs, format="XLSX", lastName_Icontains="bell")
    assert job.state == Job.SUCCEEDED, job.message
    assert xlsx_sheet(client, user, job).cell(row=2, column=2).value == "Jean"


# --- the job ---------------------------------------------------------------------------------


def test_progress_reaches_the_total(gql, make_user, registry, run_jobs, django_capture_on_commit_callbacks):
    user = make_user(NATIONAL_EXPORTER)
    job = export(gql, user, django_capture_on_commit_callbacks, run_jobs, EXPORT_GROUPS, format="XLSX")
    assert job.state == Job.SUCCEEDED
    assert (job.stage, job.processed, job.total) == ("done", 2, 2)
    assert job.message == "Exported 2 households to XLSX."
    assert job.finished_at is not None


def sheet_rows(content: bytes) -> list[tuple[Any, ...]]:
    book = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
    return [row for sheet in book.worksheets for row in sheet.iter_rows(values_only=True)]


def test_an_export_run_again_writes_the_same_file_once(gql, make_user, registry, run_jobs, run_again, media,
                                                      django_capture_on_commit_callbacks):
    user = make_user(NATIONAL_EXPORTER)
    job = export(gql, user, django_capture_on_commit_callbacks, run_jobs, EXPORT_GROUPS, format="XLSX")
    first = (media / job.result["file"]).read_bytes()
    again = run_again(job)
    assert (again.state, again.attempts, again.result["rows"], again.result["file"]) == (
        Job.SUCCEEDED, 2, 2, job.result["file"])
    assert [p.name for p in (media / "exports").iterdir()] == [f"{job.pk}.xlsx"]  # no second file, no leftovers
    # the workbook's own timestamps (docProps/core.xml, the zip entries) differ between runs; the
    # cells must not
    assert sheet_rows((media / job.result["file"]).read_bytes()) == sheet_rows(first)


def test_export_over_the_limit_fails_with_a_clear_message_and_leaves_no_file(
        gql, make_user, registry, run_jobs, django_capture_on_commit_callbacks, monkeypatch, media):
    monkeypatch.setitem(module_config("individual"), "export_max_rows", 3)
    user = make_user(NATIONAL_EXPORTER)
    job = export(gql, user, django_capture_on_commit_callbacks, run_jobs)
    assert job.state == Job.FAILED
    assert "4 rows" in job.message and "limit of 3" in job.message
    assert not list(media.rglob("*.csv")) and not list(media.rglob("*.part"))


def test_invalid_custom_filter_is_a_typed_error_and_starts_no_job(gql, make_user, registry):
    data = gql(make_user(NATIONAL_EXPORTER)).ok(EXPORT_INDIVIDUALS, {"input": {
        "customFilters": ["vulnerability_score__gte__integer=high"]}})
    assert data["exportIndividuals"]["job"] is None
    [error] = data["exportIndividuals"]["errors"]
    assert (error["field"], error["code"]) == ("customFilters", "INVALID_CUSTOM_FILTER")
    assert "'high' is not a valid integer" in error["message"]
    assert not Job.objects.filter(kind="individual.export").exists()


def test_user_without_export_permission_is_forbidden(gql, make_user, registry):
    result = gql(make_user(["individual.search", "location.scope.national"])).execute(
        EXPORT_INDIVIDUALS, {"input": {}})
    assert result["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"
    assert not Job.objects.filter(kind="individual.export").exists()


def _run_directly(user: Any, entity: str) -> int:
    # a fresh user, as a worker loads it: nothing cached from an earlier run
    user = type(user).objects.get(pk=user.pk)
    job = Job.objects.create(kind="individual.export", module="individual", created_by=user,
                             params={"entity": entity, "format": "csv", "filters": {}})
    with CaptureQueriesContext(connection) as queries:
        result = run_export(JobContext(job=job, user=user, params=job.params))
    assert result["rows"] == Job.objects.get(pk=job.pk).total
    return len(queries)


@pytest.mark.parametrize("entity", ["individual", "group"])
def test_queries_per_export_do_not_grow_with_rows(admin_user, make_user, entity):
    user = make_user(NATIONAL_EXPORTER)
    location = create_location(admin_user, code="P9", name="Rumonge", type="Province")

    def register(start: int, count: int) -> None:
        for i in range(start, start + count):
            person = create_individual(admin_user, first_name=f"Person {i}", last_name="Nkurunziza",
                                       dob=datetime.date(1990, 1, 1), location_id=location.pk,
                                       json_ext={"national_id": f"ID-{i:05d}"})
            group = create_group(admin_user, code=f"HH-{i:05d}", location_id=location.pk)
            add_member(admin_user, group_id=group.pk, individual_id=person.pk, role="HEAD")

    register(0, 10)
    few = _run_directly(user, entity)
    register(10, 190)
    assert _run_directly(user, entity) == few
    assert few <= 8


# --- download --------------------------------------------------------------------------------


def test_download_is_only_for_the_creator_or_a_job_administrator(
        client, gql, make_user, admin_user, registry, run_jobs, django_capture_on_commit_callbacks):
    owner = make_user(NATIONAL_EXPORTER)
    job = export(gql, owner, django_capture_on_commit_callbacks, run_jobs)

    assert download(client, owner, job).status_code == 200
    assert download(client, make_user(NATIONAL_EXPORTER), job).status_code == 404
    assert download(client, None, job).status_code == 401
    assert download(client, make_user(["individual.export", "core.job.view_all", "location.scope.national"]),
                    job).status_code == 200
    # job administrators limited to a commune cannot read a national export
    scoped_admin = make_user(["individual.export", "core.job.view_all"])
    set_user_locations(admin_user, scoped_admin, [registry["C11"].pk])
    assert download(client, scoped_admin, job).status_code == 404


def test_download_of_an_unfinished_export_is_not_found(client, gql, make_user, registry,
                                                      django_capture_on_commit_callbacks):
    owner = make_user(NATIONAL_EXPORTER)
    with django_capture_on_commit_callbacks(execute=False):
        data = gql(owner).ok(EXPORT_INDIVIDUALS, {"input": {}})
    job = Job.objects.get(pk=data["exportIndividuals"]["job"]["uuid"])
    response = download(client, owner, job)
    assert response.status_code == 404 and response.json()["error"]["code"] == "NOT_READY"
