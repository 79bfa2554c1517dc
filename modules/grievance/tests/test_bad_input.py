"""Refusals are typed, name the field, and change nothing."""

from __future__ import annotations

from typing import Any

import pytest

from modules.grievance.models import Ticket

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("payload", "code", "field"), [
    ('title: "t" category: "nope"', "UNKNOWN_CATEGORY", "category"),
    ('title: "t"', "REQUIRED", "category"),
    ('category: "autre"', "REQUIRED", "title"),
    ('title: "t" category: "autre" flags: "NOPE"', "UNKNOWN_FLAG", "flags"),
    ('title: "t" category: "autre" channel: "pigeon"', "UNKNOWN_CHANNEL", "channel"),
    ('title: "t" category: "autre" priority: "Extreme"', "INVALID_PRIORITY", "priority"),
    ('title: "t" category: "autre" status: "CLOSED"', "INVALID_STATUS", "status"),
    ('title: "t" category: "autre" resolution: "30,0"', "RESOLUTION_FIXED_BY_CATEGORY", "resolution"),
    ('title: "t" category: "autre" dueDate: "2030-01-01"', "DUE_DATE_FROM_CATEGORY", "dueDate"),
    ('title: "t" category: "autre" code: "GRV-1"', "CODE_GENERATED", "code"),
    ('title: "t" category: "autre" dateOfIncident: "2999-01-01"', "INVALID_DATE", "dateOfIncident"),
    ('title: "t" category: "autre" reporterType: "alien" reporterId: "x"', "INVALID_REPORTER_TYPE", "reporterType"),
    ('title: "t" category: "autre" reporterType: "individual" reporterId: "7c9e6679-7425-40de-944b-e07fc1f90ae7"',
     "REPORTER_NOT_FOUND", "reporterId"),
])
def test_create_refusals(gql: Any, admin_user: Any, grievance_mutate: Any, payload: str, code: str, field: str) -> None:
    result = grievance_mutate(gql(admin_user), "createTicket", "ticket { id }", payload)
    assert (code, field) in {(e["code"], e["field"]) for e in result["errors"]}, result["errors"]
    assert result["ticket"] is None and not Ticket.all_objects.exists()


def test_a_scoped_user_must_say_where(gql: Any, staff: Any, grievance_mutate: Any, places: Any) -> None:
    officer = staff("Grievance officer", at="H111")
    officer.location_scopes.create(location=places["H211"])  # two places: no default
    result = grievance_mutate(gql(officer), "createTicket", "ticket { id }", 'title: "t" category: "autre"')
    assert [e["code"] for e in result["errors"]] == ["LOCATION_REQUIRED"]
    outside = grievance_mutate(gql(staff("Grievance officer", at="H111")), "createTicket", "ticket { id }",
                               f'title: "t" category: "autre" locationId: "{places["H121"].pk}"')
    assert [e["code"] for e in outside["errors"]] == ["OUT_OF_SCOPE"]


def test_status_moves_only_forward_and_closing_waits_for_workflows(
        gql: Any, admin_user: Any, make_ticket: Any, places: Any, grievance_mutate: Any) -> None:
    client = gql(admin_user)
    ticket = make_ticket(places, category="paiement|non_recu", location="H111")  # has a workflow
    closing = grievance_mutate(client, "updateTicket", "ticket { id }", f'id: "{ticket.pk}" status: CLOSED')
    assert [e["code"] for e in closing["errors"]] == ["WORKFLOW_OPEN"]
    plain = make_ticket(places, category="autre", location="H111")
    grievance_mutate(client, "updateTicket", "ticket { id }", f'id: "{plain.pk}" status: RESOLVED')
    back = grievance_mutate(client, "updateTicket", "ticket { id }", f'id: "{plain.pk}" status: OPEN')
    assert [e["code"] for e in back["errors"]] == ["STATUS_TRANSITION"]
    stale = grievance_mutate(client, "updateTicket", "ticket { id }", f'id: "{plain.pk}" version: 1 title: "x"')
    assert [e["code"] for e in stale["errors"]] == ["STALE_VERSION"]


def test_every_raised_code_is_declared() -> None:
    """Every ServiceError and FieldError of the module takes a member of GrievanceErrorCode (E)
    or of the core's generic codes (C)."""
    import ast
    from pathlib import Path

    import modules.grievance as package

    offenders = []
    for path in Path(package.__file__).parent.rglob("*.py"):
        if "tests" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("ServiceError", "FieldError"):
                code = node.args[1] if getattr(node.func, "id", "") == "FieldError" and len(node.args) > 1 else (
                    node.args[0] if node.args else None)
                # a member of the enum, or the code of an error already raised (re-labelled per item)
                if not (isinstance(code, ast.Attribute) and (getattr(code.value, "id", "") in ("E", "C") or code.attr == "code")):
                    offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def test_the_attending_staff_must_be_able_to_see_the_ticket(gql: Any, admin_user: Any, staff: Any, places: Any,
                                                            grievance_mutate: Any, make_ticket: Any) -> None:
    elsewhere = staff("Grievance officer", at="H211")
    result = grievance_mutate(gql(admin_user), "createTicket", "ticket { id }",
                              f'title: "t" category: "autre" locationId: "{places["H111"].pk}" '
                              f'attendingStaffId: "{elsewhere.pk}"')
    assert [(e["code"], e["field"]) for e in result["errors"]] == [("OUT_OF_SCOPE", "attendingStaffId")]
    ticket = make_ticket(places, category="autre", location="H111")
    moved = grievance_mutate(gql(admin_user), "updateTicket", "ticket { id }",
                             f'id: "{ticket.pk}" attendingStaffId: "{elsewhere.pk}"')
    assert [e["code"] for e in moved["errors"]] == ["OUT_OF_SCOPE"]
