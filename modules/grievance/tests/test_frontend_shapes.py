"""The openIMIS grievance frontend's requests, sent as it sends them (the literal documents its
actions build), answered in the shapes its pages read."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modules.grievance.models import Comment, Ticket

pytestmark = pytest.mark.django_db

TICKET_FIELDS = ("id title code description status priority dueDate reporter reporterId reporterType "
                 "reporterTypeName category flags channel resolution title dateOfIncident dateCreated "
                 "attendingStaff {id, username} version isHistory, jsonExt reporterFirstName reporterLastName "
                 "reporterDob")
LIST_FIELDS = ("id title code description status priority dueDate reporter reporterId reporterType reporterTypeName "
               "category flags channel resolution title dateOfIncident dateCreated version isHistory "
               "reporterFirstName reporterLastName reporterDob")
COMMENT_FIELDS = ("id commenter commenterId commenterType commenterTypeName comment isResolution dateCreated "
                  "commenterFirstName commenterLastName commenterDob")
CONFIG = ("{ grievanceConfig { grievanceTypes grievanceFlags grievanceChannels "
          "grievanceDefaultResolutionsByCategory{category, resolutionTime} } }")


def page(name: str, filters: list[str], fields: str) -> str:
    """What fe-core's formatPageQueryWithCount builds."""
    return (f"{{ {name}({', '.join(filters)}) {{ totalCount pageInfo {{ hasNextPage hasPreviousPage startCursor "
            f"endCursor }} edges {{ node {{ {fields} }} }} }} }}")


@pytest.fixture
def person(admin_user: Any, places: dict[str, Any]) -> Any:
    import datetime

    from modules.individual.services import create_individual

    return create_individual(admin_user, first_name="Jeanne", last_name="Ndayishimiye", dob=datetime.date(1980, 5, 1),
                             location_id=places["H111"].pk, json_ext={"phone": "+257 79 000 001"})


def test_the_config_query_every_page_sends(gql: Any, admin_user: Any) -> None:
    data = gql(admin_user).ok(CONFIG)["grievanceConfig"]
    assert "paiement|non_recu" in data["grievanceTypes"] and "vbg" in data["grievanceTypes"]
    assert "SENSITIVE" in data["grievanceFlags"] and "toll_free" in data["grievanceChannels"]
    assert {"category": "paiement|non_recu", "resolutionTime": "2,0"} in data["grievanceDefaultResolutionsByCategory"]


def test_create_then_list_and_open_a_ticket_as_the_frontend_does(gql: Any, admin_user: Any, person: Any,
                                                                  grievance_mutate: Any) -> None:
    client = gql(admin_user)
    created = grievance_mutate(client, "createTicket", "ticket { code }", f'''
        clientMutationId: "m-1"
        clientMutationLabel: "Create grievance"
        category: "paiement|non_recu"
        title: "Paiement de mai non reçu"
        description: "Rien reçu au point de retrait"
        reporterId: "{person.pk}"
        reporterType: "individual"
        resolution: "2,0"
        status: "RECEIVED"
        priority: "Normal"
        dateOfIncident: "2026-01-05"
        channel: "toll_free"
        flags: "URGENT"''')
    assert created["errors"] == [] and created["internalId"]
    code = created["ticket"]["code"]
    ticket = Ticket.objects.get(code=code)
    assert ticket.priority == "High"  # the category's, above the Normal asked for
    assert ticket.location_id == person.location_id  # the reporter's colline

    listed = client.ok(page("tickets", ['code_Icontains: "GRV"', 'title_Icontains: "mai"', "status_Icontains: RECEIVED",
                                        'category_Icontains: "paiement"', f'reporterId: "{person.pk}"',
                                        'priority_Icontains: "High"', "first: 10", 'orderBy: ["-code"]'], LIST_FIELDS))
    assert listed["tickets"]["totalCount"] == 1
    node = listed["tickets"]["edges"][0]["node"]
    assert node["status"] == "RECEIVED" and node["flags"] == "URGENT" and node["reporterTypeName"] == "individual"
    assert node["reporterFirstName"] == "Jeanne" and node["isHistory"] is False and node["resolution"] == "2,0"
    reporter = json.loads(json.loads(node["reporter"]))  # as the frontend reads it: JSON text in JSON text
    assert reporter["firstName"] == "Jeanne" and reporter["id"] == str(person.pk)

    one = client.ok(page("tickets", [f'id: "{ticket.pk}"'], TICKET_FIELDS))["tickets"]["edges"][0]["node"]
    assert one["code"] == code and json.loads(one["jsonExt"])["comment_ids"] == []


def test_comments_and_resolution_by_comment(gql: Any, admin_user: Any, make_ticket: Any, places: Any,
                                            grievance_mutate: Any) -> None:
    client = gql(admin_user)
    ticket = make_ticket(places, category="paiement|montant_incorrect", location="H111")
    made = grievance_mutate(client, "createComment", "comment { id }", f'''
        ticketId: "{ticket.pk}" commenterId: "{admin_user.pk}" commenterType: "user" comment: "Appelé le 5 mai"''')
    assert made["errors"] == []
    comments = client.ok(page("comments", [f'ticket_Id: "{ticket.pk}"', 'orderBy: ["-dateCreated"]'],
                              COMMENT_FIELDS))["comments"]
    assert comments["totalCount"] == 1
    node = comments["edges"][0]["node"]
    assert node["commenterTypeName"] == "user" and json.loads(json.loads(node["commenter"]))["username"]
    comment = Comment.objects.get(ticket=ticket)
    resolved = grievance_mutate(client, "resolveGrievanceByComment", "ticket { status }", f'id: "{comment.pk}"')
    assert resolved["errors"] == [] and resolved["ticket"]["status"] == "RESOLVED"
    again = grievance_mutate(client, "resolveGrievanceByComment", "ticket { status }", f'id: "{comment.pk}"')
    assert [e["code"] for e in again["errors"]] == ["ALREADY_RESOLVED"]
    one = client.ok(page("tickets", [f'id: "{ticket.pk}"'], TICKET_FIELDS))["tickets"]["edges"][0]["node"]
    assert json.loads(one["jsonExt"])["comment_ids"] == [str(comment.pk)]
    reopened = grievance_mutate(client, "reopenTicket", "ticket { status }", f'id: "{ticket.pk}"')
    assert reopened["ticket"]["status"] == "OPEN"


def test_update_sends_the_status_unquoted_and_the_reporter_back(gql: Any, admin_user: Any, make_ticket: Any,
                                                                 places: Any, person: Any, grievance_mutate: Any) -> None:
    ticket = make_ticket(places, location="H111", reporter_type="individual", reporter_id=person.pk)
    updated = grievance_mutate(gql(admin_user), "updateTicket", "ticket { status title }", f'''
        id: "{ticket.pk}" category: "paiement|non_recu" title: "Nouveau titre" status: IN_PROGRESS
        priority: "High" channel: "sms" flags: "URGENT" reporterId: "{person.pk}" reporterType: "individual"''')
    assert updated["errors"] == [] and updated["ticket"] == {"status": "IN_PROGRESS", "title": "Nouveau titre"}
    other = grievance_mutate(gql(admin_user), "updateTicket", "ticket { status }", f'''
        id: "{ticket.pk}" reporterId: "{admin_user.pk}" reporterType: "user"''')
    assert [e["code"] for e in other["errors"]] == ["REPORTER_FIXED"]


def test_show_history_lists_every_version(gql: Any, admin_user: Any, make_ticket: Any, places: Any,
                                          grievance_mutate: Any) -> None:
    client = gql(admin_user)
    ticket = make_ticket(places, location="H111")
    grievance_mutate(client, "updateTicket", "ticket { version }", f'id: "{ticket.pk}" title: "Deuxième titre"')
    versions = client.ok(page("tickets", [f'id: "{ticket.pk}"', "showHistory: true", "first: 10"],
                              "title version isHistory"))["tickets"]
    assert versions["totalCount"] == 2
    assert [(n["node"]["version"], n["node"]["isHistory"]) for n in versions["edges"]] == [(2, False), (1, True)]
    first = client.ok(page("tickets", [f'id: "{ticket.pk}"', "ticketVersion: 1"], "title version isHistory"))
    assert first["tickets"]["edges"][0]["node"]["title"] == "Paiement non reçu"
