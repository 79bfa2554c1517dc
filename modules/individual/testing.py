"""The individual module's test plug-in (registered by the core's, see ``core/testing``): the
bulk import's fixtures and the seam its crash tests use.

Files go through the real upload route and the real GraphQL mutation; jobs run in a real RQ
worker (in process here; in a subprocess for the crash test). Tests build files with the
``registry_files`` helpers (``csv_text``, ``row``, ``xlsx_bytes``, the ``IMPORTER`` /
``APPROVER`` rights) and never import a test file.

``slow_import_batches`` is the seam the crash tests use to kill a worker in the middle of an
import's commit: a trigger on the batch markers, so each batch stays open a moment after its
rows are written, inside its transaction. The production code has no pause of its own.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from types import SimpleNamespace
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
APPROVER = ["individual.import.approve", "core.task.resolve", "individual.registry.search", "core.job.view",
            "location.scope.national"]

IMPORT = """mutation($input: ImportIndividualsMutationInput!) { importIndividuals(input: $input) {
    errors { field code message } job { uuid state stage } } }"""


@pytest.fixture
def import_media_in_tmp(settings: Any, tmp_path: Any) -> None:
    """Uploads and exports of the test under its own temporary folder."""
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


@pytest.fixture
def import_approval(admin_user: Any, approver: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """Route the approval action ``individual.import`` to the task group ``IMPORT-CHECKERS``,
    whose checker is ``approver``; call it with more checkers to add them."""
    from core.approvals.services import create_task_group
    from core.loader import module_config
    from modules.individual.bulk_import import IMPORT_APPROVAL

    group = create_task_group(admin_user, code="IMPORT-CHECKERS", completion_policy="ANY", checker_ids=[approver.pk])
    monkeypatch.setitem(module_config("individual")["approvals"], IMPORT_APPROVAL, group.code)

    def add_checkers(*users: Any) -> Any:
        from core.models import TaskGroupChecker

        for user in users:
            TaskGroupChecker.objects.get_or_create(task_group=group, user=user)
        return group

    return add_checkers


def _csv_text(rows: Iterable[Iterable[Any]], header: Iterable[str] = HEADER) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _row(first: str = "Jean", last: str = "Ndayishimiye", dob: str = "1980-05-17", sex: str = "M",
        location: str = "H111", household: str = "", role: str = "", recipient: str = "",
        national_id: str = "", phone: str = "", disability: str = "", score: str = "",
        education: str = "") -> tuple[str, ...]:
    return (first, last, dob, sex, location, household, role, recipient, national_id, phone,
            disability, score, education)


def _xlsx_bytes(rows: Iterable[Iterable[Any]], header: Iterable[str] = HEADER) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(list(header))
    for cells in rows:
        sheet.append(list(cells))
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _upload(client: Any, user: Any, content: str | bytes, name: str = "people.csv") -> str:
    data = io.BytesIO(content.encode() if isinstance(content, str) else content)
    data.name = name
    response = client.post("/api/upload?purpose=individual.import", {"file": data},
                           HTTP_AUTHORIZATION=f"Bearer {issue(user).token}")
    assert response.status_code == 201, response.content
    return str(response.json()["uploadId"])


@pytest.fixture
def start(client: Any, gql: Any, django_capture_on_commit_callbacks: Any,
          import_media_in_tmp: None) -> Callable[..., dict[str, Any]]:
    """``start(user, content, mode=..., allow_duplicate_file=...)``: upload a file and call
    ``importIndividuals``; returns the mutation's payload."""

    def begin(user: Any, content: str | bytes, name: str = "people.csv", mode: str = "ALL_OR_NOTHING",
              allow_duplicate_file: bool = False) -> dict[str, Any]:
        upload_id = _upload(client, user, content, name)
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


def _database_url() -> str:
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


def _children_of(pid: int) -> list[int]:
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


SLOW_BATCHES = "coremis_test_slow_import_batch"


def slow_batches_sql(seconds: float) -> str:
    """SQL making every import batch wait ``seconds`` before it commits (0: not any more)."""
    if not seconds:
        return (f"DROP TRIGGER IF EXISTS {SLOW_BATCHES} ON individual_importbatch; "
                f"DROP FUNCTION IF EXISTS {SLOW_BATCHES}()")
    return (f"CREATE OR REPLACE FUNCTION {SLOW_BATCHES}() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN PERFORM pg_sleep({float(seconds)}); RETURN NULL; END $$; "
            f"DROP TRIGGER IF EXISTS {SLOW_BATCHES} ON individual_importbatch; "
            f"CREATE TRIGGER {SLOW_BATCHES} AFTER INSERT ON individual_importbatch "
            f"FOR EACH ROW EXECUTE FUNCTION {SLOW_BATCHES}()")


@pytest.fixture(scope="session")
def slow_import_batches() -> Callable[[float], str]:
    """``slow_import_batches(0.5)``: the SQL (run it on the database the workers use) that
    keeps each batch of an import open half a second after its rows, before its commit;
    ``slow_import_batches(0)`` undoes it."""
    return slow_batches_sql


@pytest.fixture(scope="session")
def registry_files() -> SimpleNamespace:
    """Builders of registry files and the import's rights: ``csv_text(rows)``, ``row(...)``,
    ``xlsx_bytes(rows)``, ``HEADER``, ``IMPORTER``, ``APPROVER``, and for tests running a
    worker process ``database_url()`` and ``children_of(pid)``."""
    return SimpleNamespace(csv_text=_csv_text, row=_row, xlsx_bytes=_xlsx_bytes, HEADER=HEADER,
                           IMPORTER=list(IMPORTER), APPROVER=list(APPROVER),
                           database_url=_database_url, children_of=_children_of)
