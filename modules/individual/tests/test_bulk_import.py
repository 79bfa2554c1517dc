"""The bulk import of individuals and households, as its users meet it: a file uploaded over
HTTP, the import started over GraphQL, a real RQ worker running it, the registry, the job and
the downloadable report read back afterwards."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.db import connection

from core.auth.tokens import issue
from core.hooks import hookimpl
from core.loader import get_registry
from core.models import HistoryEntry, Job
from modules.individual import services
from modules.individual.import_models import ImportBatch, ImportRun
from modules.individual.models import Group, GroupIndividual, Individual

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("import_media_in_tmp")]


@pytest.fixture
def family(registry_files: Any) -> list[tuple[str, ...]]:
    return [
        registry_files.row("Jean", "Ndayishimiye", "1980-05-17", "M", "H111", "HH-1", "HEAD", "PRIMARY", "BI-0001", "+257 79000001",
            "no", "42", "primary"),
        registry_files.row("Marie", "Ndayishimiye", "1984-02-01", "F", "", "HH-1", "SPOUSE", "SECONDARY", "BI-0002", "", "yes", "7"),
        registry_files.row("Eric", "Ndayishimiye", "2015-09-30", "M", "", "HH-1", "SON"),
        registry_files.row("Goreth", "Niyonzima", "1975-11-11", "F", "H211", "HH-2", "HEAD", "PRIMARY", "BI-0003"),
        registry_files.row("Alexis", "Niyonzima", "2010-01-01", "m", "H211", "HH-2", ""),
        registry_files.row("Odette", "Irakoze", "1999-12-31", "", "H112", national_id="BI-0004", score="100"),
    ]


def refresh(job: Job) -> Job:
    job.refresh_from_db()
    return job


def staging_tables() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE tablename LIKE 'individual_stage%%'")
        return [r[0] for r in cursor.fetchall()]


# --- a good file -----------------------------------------------------------------------------


def test_a_csv_file_registers_people_households_and_memberships_with_history(run_import, importer, hierarchy, registry_files, family):
    job = run_import(importer, registry_files.csv_text(family))

    assert (job.state, job.stage, job.error_count) == (Job.SUCCEEDED, "done", 0)
    assert job.processed == job.total == 6
    assert job.result["created_individuals"] == 6
    assert job.result["created_households"] == 2
    jean = Individual.objects.get(first_name="Jean")
    assert jean.json_ext == {"national_id": "BI-0001", "phone": "+257 79000001", "disability": False,
                             "vulnerability_score": 42, "education_level": "primary"}
    assert Individual.objects.get(first_name="Marie").json_ext == {
        "national_id": "BI-0002", "disability": True, "vulnerability_score": 7}
    assert Individual.objects.get(first_name="Eric").json_ext == {}
    assert (jean.dob, jean.sex, jean.location.code) == (datetime.date(1980, 5, 17), "M", "H111")
    # members without a location live where their household does
    assert Individual.objects.get(first_name="Eric").location.code == "H111"
    assert Individual.objects.get(first_name="Alexis").sex == "M"
    assert Individual.objects.get(first_name="Odette").sex == ""

    one = Group.objects.get(code="HH-1")
    assert (one.head, one.location.code) == (jean, "H111")
    roles = dict(GroupIndividual.objects.filter(group=one).values_list("individual__first_name", "role"))
    assert roles == {"Jean": "HEAD", "Marie": "SPOUSE", "Eric": "SON"}
    assert GroupIndividual.objects.get(individual=jean).recipient_type == "PRIMARY"
    assert GroupIndividual.objects.get(individual__first_name="Alexis").role == "OTHER_RELATIVE"
    assert not GroupIndividual.objects.filter(individual__first_name="Odette").exists()
    assert (jean.user_created, jean.version) == (importer, 1)

    history = HistoryEntry.objects.filter(table_name="individual_individual", operation="I")
    assert history.count() == 6
    assert set(history.values_list("user_id", flat=True)) == {importer.pk}
    assert {h.context["job"] for h in history} == {str(job.pk)}
    assert HistoryEntry.objects.filter(table_name="individual_groupindividual").count() == 5
    assert HistoryEntry.objects.filter(table_name="individual_group").count() == 2
    assert staging_tables() == []


def test_an_xlsx_file_reads_like_the_csv(run_import, importer, hierarchy, registry_files):
    cells = [
        ["Jean", "Ndayishimiye", datetime.date(1980, 5, 17), "M", "H111", "HH-9", "HEAD", "PRIMARY", 12345678, "",
         False, 42, "primary"],
        ["Marie", "Ndayishimiye", datetime.datetime(1984, 2, 1), "F", None, "HH-9", "SPOUSE", None, None, None,
         True, 7.0, None],
        [None] * 13,  # an empty row is skipped, as spreadsheets leave them
    ]
    job = run_import(importer, registry_files.xlsx_bytes(cells), name="people.xlsx")

    assert job.state == Job.SUCCEEDED, job.errors
    assert Individual.objects.get(first_name="Jean").json_ext == {
        "national_id": "12345678", "disability": False, "vulnerability_score": 42, "education_level": "primary"}
    marie = Individual.objects.get(first_name="Marie")
    assert (marie.dob, marie.json_ext) == (datetime.date(1984, 2, 1), {"disability": True, "vulnerability_score": 7})
    assert Group.objects.get(code="HH-9").head.first_name == "Jean"


# --- what is refused, and why ----------------------------------------------------------------


def test_every_row_is_checked_and_the_report_says_why_in_plain_words(run_import, importer, hierarchy, report, registry_files):
    rows = [
        registry_files.row("", "Kaneza", "1990-01-01"),                                   # 2
        registry_files.row("Ana", "Kaneza", "01/02/1990"),                                # 3
        registry_files.row("Bea", "Kaneza", "2999-01-01"),                                # 4
        registry_files.row("Cia", "Kaneza", "1850-01-01"),                                # 5
        registry_files.row("Dia", "Kaneza", sex="X"),                                     # 6
        registry_files.row("Eva", "Kaneza", score="lots"),                                # 7
        registry_files.row("Fay", "Kaneza", score="101"),                                 # 8
        registry_files.row("Gia", "Kaneza", national_id="bi 1"),                          # 9
        registry_files.row("Ida", "Kaneza", disability="maybe"),                          # 10
        registry_files.row("Joy", "Kaneza", education="university"),                     # 11
        registry_files.row("Kia", "Kaneza", household="HH-3", role="CHIEF"),              # 12
        registry_files.row("Lea", "Kaneza", role="HEAD"),                                 # 13
        registry_files.row("Mia", "Kaneza", location="NOWHERE"),                          # 14
        registry_files.row("Nia", "Kaneza", location=""),                                 # 15
        registry_files.row("Oda", "Kaneza", household="HH-4", recipient="MAIN"),          # 16
    ]
    job = run_import(importer, registry_files.csv_text(rows))

    assert (job.state, job.stage) == (Job.FAILED, "failed")
    assert job.message.startswith("15 of 15 rows are invalid") or job.message.startswith("None of the 15 rows")
    assert not Individual.objects.exists()
    lines = report(importer, job)
    assert lines == [
        ["2", "first_name", "REQUIRED", "The first name is empty."],
        ["3", "dob", "INVALID_DATE", "'01/02/1990' is not a date; write it as YYYY-MM-DD, e.g. 1985-03-21."],
        ["4", "dob", "IN_FUTURE", "The date of birth 2999-01-01 is in the future."],
        ["5", "dob", "TOO_OLD", "The date of birth 1850-01-01 is before 1900."],
        ["6", "sex", "INVALID_CHOICE", "The sex is M, F or O (or empty), not 'X'."],
        ["7", "vulnerability_score", "INVALID_TYPE", "vulnerability_score: 'lots' is not a whole number."],
        ["8", "vulnerability_score", "INVALID_VALUE", "vulnerability_score: 101 is greater than the maximum of 100"],
        ["9", "national_id", "INVALID_VALUE", "national_id: 'bi 1' does not match '^[0-9A-Z-]{4,20}$'"],
        ["10", "disability", "INVALID_TYPE",
         "disability: 'maybe' is not true or false (write true/false, yes/no or 1/0)."],
        ["11", "education_level", "INVALID_VALUE",
         "education_level: 'university' is not one of ['none', 'primary', 'secondary', 'higher']"],
        ["12", "role", "INVALID_CHOICE",
         "'CHIEF' is not a household role; roles are HEAD, SPOUSE, SON, DAUGHTER, FATHER, MOTHER, GRANDFATHER, "
         "GRANDMOTHER, GRANDSON, GRANDDAUGHTER, BROTHER, SISTER, OTHER_RELATIVE, NOT_RELATED."],
        ["13", "household_code", "REQUIRED", "A role or recipient type needs the household code of the household."],
        ["14", "location_code", "LOCATION_NOT_FOUND", "No location has the code 'NOWHERE'."],
        ["15", "location_code", "LOCATION_REQUIRED", "The location code is empty."],
        ["16", "recipient_type", "INVALID_CHOICE", "The recipient type is PRIMARY or SECONDARY (or empty), not 'MAIN'."],
    ]
    assert job.error_count == 15
    assert [e["code"] for e in job.errors][:2] == ["REQUIRED", "INVALID_DATE"]


def test_a_household_has_one_head_one_primary_recipient_and_one_location(run_import, importer, hierarchy, report, registry_files):
    rows = [
        registry_files.row("A", "One", household="HH-A", role="HEAD", recipient="PRIMARY", location="H111"),   # 2
        registry_files.row("B", "One", household="HH-A", role="HEAD", location=""),                            # 3
        registry_files.row("C", "One", household="HH-A", recipient="PRIMARY", location="H112"),                # 4
        registry_files.row("D", "Two", household="HH-B", role="SON", location=""),                             # 5
    ]
    job = run_import(importer, registry_files.csv_text(rows))

    assert job.state == Job.FAILED
    assert report(importer, job) == [
        ["2", "role", "MULTIPLE_HEADS", "Household 'HH-A' has 2 heads in this file (rows 2, 3); it can have one."],
        ["2", "recipient_type", "MULTIPLE_PRIMARIES",
         "Household 'HH-A' has 2 primary recipients in this file (rows 2, 4); it can have one."],
        ["3", "role", "MULTIPLE_HEADS", "Household 'HH-A' has 2 heads in this file (rows 2, 3); it can have one."],
        ["4", "location_code", "LOCATION_MISMATCH",
         "Household 'HH-A' is in location 'H111' (its head's, or its first member's), not 'H112'; "
         "a household lives in one location."],
        ["4", "recipient_type", "MULTIPLE_PRIMARIES",
         "Household 'HH-A' has 2 primary recipients in this file (rows 2, 4); it can have one."],
        ["5", "location_code", "LOCATION_REQUIRED",
         "No member of household 'HH-B' has a location code; give its head one."],
    ]


def test_unique_keys_clash_within_the_file_and_with_the_registry(run_import, importer, admin_user, hierarchy,
                                                                 report, registry_files):
    services.create_individual(admin_user, first_name="Old", last_name="Timer", dob=datetime.date(1950, 1, 1),
                               location_id=hierarchy["H111"].pk, json_ext={"national_id": "BI-TAKEN"})
    rows = [
        registry_files.row("A", "A", national_id="BI-TAKEN"),   # 2
        registry_files.row("B", "B", national_id="BI-TWICE"),   # 3
        registry_files.row("C", "C", national_id="BI-FINE"),    # 4
        registry_files.row("D", "D", national_id="BI-TWICE"),   # 5
    ]
    job = run_import(importer, registry_files.csv_text(rows), mode="VALID_ROWS")

    assert (job.state, job.stage) == (Job.PARTIAL, "partially_done")
    assert report(importer, job) == [
        ["2", "national_id", "DUPLICATE_KEY", "Another individual in the registry already has national_id 'BI-TAKEN'."],
        ["3", "national_id", "DUPLICATE_IN_FILE", "national_id 'BI-TWICE' is also on row 5."],
        ["5", "national_id", "DUPLICATE_IN_FILE", "national_id 'BI-TWICE' is also on row 3."],
    ]
    assert sorted(Individual.objects.values_list("first_name", flat=True)) == ["C", "Old"]
    assert job.result["invalid"] == 3 and job.result["created_individuals"] == 1


# --- modes -----------------------------------------------------------------------------------


@pytest.fixture
def broken_household(registry_files: Any) -> list[tuple[str, ...]]:
    return [
        registry_files.row("Head", "Good", household="HH-G", role="HEAD", recipient="PRIMARY"),      # 2
        registry_files.row("Kid", "Good", household="HH-G", role="DAUGHTER", location=""),           # 3
        registry_files.row("Head", "Bad", household="HH-X", role="HEAD", location="H112"),           # 4
        registry_files.row("Kid", "Bad", "not a date", household="HH-X", role="SON", location=""),  # 5
        registry_files.row("Wife", "Bad", household="HH-X", role="SPOUSE", location=""),             # 6
        registry_files.row("Alone", "Fine", location="H211"),                                        # 7
    ]


def test_all_or_nothing_writes_nothing_when_one_row_is_invalid(run_import, importer, hierarchy, report, registry_files, broken_household):
    job = run_import(importer, registry_files.csv_text(broken_household), mode="ALL_OR_NOTHING")

    assert (job.state, job.stage) == (Job.FAILED, "failed")
    assert job.message == ("1 of 6 rows are invalid, so nothing was imported (all or nothing). "
                           "The report lists the reasons.")
    assert not Individual.objects.exists() and not Group.objects.exists()
    assert [line[:3] for line in report(importer, job)] == [["5", "dob", "INVALID_DATE"]]
    assert staging_tables() == []


def test_valid_rows_leaves_out_the_whole_household_of_an_invalid_row(run_import, importer, hierarchy, report, registry_files, broken_household):
    job = run_import(importer, registry_files.csv_text(broken_household), mode="VALID_ROWS")

    assert (job.state, job.stage) == (Job.PARTIAL, "partially_done")
    assert sorted(Individual.objects.values_list("last_name", "first_name")) == [
        ("Fine", "Alone"), ("Good", "Head"), ("Good", "Kid")]
    assert list(Group.objects.values_list("code", flat=True)) == ["HH-G"]
    assert report(importer, job) == [
        ["4", "household_code", "HOUSEHOLD_REJECTED",
         "Left out with the rest of household 'HH-X', because its row 5 is invalid."],
        ["5", "dob", "INVALID_DATE", "'not a date' is not a date; write it as YYYY-MM-DD, e.g. 1985-03-21."],
        ["6", "household_code", "HOUSEHOLD_REJECTED",
         "Left out with the rest of household 'HH-X', because its row 5 is invalid."],
    ]
    assert (job.result["valid"], job.result["invalid"], job.result["total"]) == (3, 3, 6)
    assert job.message == "Imported 3 individuals (1 new household). 3 rows left out; the report lists why."


# --- households already registered, scope ----------------------------------------------------


def test_rows_join_a_registered_household_without_a_second_head(run_import, importer, admin_user, hierarchy,
                                                                 report, registry_files):
    household = services.create_group(admin_user, code="HH-OLD", location_id=hierarchy["H112"].pk)
    head = services.create_individual(admin_user, first_name="Old", last_name="Head", dob=datetime.date(1960, 1, 1),
                                      location_id=hierarchy["H112"].pk)
    services.add_member(admin_user, group_id=household.pk, individual_id=head.pk, role="HEAD", recipient_type="PRIMARY")
    rows = [
        registry_files.row("New", "Wife", household="HH-OLD", role="SPOUSE", location=""),                    # 2
        registry_files.row("New", "Head", household="HH-NEW", role="HEAD", location="H111"),                 # 3
    ]
    job = run_import(importer, registry_files.csv_text(rows))
    assert job.state == Job.SUCCEEDED, job.errors
    wife = Individual.objects.get(last_name="Wife")
    assert wife.location == hierarchy["H112"]  # the registered household's location
    assert GroupIndividual.objects.get(individual=wife).group == household
    assert Group.objects.get(pk=household.pk).head == head
    assert job.result["households_existing"] == 1 and job.result["created_households"] == 1

    second = run_import(importer, registry_files.csv_text([
        registry_files.row("Usurper", "Head", household="HH-OLD", role="HEAD", recipient="PRIMARY", location=""),  # 2
        registry_files.row("Moved", "Away", household="HH-OLD", role="SON", location="H111"),                      # 3
    ]))
    assert second.state == Job.FAILED
    assert report(importer, second) == [
        ["2", "role", "HEAD_EXISTS", "Household 'HH-OLD' already has a head in the registry."],
        ["2", "recipient_type", "PRIMARY_EXISTS", "Household 'HH-OLD' already has a primary recipient in the registry."],
        ["3", "location_code", "LOCATION_MISMATCH", "Household 'HH-OLD' is registered in location 'H112', not 'H111'."],
    ]


def test_locations_and_households_outside_the_uploaders_scope_are_refused(run_import, admin_user, p1_importer,
                                                                           hierarchy, report, registry_files):
    services.create_group(admin_user, code="HH-SOUTH", location_id=hierarchy["H211"].pk)
    rows = [
        registry_files.row("In", "Scope", location="H112"),                                    # 2
        registry_files.row("Out", "Scope", location="H211"),                                   # 3
        registry_files.row("Joins", "South", household="HH-SOUTH", role="SON", location=""),  # 4
    ]
    job = run_import(p1_importer, registry_files.csv_text(rows), mode="VALID_ROWS")

    assert report(p1_importer, job) == [
        ["3", "location_code", "OUT_OF_SCOPE", "The location 'H211' is outside your locations."],
        ["4", "household_code", "OUT_OF_SCOPE", "Household 'HH-SOUTH' is registered outside your locations."],
    ]
    assert list(Individual.objects.values_list("first_name", flat=True)) == ["In"]


# --- likely duplicates -----------------------------------------------------------------------


def test_likely_duplicates_are_imported_and_listed_for_review(run_import, importer, admin_user, hierarchy, report, registry_files):
    known = services.create_individual(admin_user, first_name="Jean", last_name="Ndayishimiye",
                                       dob=datetime.date(1980, 5, 17), location_id=hierarchy["H111"].pk)
    rows = [
        registry_files.row("JEAN", "ndayishimiye", "1980-05-17", location="H111"),   # 2: like the registered one
        registry_files.row("Ana", "Kaneza", "1990-01-01", location="H112"),          # 3
        registry_files.row("Ana", "Kaneza", "1990-01-01", location="H112"),          # 4: like row 3
        registry_files.row("Ana", "Kaneza", "1990-01-01", location="H111"),          # 5: elsewhere, someone else
    ]
    job = run_import(importer, registry_files.csv_text(rows))

    assert (job.state, job.error_count, job.result["likely_duplicates"]) == (Job.SUCCEEDED, 0, 2)
    assert Individual.objects.count() == 5
    assert report(importer, job) == [
        ["2", "", "LIKELY_DUPLICATE", f"Looks like Jean Ndayishimiye, born 1980-05-17, already registered in "
                                      f"the same location (individual {known.pk})."],
        ["4", "", "LIKELY_DUPLICATE", "Looks like the person on row 3: same first name, last name, date of birth "
                                      "and location."],
    ]
    assert "2 rows look like people already known" in job.message


# --- the same file twice ---------------------------------------------------------------------


def test_the_same_file_is_refused_once_its_import_has_run_but_not_while_it_is_only_queued(
        start, run_import, run_jobs, importer, hierarchy, registry_files, family):
    content = registry_files.csv_text(family)
    first = start(importer, content)
    # Queued, not run: it does not count (a job that never runs must not block its file).
    second = start(importer, content)
    assert second["errors"] == [] and second["job"]["uuid"] != first["job"]["uuid"]

    run_jobs()  # both run: the one that starts second refuses itself
    one, two = Job.objects.get(pk=first["job"]["uuid"]), Job.objects.get(pk=second["job"]["uuid"])
    assert (one.state, two.state) == (Job.SUCCEEDED, Job.FAILED)
    assert two.stage == "failed" and str(one.pk) in two.message and "allowDuplicateFile" in two.message
    assert Individual.objects.count() == 6

    again = start(importer, content)  # after it ran, refused at once
    assert again["job"] is None
    [error] = again["errors"]
    assert (error["code"], error["field"]) == ("DUPLICATE_FILE", "uploadId")
    assert first["job"]["uuid"] in error["message"] and "allowDuplicateFile" in error["message"]
    # said on purpose: the registry's own checks then refuse the people already there
    forced = run_import(importer, content, allow_duplicate_file=True)
    assert forced.state == Job.FAILED
    assert {e["code"] for e in forced.errors} >= {"DUPLICATE_KEY", "HEAD_EXISTS"}
    assert Individual.objects.count() == 6


def test_an_import_run_again_after_it_finished_writes_nobody_twice(run_import, run_again, importer, hierarchy, registry_files, family):
    job = run_import(importer, registry_files.csv_text(family))
    assert job.message == "Imported 6 individuals (2 new households)."
    again = run_again(job)
    assert (again.state, again.attempts, again.result["created_individuals"]) == (Job.SUCCEEDED, 2, 6)
    assert again.message == job.message
    assert Individual.objects.count() == 6 and Group.objects.count() == 2 and GroupIndividual.objects.count() == 5


def test_a_file_whose_import_failed_may_be_sent_again(run_import, importer, hierarchy, registry_files):
    content = registry_files.csv_text([registry_files.row("", "Nameless")])
    assert run_import(importer, content).state == Job.FAILED
    assert run_import(importer, content).state == Job.FAILED  # not refused as a duplicate


# --- the report and the HTTP route -----------------------------------------------------------


def test_the_report_is_for_the_uploader_and_those_who_may_read_every_job(client, run_import, importer, make_user,
                                                                          hierarchy, registry_files):
    job = run_import(importer, registry_files.csv_text([registry_files.row("", "Nameless")]))
    url = f"/api/individual/import/{job.pk}/report.csv"

    def status(user: Any) -> int:
        headers = {"HTTP_AUTHORIZATION": f"Bearer {issue(user).token}"} if user else {}
        return int(client.get(url, **headers).status_code)

    assert status(None) == 401
    assert status(make_user(["core.job.view", "individual.import.start"])) == 404
    assert status(make_user(["core.job.view", "core.job.view_all", "location.scope.national"])) == 200
    assert status(importer) == 200


def test_one_request_uploads_and_starts_an_import(client, run_jobs, importer, hierarchy,
                                                  django_capture_on_commit_callbacks, registry_files, family):
    import io

    data = io.BytesIO(registry_files.csv_text(family).encode())
    data.name = "people.csv"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/individual/import?mode=valid_rows", {"file": data},
                               HTTP_AUTHORIZATION=f"Bearer {issue(importer).token}")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["report"] == f"/api/individual/import/{body['jobId']}/report.csv"
    with django_capture_on_commit_callbacks(execute=True):
        run_jobs()
    job = Job.objects.get(pk=body["jobId"])
    assert (job.state, job.params["mode"]) == (Job.SUCCEEDED, "valid_rows")
    assert Individual.objects.count() == 6


def _post_import(client: Any, user: Any, content: str, capture: Any) -> Any:
    import io

    data = io.BytesIO(content.encode())
    data.name = "people.csv"
    with capture(execute=True):
        return client.post("/api/individual/import", {"file": data}, HTTP_AUTHORIZATION=f"Bearer {issue(user).token}")


def test_an_upload_accepted_while_redis_is_away_runs_once_it_answers(client, run_jobs, importer, hierarchy, settings,
                                                                    monkeypatch, django_capture_on_commit_callbacks, registry_files, family):
    import time

    from core.jobs import sweep

    monkeypatch.setenv("COREMIS_JOB_DISPATCH_GRACE_SECONDS", "0.01")
    reachable = settings.RQ_QUEUES
    settings.RQ_QUEUES = {"default": {**reachable["default"], "URL": "unix:///tmp/coremis-no-redis-here.sock"}}
    response = _post_import(client, importer, registry_files.csv_text(family), django_capture_on_commit_callbacks)
    assert response.status_code == 202, response.content  # committed: an answer that says so, not a 500
    job = Job.objects.get(pk=response.json()["jobId"])
    assert (job.state, job.dispatched_at) == (Job.QUEUED, None)

    settings.RQ_QUEUES = reachable
    time.sleep(0.05)
    assert sweep().dispatched == [str(job.pk)]  # the scheduler hands it over; nobody acts
    with django_capture_on_commit_callbacks(execute=True):
        run_jobs()
    assert refresh(job).state == Job.SUCCEEDED and Individual.objects.count() == 6


def test_an_upload_that_answers_an_error_leaves_no_job_and_no_import_behind(run_import, client, importer, hierarchy,
                                                                           django_capture_on_commit_callbacks, registry_files, family):
    from core.models import Upload

    content = registry_files.csv_text(family)
    run_import(importer, content)
    jobs, runs, uploads = Job.objects.count(), ImportRun.objects.count(), Upload.objects.count()
    response = _post_import(client, importer, content, django_capture_on_commit_callbacks)
    assert response.status_code == 400 and response.json()["error"]["code"] == "DUPLICATE_FILE"
    assert (Job.objects.count(), ImportRun.objects.count(), Upload.objects.count()) == (jobs, runs, uploads)


def test_a_file_with_unknown_or_missing_columns_is_refused_whole(run_import, importer, hierarchy, registry_files):
    job = run_import(importer, registry_files.csv_text([["Jean", "N", "1980-01-01", "x"]], header=["first_name", "last_name", "dob",
                                                                                  "shoe_size"]))
    assert job.state == Job.FAILED and job.stage == "failed"
    assert job.message.startswith("The file has column(s) shoe_size that are not known; the columns are first_name,")
    job = run_import(importer, registry_files.csv_text([["Jean", "N"]], header=["first_name", "last_name"]))
    assert job.message == "The file lacks the column(s) dob."


def test_names_keep_their_quotes_backslashes_tabs_and_accents(run_import, importer, hierarchy, registry_files):
    names = [("N'Dayi", 'Back\\slash "Jr"'), ("Tab\there", "Ndayishimiyé"), ("Line\nbreak", "Ok")]
    job = run_import(importer, registry_files.csv_text([registry_files.row(first, last, location="H111") for first, last in names]))
    assert job.state == Job.SUCCEEDED, job.errors
    assert sorted(Individual.objects.values_list("first_name", "last_name")) == sorted(names)


def test_semicolon_separated_files_with_spreadsheet_headers_are_read(run_import, importer, hierarchy):
    text = "First Name;Last Name;DOB;Location Code\nJean;Ndayishimiye;1980-05-17;H111\n"
    assert run_import(importer, text).state == Job.SUCCEEDED
    assert Individual.objects.get().last_name == "Ndayishimiye"


# --- batches and events ----------------------------------------------------------------------


class Listener:
    def __init__(self) -> None:
        self.calls: list[tuple[list[Any], str]] = []

    @hookimpl
    def individual_after_created(self, individual_ids: list[Any], source: str) -> None:
        self.calls.append((list(individual_ids), source))


@pytest.fixture
def listener() -> Any:
    manager = get_registry().plugin_manager
    plugin = Listener()
    manager.register(plugin, name="test-listener")
    yield plugin
    manager.unregister(plugin)


def test_individuals_created_is_announced_once_per_batch_after_commit(run_import, importer, hierarchy, listener,
                                                                      monkeypatch, registry_files):
    monkeypatch.setitem(get_registry().config("individual"), "import_chunk_size", 100)
    rows = [registry_files.row(f"P{n}", f"Family{n // 4}", household=f"HH-{n // 4}", role="HEAD" if n % 4 == 0 else "SON",
                location="H111" if n % 4 == 0 else "") for n in range(250)]
    rows.append(registry_files.row("Late", "Family0", household="HH-0", role="DAUGHTER", location=""))  # far from its household
    job = run_import(importer, registry_files.csv_text(rows))

    assert job.state == Job.SUCCEEDED
    assert ImportBatch.objects.filter(job=job).count() == 3
    # a household is written whole by the batch of its first row
    assert [len(ids) for ids, _ in listener.calls] == [101, 100, 50]
    assert GroupIndividual.objects.filter(group__code="HH-0").count() == 5
    assert {source for _, source in listener.calls} == {f"import:{job.pk}"}
    announced = {i for ids, _ in listener.calls for i in ids}
    assert announced == {str(pk) for pk in Individual.objects.values_list("id", flat=True)}
    assert Group.objects.count() == 63  # households never straddle two batches
    assert all(b.announced for b in ImportBatch.objects.filter(job=job))


class FailingListener:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.heard: list[list[str]] = []

    @hookimpl
    def individual_after_created(self, individual_ids: list[str], source: str) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("the listener's table is locked")
        self.heard.append(list(individual_ids))


def test_a_failing_listener_gets_the_batch_again_from_a_job_instead_of_losing_it(
        run_import, importer, hierarchy, registry_files):
    from core import events
    from core.jobs import run_job

    manager = get_registry().plugin_manager
    flaky = FailingListener(1)
    manager.register(flaky, name="test-flaky-listener")
    try:
        rows = [registry_files.row(f"P{n}", "Family", household="HH-1", role="HEAD" if n == 0 else "SON",
                                   location="H111" if n == 0 else "") for n in range(3)]
        job = run_import(importer, registry_files.csv_text(rows))
        assert job.state == Job.SUCCEEDED and Individual.objects.count() == 3
        assert flaky.heard == []  # the first delivery failed...
        delivery = Job.objects.get(kind=events.DELIVERY_JOB_KIND)  # ...and was handed to a job
        assert delivery.params["listener"] == "test-flaky-listener"
        assert all(b.announced for b in ImportBatch.objects.filter(job=job))
        run_job(str(delivery.pk))
        assert len(flaky.heard) == 1
        assert sorted(flaky.heard[0]) == sorted(str(pk) for pk in Individual.objects.values_list("id", flat=True))
    finally:
        manager.unregister(name="test-flaky-listener")


def test_someone_registering_the_same_person_during_the_commit_costs_only_that_row(
        run_import, importer, admin_user, hierarchy, monkeypatch, report, registry_files, family):
    from modules.individual.bulk_import import commit as bulk_import

    write_batch = bulk_import._write_batch
    clerk = []

    def a_clerk_is_faster(*args: Any) -> Any:
        if not clerk:  # between the checks and the first write
            clerk.append(services.create_individual(
                admin_user, first_name="Quick", last_name="Clerk", dob=datetime.date(1970, 1, 1),
                location_id=hierarchy["H112"].pk, json_ext={"national_id": "BI-0004"}))
        return write_batch(*args)

    monkeypatch.setattr(bulk_import, "_write_batch", a_clerk_is_faster)
    job = run_import(importer, registry_files.csv_text(family), mode="VALID_ROWS")

    assert (job.state, job.result["created_individuals"]) == (Job.PARTIAL, 5)
    assert report(importer, job) == [
        ["7", "national_id", "DUPLICATE_KEY", "Another individual in the registry already has national_id 'BI-0004'."]]
    assert Individual.objects.filter(json_ext__national_id="BI-0004").get() == clerk[0]


# --- a worker killed in the middle of a commit -----------------------------------------------


def _worker(env: dict[str, str]) -> Any:
    import subprocess
    import sys
    import uuid

    from core.loader import REPO_ROOT

    return subprocess.Popen(
        [sys.executable, "manage.py", "rqworker", "default", "--name", f"import-test-{uuid.uuid4().hex[:8]}"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def _scheduler(env: dict[str, str]) -> Any:
    import subprocess
    import sys

    from core.loader import REPO_ROOT

    return subprocess.Popen([sys.executable, "manage.py", "scheduler"], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_for(condition: Any, seconds: float, what: str) -> Any:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"waited {seconds} s for {what}")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, databases=["default", "progress"])
def test_a_worker_killed_while_importing_is_retried_by_itself_and_the_import_ends_exact(redis_queue, importer, hierarchy,
                                                                              tmp_path, settings,
                                                                              slow_import_batches, registry_files):
    import json
    import os
    import signal

    from django.db import transaction
    from rq.registry import StartedJobRegistry

    from core.loader import modules_config_path
    from core.uploads import store_upload
    from modules.individual.bulk_import import start_import

    people = 1000  # 250 households, written in 10 batches of 100 rows
    rows = [registry_files.row(f"P{n}", f"Family{n // 4}", household=f"HH-{n // 4:04d}", role="HEAD" if n % 4 == 0 else "SON",
                recipient="PRIMARY" if n % 4 == 0 else "", location=("H111", "H112", "H211")[n // 4 % 3],
                national_id=f"BI-{n:06d}") for n in range(people)]
    config = json.loads(modules_config_path().read_text())
    config.setdefault("individual", {})["import_chunk_size"] = 100
    (tmp_path / "modules_config.json").write_text(json.dumps(config))
    env = {**os.environ, "DATABASE_URL": registry_files.database_url(), "REDIS_URL": settings.REDIS_URL,
           "COREMIS_DEBUG": "1", "COREMIS_LOG_LEVEL": "WARNING", "COREMIS_MEDIA_ROOT": str(tmp_path),
           "COREMIS_MODULES_CONFIG": str(tmp_path / "modules_config.json"),
           "COREMIS_JOB_LEASE_SECONDS": "3", "COREMIS_JOB_RETRY_SECONDS": "1",
           "COREMIS_SCHEDULER_SWEEP_SECONDS": "0.5"}
    (tmp_path / "people.csv").write_text(registry_files.csv_text(rows))
    with open(tmp_path / "people.csv", "rb") as stream, transaction.atomic():
        upload = store_upload(stream, "people.csv", "individual.import", importer)
        job = start_import(importer, upload.pk)

    with connection.cursor() as cursor:  # each batch stays open a moment: the kill lands inside one
        cursor.execute(slow_import_batches(0.5))
    first = _worker(env)
    try:
        _wait_for(lambda: ImportBatch.objects.filter(job=job).count() >= 2, 90, "two batches committed")
        for pid in registry_files.children_of(first.pid):  # the work horse running the job, then its parent
            os.kill(pid, signal.SIGKILL)
        first.kill()
        first.wait()
        # RQ would later report the killed run as abandoned, in whichever test runs a worker next.
        started = StartedJobRegistry(queue=redis_queue)
        for rq_id in started.get_job_ids():
            if (rq_job := redis_queue.fetch_job(rq_id)) is not None:
                rq_job.delete()
        redis_queue.connection.delete(started.key)
        written = sum(ImportBatch.objects.filter(job=job).values_list("individuals", flat=True))
        # the batches open at the kill rolled back: the registry holds exactly the marked ones
        assert 200 <= written < people
        assert Individual.objects.count() == written
        assert refresh(job).state == Job.RUNNING and job.stage == "importing"
    finally:
        if first.poll() is None:
            first.kill()
        with connection.cursor() as cursor:  # the restarted worker writes at full speed
            cursor.execute(slow_import_batches(0))

    # Nobody runs a command: the scheduler sees the lease lapse and queues the job again.
    second = _worker(env)
    scheduler = _scheduler(env)
    try:
        _wait_for(lambda: refresh(job).is_final, 120, "the import to finish after the restart")
    finally:
        for process in (second, scheduler):
            process.terminate()
            process.wait(timeout=30)

    assert (job.state, job.stage, job.attempts, job.failures) == (Job.SUCCEEDED, "done", 2, 1)
    assert job.result["created_individuals"] == Individual.objects.count() == people
    assert Individual.objects.values("json_ext__national_id").distinct().count() == people
    assert Group.objects.count() == 250 and GroupIndividual.objects.count() == people
    assert Group.objects.filter(head__isnull=True).count() == 0
    history = HistoryEntry.objects.filter(table_name="individual_individual", operation="I")
    assert history.count() == history.values("row_id").distinct().count() == people
    assert set(history.values_list("user_id", flat=True)) == {importer.pk}
    assert ImportBatch.objects.filter(job=job, announced=True).count() == 10
    assert staging_tables() == []
