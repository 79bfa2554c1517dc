"""Sensitive tickets (the ``vbg`` category, the ``SENSITIVE`` flag) through every path: list
and its count, ``node``, comments, history, the summary counts, exports; restricted readers
see only the configured fields; every read is in the access log; location scope as everywhere."""

from __future__ import annotations

import csv
from typing import Any

import pytest
from graphql_relay import to_global_id

from modules.grievance.models import AccessLog
from modules.grievance.services.comments import check_create_comment, do_create_comment

pytestmark = pytest.mark.django_db
GBV, SUPERVISOR, OFFICER = "GBV case worker", "Grievance supervisor", "Grievance officer"
LIST = "{ tickets(first: 20) { totalCount edges { node { code title description status reporterFirstName accessLevel } } } }"


@pytest.fixture
def cases(make_ticket: Any, places: Any, admin_user: Any) -> dict[str, Any]:
    plain = make_ticket(places, title="Paiement en retard", category="paiement", location="H111")
    gbv = make_ticket(places, title="Violence au foyer", description="détails confidentiels", category="vbg",
                      location="H111", name_of_complainant="Anonyme")
    flagged = make_ticket(places, title="Menaces", category="autre", flags="SENSITIVE", location="H111")
    for ticket in (gbv, flagged):
        do_create_comment(check_create_comment(admin_user, ticket.pk, "Orientée vers le centre"))
    return {"plain": plain, "gbv": gbv, "flagged": flagged}


def codes(result: dict[str, Any]) -> set[str]:
    return {e["node"]["code"] for e in result["tickets"]["edges"]}


def test_others_see_neither_the_tickets_nor_their_count(gql: Any, staff: Any, cases: Any) -> None:
    officer = staff(OFFICER, at="H111")
    listed = gql(officer).ok(LIST)
    assert codes(listed) == {cases["plain"].code} and listed["tickets"]["totalCount"] == 1
    summary = gql(officer).ok("{ grievanceSummary { total byCategory { key count } } }")["grievanceSummary"]
    assert summary["total"] == 1 and {c["key"] for c in summary["byCategory"]} == {"paiement"}


def test_node_comments_and_history_answer_as_if_they_did_not_exist(gql: Any, staff: Any, cases: Any) -> None:
    client = gql(staff(OFFICER, at="H111"))
    gid = to_global_id("TicketGQLType", str(cases["gbv"].pk))
    assert client.ok(f'{{ node(id: "{gid}") {{ id }} }}')["node"] is None
    comments = client.ok(f'{{ comments(ticket_Id: "{cases["gbv"].pk}") {{ totalCount }} }}')
    assert comments["comments"]["totalCount"] == 0
    history = client.ok(f'{{ tickets(id: "{cases["flagged"].pk}", showHistory: true) {{ totalCount }} }}')
    assert history["tickets"]["totalCount"] == 0
    tasks = client.ok(f'{{ ticketTasks(ticket_Id: "{cases["gbv"].pk}") {{ totalCount }} }}')
    assert tasks["ticketTasks"]["totalCount"] == 0


def test_a_read_role_sees_everything_and_is_logged(gql: Any, staff: Any, cases: Any) -> None:
    worker = staff(GBV, at="H111")
    listed = gql(worker).ok(LIST)
    assert codes(listed) == {t.code for t in cases.values()}
    gbv = next(e["node"] for e in listed["tickets"]["edges"] if e["node"]["code"] == cases["gbv"].code)
    assert gbv["accessLevel"] == "FULL" and gbv["title"] == "Violence au foyer"
    # the category anonymises its description in lists; the ticket's own page shows it
    assert gbv["description"] == "[Anonymised]"
    one = gql(worker).ok(f'{{ tickets(id: "{cases["gbv"].pk}") {{ edges {{ node {{ description }} }} }} }}')
    assert one["tickets"]["edges"][0]["node"]["description"] == "détails confidentiels"
    gql(worker).ok(f'{{ comments(ticket_Id: "{cases["gbv"].pk}") {{ totalCount }} }}')
    logged = set(AccessLog.objects.filter(user=worker).values_list("ticket_id", "path"))
    assert {(cases["gbv"].pk, "list"), (cases["flagged"].pk, "list"), (cases["gbv"].pk, "detail"),
            (cases["gbv"].pk, "comments")} <= logged
    assert not AccessLog.objects.filter(ticket=cases["plain"]).exists()  # not sensitive, not logged


def test_a_restricted_reader_sees_only_the_configured_fields(gql: Any, staff: Any, cases: Any) -> None:
    supervisor = staff(SUPERVISOR, at="P1")
    listed = gql(supervisor).ok(LIST)
    gbv = next(e["node"] for e in listed["tickets"]["edges"] if e["node"]["code"] == cases["gbv"].code)
    assert gbv["accessLevel"] == "RESTRICTED" and gbv["status"] == "RECEIVED"
    assert gbv["title"] == "[Restricted]" and gbv["description"] == "[Restricted]"
    assert gbv["reporterFirstName"] == "[Restricted]"
    assert gql(supervisor).ok(f'{{ comments(ticket_Id: "{cases["gbv"].pk}") {{ totalCount }} }}'
                              )["comments"]["totalCount"] == 0
    assert AccessLog.objects.filter(user=supervisor, level="RESTRICTED").count() == 2


def test_a_restricted_reader_cannot_change_it(gql: Any, staff: Any, cases: Any, grievance_mutate: Any) -> None:
    supervisor = staff(SUPERVISOR, at="P1")
    result = grievance_mutate(gql(supervisor), "updateTicket", "ticket { id }",
                              f'id: "{cases["gbv"].pk}" title: "x"')
    assert [e["code"] for e in result["errors"]] == ["PERMISSION_DENIED"]


def test_location_scope_applies(gql: Any, staff: Any, cases: Any, make_ticket: Any, places: Any) -> None:
    elsewhere = make_ticket(places, title="Ailleurs", category="paiement", location="H211")
    officer = staff(OFFICER, at="C11")
    assert elsewhere.code not in codes(gql(officer).ok(LIST))
    assert gql(officer).ok(f'{{ tickets(id: "{elsewhere.pk}") {{ totalCount }} }}')["tickets"]["totalCount"] == 0


def test_exports_hold_only_what_the_exporter_may_read(staff: Any, cases: Any, settings: Any, tmp_path: Any) -> None:
    from core.jobs import run_job
    from core.models import Job
    from modules.grievance.export import export_path
    from modules.grievance.services.exports import check_export_tickets, do_export_tickets

    settings.MEDIA_ROOT = str(tmp_path)
    officer, supervisor = staff(OFFICER, at="H111"), staff(SUPERVISOR, at="P1")
    rows = {}
    for user in (officer, supervisor):
        job = do_export_tickets(check_export_tickets(user))
        run_job(str(job.pk))
        job = Job.objects.get(pk=job.pk)
        assert job.state == "SUCCEEDED", job.message
        with open(export_path(job.result["file"]), encoding="utf-8") as handle:
            rows[user] = {r["code"]: r for r in csv.DictReader(handle)}
    assert set(rows[officer]) == {cases["plain"].code}
    assert rows[supervisor][cases["gbv"].code]["title"] == "[Restricted]"
    assert rows[supervisor][cases["plain"].code]["title"] == "Paiement en retard"
    assert AccessLog.objects.filter(user=supervisor, path="export").count() == 2


def test_a_restricted_reader_cannot_search_by_what_they_are_not_shown(gql: Any, staff: Any, cases: Any) -> None:
    client = gql(staff(SUPERVISOR, at="P1"))
    by_title = client.ok('{ tickets(title_Icontains: "Violence") { totalCount } }')["tickets"]["totalCount"]
    by_status = client.ok("{ tickets(status_Icontains: RECEIVED) { edges { node { code } } } }")
    assert by_title == 0
    assert cases["gbv"].code in codes(by_status)


def test_an_officer_may_record_a_case_they_may_not_read_afterwards(gql: Any, staff: Any, places: Any,
                                                                    grievance_mutate: Any) -> None:
    client = gql(staff(OFFICER, at="H111"))
    made = grievance_mutate(client, "createTicket", "ticket { code title }",
                            'title: "Violence" category: "vbg" channel: "in_person" nameOfComplainant: "Anonyme"')
    assert made["errors"] == [] and made["ticket"]["code"].startswith("GRV-")
    assert made["ticket"]["title"] == "[Restricted]"  # the intake officer gets the code to give back, no more
    assert client.ok("{ tickets { totalCount } }")["tickets"]["totalCount"] == 0


def test_an_export_is_downloaded_by_its_maker_only(client: Any, staff: Any, cases: Any, settings: Any,
                                                   tmp_path: Any) -> None:
    from core.auth.tokens import issue
    from core.jobs import run_job
    from modules.grievance.services.exports import check_export_tickets, do_export_tickets

    settings.MEDIA_ROOT = str(tmp_path)
    maker, other = staff(GBV, at="H111"), staff(GBV, at="H111")
    job = do_export_tickets(check_export_tickets(maker))
    url = f"/api/grievance/export/{job.pk}/download"
    early = client.get(url, HTTP_AUTHORIZATION=f"Bearer {issue(maker).token}")
    assert early.status_code == 404 and early.json()["error"]["code"] == "EXPORT_NOT_READY"
    run_job(str(job.pk))
    mine = client.get(url, HTTP_AUTHORIZATION=f"Bearer {issue(maker).token}")
    assert mine.status_code == 200 and cases["gbv"].code in b"".join(mine.streaming_content).decode()
    assert client.get(url, HTTP_AUTHORIZATION=f"Bearer {issue(other).token}").status_code == 404


def test_the_access_log_is_readable_by_who_may_read_it(gql: Any, staff: Any, cases: Any, make_user: Any) -> None:
    worker = staff(GBV, at="H111")
    gql(worker).ok(LIST)
    auditor = staff(GBV, codes=["grievance.ticket.search", "grievance.access_log.view"])
    log = gql(auditor).ok("{ ticketAccessLog(first: 10) { totalCount edges { node { path level user { username } "
                          "ticket { code } } } } }")["ticketAccessLog"]
    assert log["totalCount"] == 2
    assert {e["node"]["user"]["username"] for e in log["edges"]} == {worker.username}
    refused = gql(make_user(["grievance.ticket.search"])).execute("{ ticketAccessLog { totalCount } }")
    assert refused["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"
