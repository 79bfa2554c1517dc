"""Lists cost the same number of queries whatever their size; events fire after commit;
demo data and the health check."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db
FIELDS = ("code title status priority flags category reporter reporterFirstName attendingStaff { username } "
          "location { code } jsonExt contact { name } payment { status } isHistory accessLevel "
          "tasks { name status assignee { username } }")


def test_a_page_costs_the_same_queries_whatever_its_size(gql: Any, admin_user: Any, make_ticket: Any,
                                                        places: Any, staff: Any) -> None:
    staff("Grievance officer", at="H111")
    for n in range(12):
        make_ticket(places, title=f"t{n}", category="sim_compte", location="H111", name_of_complainant="Anonyme")
    client = gql(admin_user)
    counts = {}
    for first in (2, 12):
        with CaptureQueriesContext(connection) as captured:
            page = client.ok(f"{{ tickets(first: {first}) {{ totalCount edges {{ node {{ {FIELDS} }} }} }} }}")
        assert len(page["tickets"]["edges"]) == first
        counts[first] = len(captured.captured_queries)
    assert counts[2] == counts[12], counts
    comments = {}
    ticket = make_ticket(places, category="autre", location="H111")
    from modules.grievance.services.comments import check_create_comment, do_create_comment

    for n in range(6):
        do_create_comment(check_create_comment(admin_user, ticket.pk, f"c{n}"))
    for first in (1, 6):
        with CaptureQueriesContext(connection) as captured:
            client.ok(f'{{ comments(ticket_Id: "{ticket.pk}", first: {first}) {{ edges {{ node {{ commenter '
                      "commenterFirstName comment } } } }")
        comments[first] = len(captured.captured_queries)
    assert comments[1] == comments[6], comments


def test_events_fire_once_the_change_commits(make_ticket: Any, places: Any, admin_user: Any,
                                             django_capture_on_commit_callbacks: Any) -> None:
    from core.hooks import hookimpl
    from core.loader import get_registry
    from modules.grievance.services import changes

    seen: list[tuple[str, Any]] = []

    class Listener:
        @hookimpl
        def grievance_ticket_created(self, ticket_ids: list[Any], source: str) -> None:
            seen.append(("created", (len(ticket_ids), source)))

        @hookimpl
        def grievance_ticket_resolved(self, ticket_id: Any, comment_id: Any) -> None:
            seen.append(("resolved", ticket_id))

    manager = get_registry().plugin_manager
    listener = Listener()
    manager.register(listener, name="grievance-listener")
    try:
        with django_capture_on_commit_callbacks(execute=False) as pending:
            ticket = make_ticket(places, category="autre", location="H111")
        assert seen == []  # nothing before the commit
        for callback in pending:
            callback()
        with django_capture_on_commit_callbacks(execute=True):
            changes.do_update_ticket(changes.check_update_ticket(admin_user, ticket.pk, status="RESOLVED"))
    finally:
        manager.unregister(listener)
    assert seen == [("created", (1, "mutation")), ("resolved", ticket.pk)]


def test_demo_tickets_are_seeded_once(places: Any) -> None:
    from core.actors import system_actor
    from modules.grievance.demo import seed_demo_tickets
    from modules.grievance.models import Ticket

    assert seed_demo_tickets(system_actor()) == 8
    assert seed_demo_tickets(system_actor()) == 0
    assert Ticket.objects.filter(user_created_id=system_actor().pk).count() == 8  # history names the system
    assert Ticket.objects.filter(category="vbg").count() == 1
    assert Ticket.objects.filter(due_date__lt=Ticket.objects.order_by("-date_created")[0].date_created).count() == 2


def test_health_names_the_roles_missing(db: Any) -> None:
    from core.models import Role
    from modules.grievance.configuration import config
    from modules.grievance.plugin import check_roles

    ok, detail = check_roles()
    assert not ok and "GBV case worker" in detail
    for name in config().roles:
        Role.objects.create(name=name, permissions=[])
    assert check_roles()[0]


def test_a_beneficiary_reporter_is_read_through_social_protection(gql: Any, admin_user: Any, places: Any,
                                                                  grievance_mutate: Any) -> None:
    import datetime

    from modules.individual import services as registry
    from modules.social_protection.models import BenefitPlan, GroupBeneficiary

    group = registry.create_group(admin_user, code="HH-9", location_id=places["H112"].pk)
    head = registry.create_individual(admin_user, first_name="Pascal", last_name="Hakizimana",
                                      dob=datetime.date(1975, 3, 3), location_id=places["H112"].pk)
    registry.add_member(admin_user, group_id=group.pk, individual_id=head.pk, role="HEAD", recipient_type="PRIMARY")
    plan = BenefitPlan.objects.create(code="CT9", name="Transferts", type="GROUP", date_valid_from=datetime.date(2026, 1, 1),
                                      date_valid_to=datetime.date(2027, 1, 1))
    beneficiary = GroupBeneficiary.objects.create(benefit_plan=plan, group=group, status="ACTIVE")
    client = gql(admin_user)
    made = grievance_mutate(client, "createTicket", "ticket { reporterTypeName reporterFirstName location { code } }",
                            f'title: "t" category: "autre" reporterType: "beneficiary" reporterId: "{beneficiary.pk}"')
    assert made["errors"] == []
    assert made["ticket"] == {"reporterTypeName": "beneficiary", "reporterFirstName": "Pascal",
                              "location": {"code": "H112"}}
    from modules.grievance.models import Ticket

    ticket = Ticket.objects.get()
    assert (ticket.household_id, ticket.beneficiary_id, ticket.reporter_individual_id) == (group.pk, beneficiary.pk,
                                                                                            head.pk)
