"""Fixtures for the bulk import's tests (a pytest plug-in: ``pytest_plugins`` names it).

Files go through the real upload route and the real GraphQL mutation; jobs run in a real RQ
worker (in process here; in a subprocess for the crash test).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from typing import Any

import openpyxl
import pytest

from core.auth.tokens import issue
from core.models import Job
from modules.location.models import Location
from modules.location.services import create_location, set_user_locations

HEADER = ("first_name", "last_name", "dob", "sex", "location_code", "household_code", "role",
          "recipient_type", "national_id", "phone", "disability", "vulnerability_score", "education_level")
IMPORTER = ["individual.import.start", "individual.registry.search", "core.job.view"]
APPROVER = ["individual.import.approve", "individual.registry.search", "core.job.view", "location.scope.national"]

IMPORT = """mutation($input: ImportIndividualsMutationInput!) { importIndividuals(input: $input) {
    errors { field code message } job { uuid state stage } } }"""


@pytest.fixture(autouse=True)
def _media_in_tmp(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def hierarchy(admin_user: Any) -> dict[str, Location]:
    """Two provinces; collines H111 and H112 (province P1) and H211 (province P2)."""
    made: dict[str, Location] = {}
    for code, type_, parent in (("P1", "Province", None), ("P2", "Province", None),
                                ("C11", "Commune", "P1"), ("C21", "Commune", "P2"),
                                ("H111", "Colline", "C11"), ("H112", "Colline", "C11"),
                                ("H211", "Colline", "C21")):
        made[code] = create_location(admin_user, code=code, name=f"Place {code}", type=type_,
                                     parent_id=made[parent].pk if parent else None)
    return made


@pytest.fixture
def importer(make_user: Any, hierarchy: dict[str, Location]) -> Any:
    """May import anywhere."""
    return make_user([*IMPORTER, "location.scope.national"], username="importer")


@pytest.fixture
def p1_importer(make_user: Any, admin_user: Any, hierarchy: dict[str, Location]) -> Any:
    """May import in province P1 only."""
    user = make_user(IMPORTER, username="p1-importer")
    set_user_locations(admin_user, user, [hierarchy["P1"].pk])
    return user


@pytest.fixture
def approver(make_user: Any, hierarchy: dict[str, Location]) -> Any:
    return make_user(APPROVER, username="approver")


def csv_text(rows: Iterable[Iterable[Any]], header: Iterable[str] = HEADER) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def row(first: str = "Jean", last: str = "Ndayishimiye", dob: str = "1980-05-17", sex: str = "M",
        location: str = "H111", household: str = "", role: str = "", recipient: str = "",
        national_id: str = "", phone: str = "", disability: str = "", score: str = "",
        education: str = "") -> tuple[str, ...]:
    return (first, last, dob, sex, location, household, role, recipient, national_id, phone,
            disability, score, education)


def xlsx_bytes(rows: Iterable[Iterable[Any]], header: Iterable[str] = HEADER) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(list(header))
    for cells in rows:
        sheet.append(list(cells))
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def upload(client: Any, user: Any, content: str | bytes, name: str = "people.csv") -> str:
    data = io.BytesIO(content.encode() if isinstance(content, str) else content)
    data.name = name
    response = client.post("/api/upload?purpose=individual.import", {"file": data},
                           HTTP_AUTHORIZATION=f"Bearer {issue(user).token}")
    assert response.status_code == 201, response.content
    return str(response.json()["uploadId"])


@pytest.fixture
def start(client: Any, gql: Any, django_capture_on_commit_callbacks: Any) -> Callable[..., dict[str, Any]]:
    """``start(user, content, mode=..., allow_duplicate_file=...)``: upload a file and call
    ``importIndividuals``; returns the mutation's payload."""

    def begin(user: Any, content: str | bytes, name: str = "people.csv", mode: str = "ALL_OR_NOTHING",
              allow_duplicate_file: bool = False) -> dict[str, Any]:
        upload_id = upload(client, user, content, name)
        variables = {"input": {"uploadId": upload_id, "mode": mode, "allowDuplicateFile": allow_duplicate_file}}
        with django_capture_on_commit_callbacks(execute=True):
            payload = gql(user).ok(IMPORT, variables)["importIndividuals"]
        return dict(payload)

    return begin


@pytest.fixture
def run_import(start: Any, run_jobs: Any, django_capture_on_commit_callbacks: Any) -> Callable[..., Job]:
    """``run_import(user, content, ...)``: start an import, run the worker, return the job."""

    def go(user: Any, content: str | bytes, **options: Any) -> Job:
        payload = start(user, content, **options)
        assert payload["errors"] == [], payload["errors"]
        with django_capture_on_commit_callbacks(execute=True):
            run_jobs()
        return Job.objects.get(pk=payload["job"]["uuid"])

    return go


@pytest.fixture
def report(client: Any) -> Callable[[Any, Any], list[list[str]]]:
    """The report CSV of an import as ``user`` downloads it (header row dropped; the cell's
    value, the core report's fifth column, left out)."""

    def read(user: Any, job: Any) -> list[list[str]]:
        response = client.get(f"/api/individual/import/{job.pk}/report.csv",
                              HTTP_AUTHORIZATION=f"Bearer {issue(user).token}")
        assert response.status_code == 200, response.content
        text = b"".join(response.streaming_content).decode("utf-8-sig")
        lines = list(csv.reader(io.StringIO(text)))
        assert lines[0] == ["row", "field", "code", "message", "value"]  # the core's import report
        return [line[:4] for line in lines[1:]]

    return read


# --- real worker processes -------------------------------------------------------------------


def database_url() -> str:
    """The test database as a URL for a child process (socket directory or host)."""
    from urllib.parse import quote

    from django.db import connection

    cfg = connection.settings_dict
    user = quote(cfg["USER"] or "postgres")
    password = f":{quote(cfg['PASSWORD'])}" if cfg["PASSWORD"] else ""
    host = cfg["HOST"] or ""
    if host.startswith("/"):
        return f"postgresql://{user}{password}@/{cfg['NAME']}?host={quote(host)}"
    port = f":{cfg['PORT']}" if cfg["PORT"] else ""
    return f"postgresql://{user}{password}@{host}{port}/{cfg['NAME']}"


def children_of(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (an RQ worker forks a work horse per job)."""
    import os

    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found
