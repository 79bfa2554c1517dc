"""Workflow templates at work: steps opened in order, completed, skipped with a reason,
reassigned; "payment not received" shows the payment's live status; "replacement after death"
names the new primary recipient through maker-checker; the ticket closes when they finish."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from core.errors import ServiceError
from modules.grievance.models import TaskStatus, TicketTask
from modules.grievance.services import workflows

pytestmark = pytest.mark.django_db
OFFICER, PAY, GBV = "Grievance officer", "Payment officer", "GBV case worker"


def tasks(ticket: Any) -> list[tuple[str, str]]:
    return [(t.step, t.status) for t in TicketTask.objects.filter(ticket=ticket).order_by("position")]


def complete(user: Any, task: Any, **kwargs: Any) -> Any:
    return workflows.do_task(workflows.check_complete_task(user, task.pk, **kwargs))


@pytest.fixture
def household(admin_user: Any, places: Any) -> Any:
    from modules.individual import services as registry

    group = registry.create_group(admin_user, code="HH-1", location_id=places["H111"].pk)
    people = []
    for index, name in enumerate(["Défunt", "Épouse"]):
        person = registry.create_individual(admin_user, first_name=name, last_name="Nkurunziza",
                                            dob=datetime.date(1970 + index, 1, 1), location_id=places["H111"].pk)
        registry.add_member(admin_user, group_id=group.pk, individual_id=person.pk,
                            role="HEAD" if index == 0 else "SPOUSE", recipient_type="PRIMARY" if index == 0 else None)
        people.append(person)
    return group, people


@pytest.fixture
def payment(admin_user: Any, household: Any) -> Any:
    """One real payment instruction of a payroll (the payroll module's own tables)."""
    from modules.payroll.models import (
        BenefitConsumption,
        PaymentCycle,
        PaymentPlan,
        PaymentPoint,
        Payroll,
    )
    from modules.social_protection.models import BenefitPlan, GroupBeneficiary

    group, people = household
    plan = BenefitPlan.objects.create(code="CT", name="Transferts", type="GROUP", date_valid_from=datetime.date(2026, 1, 1),
                                      date_valid_to=datetime.date(2027, 1, 1))
    beneficiary = GroupBeneficiary.objects.create(benefit_plan=plan, group=group, status="ACTIVE")
    cycle = PaymentCycle.objects.create(code="2026-05", start_date=datetime.date(2026, 5, 1), end_date=datetime.date(2026, 5, 31))
    point = PaymentPoint.objects.create(code="MM", name="Mobile money", adaptor="file")
    payroll = Payroll.objects.create(name="Mai 2026", payment_plan=PaymentPlan.objects.create(
        code="PP", name="Plan", benefit_plan=plan, currency="BIF"), payment_cycle=cycle, payment_point=point)
    return BenefitConsumption.objects.create(code="PAY-0001", payroll=payroll, payment_cycle=cycle,
                                             beneficiary_id=beneficiary.pk, individual=people[0], group=group,
                                             payment_point=point, amount=25000, currency="BIF", status="FAILED",
                                             status_message="wallet closed")


def test_payment_not_received_shows_the_live_status_and_closes_when_done(
        gql: Any, make_ticket: Any, places: Any, staff: Any, payment: Any) -> None:
    payer, officer = staff(PAY, at="H111"), staff(OFFICER, at="H111")
    ticket = make_ticket(places, category="paiement|non_recu", location="H111", payment_id=payment.pk)
    assert tasks(ticket) == [("check_payment", "OPEN"), ("reissue_or_explain", "WAITING"), ("close", "WAITING")]
    first = TicketTask.objects.get(ticket=ticket, step="check_payment")
    assert first.assignee_id == payer.pk
    query = f'{{ tickets(id: "{ticket.pk}") {{ edges {{ node {{ payment {{ code status statusMessage }} }} }} }} }}'
    assert gql(payer).ok(query)["tickets"]["edges"][0]["node"]["payment"] == {
        "code": "PAY-0001", "status": "FAILED", "statusMessage": "wallet closed"}
    type(payment).objects.filter(pk=payment.pk).update(status="PAID")  # the provider's callback arrives
    assert gql(payer).ok(query)["tickets"]["edges"][0]["node"]["payment"]["status"] == "PAID"  # live, not a copy
    done = complete(payer, first, note="paid on the 12th")
    assert done.result["status"] == "PAID"
    with pytest.raises(ServiceError) as refused:
        complete(officer, TicketTask.objects.get(ticket=ticket, step="reissue_or_explain"))
    assert refused.value.code == "NOT_THE_ROLE"
    with pytest.raises(ServiceError) as no_reason:
        workflows.check_skip_task(payer, TicketTask.objects.get(ticket=ticket, step="reissue_or_explain").pk, " ")
    assert no_reason.value.code == "REASON_REQUIRED"
    workflows.do_task(workflows.check_skip_task(payer, TicketTask.objects.get(ticket=ticket, step="reissue_or_explain").pk,
                                                "paid meanwhile"))
    complete(officer, TicketTask.objects.get(ticket=ticket, step="close"))
    ticket.refresh_from_db()
    assert ticket.status == "CLOSED" and tasks(ticket)[1] == ("reissue_or_explain", "SKIPPED")


def test_a_task_is_reassigned_only_to_a_holder_of_its_role(make_ticket: Any, places: Any, staff: Any,
                                                           payment: Any) -> None:
    payer, other_payer, officer = staff(PAY, at="H111"), staff(PAY, at="C11"), staff(OFFICER, at="H111")
    ticket = make_ticket(places, category="paiement|non_recu", location="H111", payment_id=payment.pk)
    task = TicketTask.objects.get(ticket=ticket, step="check_payment")
    with pytest.raises(ServiceError) as refused:
        workflows.check_reassign_task(payer, task.pk, officer.pk)
    assert refused.value.code == "NOT_THE_ROLE"
    workflows.do_task(workflows.check_reassign_task(payer, task.pk, other_payer.pk, "on leave"))
    assert TicketTask.objects.get(pk=task.pk).assignee_id == other_payer.pk


def test_replacement_after_death_names_the_recipient_through_a_checker(
        make_ticket: Any, places: Any, staff: Any, household: Any, admin_user: Any, make_user: Any,
        handler_codes: list[str]) -> None:
    from core.approvals.services import create_task_group, resolve_task
    from modules.individual.models import GroupIndividual

    group, (deceased, spouse) = household
    officer = staff(OFFICER, PAY, at="H111", codes=[*handler_codes, "individual.registry.update"])
    checker = make_user(["core.task.resolve", "core.task.view", "individual.registry.update", "location.scope.national"])
    create_task_group(admin_user, code="GRIEVANCE-CHECKERS", completion_policy="ANY", checker_ids=[checker.pk])
    ticket = make_ticket(places, category="deces", location="H111", household_id=group.pk)
    for step in ("verify_household", "record_death"):
        complete(officer, TicketTask.objects.get(ticket=ticket, step=step))
    naming = TicketTask.objects.get(ticket=ticket, step="name_new_recipient")
    with pytest.raises(ServiceError) as stranger:
        workflows.check_complete_task(officer, naming.pk, new_recipient_id=admin_user.pk)
    assert stranger.value.code == "RECIPIENT_NOT_IN_HOUSEHOLD"
    waiting = complete(officer, naming, new_recipient_id=spouse.pk)
    assert waiting.status == TaskStatus.AWAITING_APPROVAL and waiting.approval_task_id
    assert GroupIndividual.objects.get(group=group, recipient_type="PRIMARY").individual_id == deceased.pk
    resolve_task(checker, waiting.approval_task_id, "APPROVED")
    assert GroupIndividual.objects.get(group=group, recipient_type="PRIMARY").individual_id == spouse.pk
    assert tasks(ticket)[2:4] == [("name_new_recipient", "DONE"), ("update_payment_account", "OPEN")]
    complete(officer, TicketTask.objects.get(ticket=ticket, step="update_payment_account"))
    # "notify" tells the attending staff and finishes by itself: the workflow is over
    assert tasks(ticket)[4] == ("notify", "DONE")
    ticket.refresh_from_db()
    assert ticket.status == "CLOSED"


def test_gbv_closure_is_the_case_workers_alone(make_ticket: Any, places: Any, staff: Any) -> None:
    worker, officer = staff(GBV, at="H111"), staff(OFFICER, OFFICER, at="H111")
    ticket = make_ticket(places, category="vbg", location="H111")
    for step in ("refer", "follow_up"):
        complete(worker, TicketTask.objects.get(ticket=ticket, step=step))
    closure = TicketTask.objects.get(ticket=ticket, step="closure")
    with pytest.raises(ServiceError) as refused:
        complete(officer, closure)
    assert refused.value.code in ("NOT_THE_ROLE", "TASK_NOT_FOUND")
    complete(worker, closure)
    ticket.refresh_from_db()
    assert ticket.status == "CLOSED"
