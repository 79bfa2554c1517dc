"""Routing by role and location with its fallbacks, due dates, and the escalation job timed
by an injected clock (no sleeps)."""

from __future__ import annotations

from typing import Any

import pytest

from core.models import HistoryEntry
from modules.grievance.models import Notification
from modules.grievance.services.escalation import escalate_overdue

pytestmark = pytest.mark.django_db
OFFICER = "Grievance officer"
LEAD = "Grievance national lead"


def test_a_ticket_goes_to_the_handler_of_its_colline(make_ticket: Any, places: Any, staff: Any) -> None:
    here = staff(OFFICER, at="H111")
    staff(OFFICER, at="C11")
    ticket = make_ticket(places, category="paiement", location="H111")
    assert (ticket.attending_staff_id, ticket.assigned_location_id) == (here.pk, places["H111"].pk)


def test_else_its_commune_else_its_province(make_ticket: Any, places: Any, staff: Any) -> None:
    commune = staff(OFFICER, at="C11")
    province = staff(OFFICER, at="P2")
    assert make_ticket(places, category="paiement", location="H112").attending_staff_id == commune.pk
    assert make_ticket(places, category="paiement", location="H211").attending_staff_id == province.pk


def test_else_the_least_loaded_holder_of_the_role(make_ticket: Any, places: Any, staff: Any) -> None:
    busy, idle = staff(OFFICER, at="H211"), staff(OFFICER, at="H211")
    make_ticket(places, category="paiement", location="H211", attending_staff_id=busy.pk)
    # H121 has no handler at its colline, commune or province: anyone holding the role, least loaded first
    ticket = make_ticket(places, category="paiement", location="H121")
    assert ticket.attending_staff_id == idle.pk and ticket.assigned_location_id is None


def test_a_batch_is_spread_over_the_holders(make_ticket: Any, places: Any, staff: Any) -> None:
    from modules.grievance.services.tickets import check_create_tickets, do_create_tickets

    a, b = staff(OFFICER, at="H111"), staff(OFFICER, at="H111")
    from core.models import User

    made = do_create_tickets(check_create_tickets(User.objects.get(username="admin"), [
        {"title": f"t{i}", "category": "paiement", "location_id": places["H111"].pk} for i in range(6)]))
    assert sorted(str(t.attending_staff_id) for t in made).count(str(a.pk)) == 3
    assert {t.attending_staff_id for t in made} == {a.pk, b.pk}


def test_the_due_date_is_the_categorys_resolution_time(make_ticket: Any, places: Any, grievance_clock: Any) -> None:
    import datetime

    ticket = make_ticket(places, category="paiement|non_recu", location="H111")  # "2,0"
    assert ticket.due_date == grievance_clock.now() + datetime.timedelta(days=2)
    assert make_ticket(places, category="vbg", location="H111").due_date == grievance_clock.now() + datetime.timedelta(days=1)


def test_recategorising_recomputes_the_due_date_from_arrival(make_ticket: Any, places: Any, admin_user: Any,
                                                             grievance_clock: Any) -> None:
    import datetime

    from modules.grievance.services import changes

    ticket = make_ticket(places, category="autre", location="H111")  # "10,0"
    grievance_clock.advance(hours=5)
    changed = changes.do_update_ticket(changes.check_update_ticket(admin_user, ticket.pk, category="paiement"))
    assert changed.due_date == ticket.date_created + datetime.timedelta(days=3)
    assert changed.priority == "High"


def test_nothing_escalates_before_the_due_date(make_ticket: Any, places: Any, staff: Any, grievance_clock: Any) -> None:
    staff(OFFICER, at="H111")
    staff(OFFICER, at="C11")
    ticket = make_ticket(places, category="paiement|non_recu", location="H111")
    grievance_clock.advance(days=1, hours=23)
    assert escalate_overdue()["escalated"] == 0
    ticket.refresh_from_db()
    assert ticket.escalation_level == 0 and not ticket.is_overdue


def test_an_overdue_ticket_climbs_level_by_level_to_the_national_lead(
        make_ticket: Any, places: Any, staff: Any, grievance_clock: Any, smtp_server: Any) -> None:
    colline, commune, province = staff(OFFICER, at="H111"), staff(OFFICER, at="C11"), staff(OFFICER, at="P1")
    lead = staff(LEAD)
    ticket = make_ticket(places, category="paiement|non_recu", location="H111")
    assert ticket.attending_staff_id == colline.pk
    seen = []
    for expected in (commune, province, lead):
        grievance_clock.advance(days=2, minutes=1)
        assert escalate_overdue()["escalated"] == 1
        ticket.refresh_from_db()
        seen.append(ticket.attending_staff_id)
        assert ticket.is_overdue and ticket.attending_staff_id == expected.pk
    assert ticket.escalation_level == 3
    grievance_clock.advance(days=10)
    assert escalate_overdue()["escalated"] == 0  # nobody above the national lead
    entries = HistoryEntry.objects.filter(table_name="grievance_ticket", row_id=ticket.pk,
                                          context__escalation=True)
    assert entries.count() == 3
    assert Notification.objects.filter(event="escalated", recipient=commune).count() == 1
    assert Notification.objects.filter(event="escalated", recipient=lead).exists()


def test_a_ticket_without_a_place_escalates_to_the_national_lead(make_ticket: Any, places: Any, staff: Any,
                                                                  grievance_clock: Any) -> None:
    lead = staff(LEAD)
    ticket = make_ticket(places, category="autre")
    grievance_clock.advance(days=11)
    escalate_overdue()
    ticket.refresh_from_db()
    assert ticket.attending_staff_id == lead.pk and ticket.next_escalation_at is None


def test_resolved_tickets_do_not_escalate(make_ticket: Any, places: Any, staff: Any, grievance_clock: Any,
                                          admin_user: Any) -> None:
    from modules.grievance.services import changes

    staff(OFFICER, at="C11")
    ticket = make_ticket(places, category="paiement|montant_incorrect", location="H111")
    changes.do_update_ticket(changes.check_update_ticket(admin_user, ticket.pk, status="RESOLVED"))
    grievance_clock.advance(days=30)
    assert escalate_overdue()["escalated"] == 0


def test_the_scheduler_runs_escalation_as_a_job(make_ticket: Any, places: Any, staff: Any, grievance_clock: Any) -> None:
    from core.cron import fire_due, schedules
    from core.jobs import run_job

    staff(OFFICER, at="C11")
    province = staff(OFFICER, at="P1")
    ticket = make_ticket(places, category="paiement|non_recu", location="H112")
    grievance_clock.advance(days=3)
    schedule = next(s for s in schedules() if s.kind == "grievance.escalate")
    import datetime

    from django.utils import timezone

    job = fire_due(schedule, timezone.now() + datetime.timedelta(hours=1))
    assert job is not None
    run_job(str(job.pk))  # what the worker does once the scheduler's transaction commits
    job.refresh_from_db()
    assert job.state == "SUCCEEDED", job.message
    ticket.refresh_from_db()
    assert ticket.is_overdue and ticket.escalation_level == 1 and ticket.attending_staff_id == province.pk
    assert job.result["escalated"] == 1
