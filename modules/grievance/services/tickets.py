"""Recording tickets: one from a form, or thousands from a service (Kobo, a migration), by the
same path. Validation reads every person, household, payment and place the batch names in one
query each; writing is bulk inserts; routing reads its holders once (``routing.Router``)."""

from __future__ import annotations

import datetime
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from core.errors import CoreErrorCode as C
from core.errors import FieldError, ValidationFailed
from core.models import User
from modules.grievance import clock, codes, links, notifications
from modules.grievance.configuration import Category, config
from modules.grievance.errors import GrievanceErrorCode as E
from modules.grievance.models import Contact, ReporterKind, Ticket, TicketStatus
from modules.grievance.permissions import TICKET_CREATE
from modules.grievance.routing import Router
from modules.grievance.services import common
from modules.individual.models import Group, GroupIndividual, Individual
from modules.individual.services import visible_groups, visible_individuals
from modules.location.models import Location
from modules.location.services import in_scope, is_national, scope_paths

CREATE_STATUSES = (TicketStatus.RECEIVED, TicketStatus.OPEN, TicketStatus.IN_PROGRESS)


@dataclass
class NewTicket:
    title: str
    description: str
    category: Category
    flags: list[str]
    channel: str
    priority: str
    status: str
    date_of_incident: datetime.date | None
    date_submitted: datetime.date | None
    reporter_kind: str
    reporter_id: Any
    reporter_individual_id: Any
    reporter_user_id: Any
    household_id: Any
    beneficiary_id: Any
    payment_id: Any
    attending_staff_id: Any
    location_id: Any
    json_ext: Any
    contact: dict[str, str] | None


@dataclass
class CreateTicketsRequest:
    actor: Any
    tickets: list[NewTicket]
    source: str
    created: list[Ticket] = field(default_factory=list)


class _Lookups:
    """Everything a batch names, read once per kind and limited to the actor's scope."""

    def __init__(self, actor: Any, items: list[dict[str, Any]]) -> None:
        def ids(key: str, kind: str | None = None) -> set[uuid.UUID]:
            found = set()
            for item in items:
                if kind is not None and (item.get("reporter_type") or "").strip().lower() != kind:
                    continue
                value = item.get(key)
                if isinstance(value, uuid.UUID):
                    found.add(value)
                elif isinstance(value, str):
                    try:
                        found.add(uuid.UUID(value))
                    except ValueError:
                        pass
            return found

        self.actor = actor
        beneficiary_ids = ids("reporter_id", "beneficiary") | ids("beneficiary_id")
        self.beneficiaries = links.beneficiaries(beneficiary_ids)
        self.beneficiaries_known = not beneficiary_ids or links.beneficiaries_available()
        payment_ids = ids("payment_id")
        self.payments = links.payments(payment_ids)
        self.payments_known = not payment_ids or links.payments_available()
        people = ids("reporter_id", "individual")
        people |= {ref.individual_id for ref in self.beneficiaries.values() if ref.individual_id}
        people |= {ref.individual_id for ref in self.payments.values()}
        self.individuals = {i.pk: i for i in visible_individuals(actor, Individual.objects.filter(pk__in=people))}
        households = ids("household_id") | {ref.group_id for ref in self.beneficiaries.values() if ref.group_id}
        households |= {ref.group_id for ref in self.payments.values() if ref.group_id}
        self.groups = {g.pk: g for g in visible_groups(actor, Group.objects.filter(pk__in=households))}
        self.household_of = dict(GroupIndividual.objects.filter(individual_id__in=list(self.individuals))
                                 .values_list("individual_id", "group_id"))
        heads = {g.head_id for g in self.groups.values() if g.head_id}
        self.individuals.update({i.pk: i for i in Individual.objects.filter(pk__in=heads - set(self.individuals))})
        users = ids("reporter_id", "user") | ids("attending_staff_id")
        self.users = {u.pk: u for u in User.objects.filter(pk__in=users, is_active=True)}
        self.locations = {loc.pk: loc for loc in Location.objects.filter(pk__in=ids("location_id"))}
        paths = scope_paths(actor)
        self._paths = {loc.pk: loc.path for loc in self.locations.values()}
        self.own_location = None
        if paths is not None and len(paths) == 1:
            self.own_location = Location.objects.filter(path=paths[0]).values_list("pk", flat=True).first()


    def path_of(self, location_id: Any) -> str | None:
        if location_id is None:
            return None
        if location_id not in self._paths:
            self._paths[location_id] = Location.objects.filter(pk=location_id).values_list("path", flat=True).first()
        return self._paths[location_id]


def _uuid(raw: Any) -> uuid.UUID | None:
    if isinstance(raw, uuid.UUID):
        return raw
    try:
        return uuid.UUID(str(raw)) if raw not in (None, "") else None
    except ValueError:
        return None


def _reporter(item: dict[str, Any], found: _Lookups, errors: list[FieldError]) -> tuple[str, Any, Any, Any, Any, Any]:
    """(kind, id named, person, user, household, beneficiary) of the reporter."""
    kind = (item.get("reporter_type") or "").strip().lower()
    if not kind:
        if item.get("reporter_id"):
            errors.append(FieldError("reporterType", E.INVALID_REPORTER_TYPE, "Say what reporterId names: "
                                     "individual, beneficiary or user."))
        return "", None, None, None, None, None
    if kind not in ReporterKind.values:
        errors.append(FieldError("reporterType", E.INVALID_REPORTER_TYPE,
                                 f"'{kind[:30]}' is not a reporter type; use individual, beneficiary or user."))
        return "", None, None, None, None, None
    named = _uuid(item.get("reporter_id"))
    missing = FieldError("reporterId", E.REPORTER_NOT_FOUND, f"No {kind} {str(item.get('reporter_id'))[:60]} is "
                                                             "visible to you.")
    if named is None:
        errors.append(missing)
        return kind, None, None, None, None, None
    if kind == ReporterKind.INDIVIDUAL:
        if named not in found.individuals:
            errors.append(missing)
            return kind, named, None, None, None, None
        return kind, named, named, None, found.household_of.get(named), None
    if kind == ReporterKind.USER:
        if named not in found.users:
            errors.append(missing)
        return kind, named, None, named, None, None
    if not found.beneficiaries_known:
        errors.append(FieldError("reporterType", E.INVALID_REPORTER_TYPE,
                                 "Beneficiary reporters need the social_protection module, which is not enabled."))
        return kind, named, None, None, None, None
    ref = found.beneficiaries.get(named)
    person = ref.individual_id if ref else None
    if ref is not None and person is None and ref.group_id in found.groups:
        person = found.groups[ref.group_id].head_id
    if ref is None or person not in found.individuals:
        errors.append(missing)
        return kind, named, None, None, None, None
    return kind, named, person, None, ref.group_id or found.household_of.get(person), named


def _location(item: dict[str, Any], found: _Lookups, person: Any, household: Any, errors: list[FieldError]) -> Any:
    actor = found.actor
    if item.get("location_id") not in (None, ""):
        location = found.locations.get(_uuid(item["location_id"]))
        if location is None:
            errors.append(FieldError("locationId", E.LOCATION_NOT_FOUND, "No such location."))
            return None
        if not in_scope(actor, location):
            errors.append(FieldError("locationId", C.OUT_OF_SCOPE, "The location is outside your locations."))
        return location.pk
    if person is not None and found.individuals[person].location_id:
        return found.individuals[person].location_id
    if household is not None and household in found.groups and found.groups[household].location_id:
        return found.groups[household].location_id
    if found.own_location is not None:
        return found.own_location
    if not is_national(actor):
        errors.append(FieldError("locationId", E.LOCATION_REQUIRED, "Say where the complaint comes from (locationId)."))
    return None


def _one(item: dict[str, Any], found: _Lookups, today: datetime.date) -> tuple[NewTicket | None, list[FieldError]]:
    errors: list[FieldError] = []
    title = common.text(item.get("title"), "title", errors, required=True)
    description = common.text(item.get("description"), "description", errors, limit=20000)
    category = common.category_of(item.get("category"), errors)
    flags = common.flags_of(item.get("flags"), errors)
    if category is not None:
        flags = [*flags, *[f for f in category.default_flags if f not in flags]]
    channel = common.channel_of(item.get("channel"), errors)
    priority = common.priority_of(item.get("priority"), category, flags, errors)
    status = common.status_of(item.get("status"), errors, CREATE_STATUSES) or TicketStatus.RECEIVED
    incident = common.incident_date(item.get("date_of_incident"), errors, today)
    submitted = common.incident_date(item.get("date_submitted"), errors, today, "dateSubmitted")
    if item.get("code") not in (None, ""):
        errors.append(FieldError("code", E.CODE_GENERATED, "Ticket codes are given by the system; leave code out."))
    common.fixed_by_category(item.get("resolution"), item.get("due_date"), category, errors)
    kind, named, person, user, household, beneficiary = _reporter(item, found, errors)
    if item.get("household_id") not in (None, ""):
        household = _uuid(item["household_id"])
        if household not in found.groups:
            errors.append(FieldError("householdId", E.HOUSEHOLD_NOT_FOUND, "No such household is visible to you."))
    if item.get("beneficiary_id") not in (None, "") and beneficiary is None:
        beneficiary = _uuid(item["beneficiary_id"])
        if beneficiary not in found.beneficiaries:
            errors.append(FieldError("beneficiaryId", E.REPORTER_NOT_FOUND, "No such beneficiary is visible to you."))
    payment = None
    if item.get("payment_id") not in (None, ""):
        payment = _uuid(item["payment_id"])
        ref = found.payments.get(payment)
        if not found.payments_known or ref is None or ref.individual_id not in found.individuals:
            errors.append(FieldError("paymentId", E.PAYMENT_NOT_FOUND, "No such payment is visible to you"
                                     + ("" if found.payments_known else " (the payroll module is not enabled)") + "."))
        else:
            person = person or ref.individual_id
            household = household or ref.group_id
    staff = None
    if item.get("attending_staff_id") not in (None, ""):
        staff = _uuid(item["attending_staff_id"])
        if staff not in found.users:
            errors.append(FieldError("attendingStaffId", E.STAFF_NOT_FOUND, "No such active user."))
    location = _location(item, found, person, household, errors)
    if staff in found.users and not errors:
        problem = common.staff_problem(found.users[staff], found.path_of(location))
        if problem:
            errors.append(FieldError("attendingStaffId", C.OUT_OF_SCOPE, problem))
    json_ext = common.json_ext_of(item.get("json_ext"), errors)
    contact = {k: common.text(item.get(f"contact_{k}") if k != "name" else item.get("name_of_complainant"),
                              f"contact.{k}", errors) for k in ("name", "phone", "email", "address")}
    if errors or category is None:
        return None, errors
    return NewTicket(title, description, category, flags, channel, priority, status, incident, submitted, kind, named, person,
                     user, household, beneficiary, payment, staff, location, json_ext,
                     contact if any(contact.values()) else None), []


def check_create_tickets(actor: Any, items: list[dict[str, Any]], source: str = "service") -> CreateTicketsRequest:
    """Validate a batch; every refusal names the item (``[3].category``) and nothing is written."""
    common.require(actor, TICKET_CREATE)
    found = _Lookups(actor, items)
    today = clock.now().date()
    tickets, errors = [], []
    for index, item in enumerate(items):
        ticket, problems = _one(item, found, today)
        prefix = f"[{index}]." if len(items) > 1 else ""
        errors.extend(FieldError(f"{prefix}{p.field}" if p.field else prefix.rstrip(".") or None, p.code, p.message)
                      for p in problems)
        if ticket is not None:
            tickets.append(ticket)
    if errors:
        raise ValidationFailed(errors)
    return CreateTicketsRequest(actor, tickets, source)


def check_create_ticket(actor: Any, **data: Any) -> CreateTicketsRequest:
    return check_create_tickets(actor, [data], "mutation")


def do_create_tickets(request: CreateTicketsRequest) -> list[Ticket]:
    """Write the batch: codes, due dates, routing, contacts, workflows, notifications; the
    ``grievance_ticket_created`` event after commit."""
    from modules.grievance.services import workflows

    cfg = config()
    now = clock.now()
    numbers = codes.allocate(len(request.tickets))
    roles = {role for t in request.tickets for role in t.category.handler_roles}
    roles |= {step.role for t in request.tickets if t.category.workflow for step in cfg.workflows[t.category.workflow].steps}
    router = Router(roles, cfg.national_lead_role)
    router.remember_paths(dict(Location.objects.filter(pk__in={t.location_id for t in request.tickets if t.location_id})
                               .values_list("pk", "path")))
    actor_id = getattr(request.actor, "pk", None)
    tickets, contacts = [], []
    for new, code in zip(request.tickets, numbers, strict=True):
        due = common.due_after(now, new.category)
        assigned = None
        staff = new.attending_staff_id
        if staff is None:
            route = router.route(new.category.handler_roles, new.location_id)
            staff, assigned = route.user_id, route.location_id
        ticket = Ticket(
            code=code, title=new.title, description=new.description, category=new.category.path, flags=new.flags,
            channel=new.channel, priority=new.priority, status=new.status, date_of_incident=new.date_of_incident,
            date_submitted=new.date_submitted,
            resolution=new.category.resolution_time, due_date=due, next_escalation_at=due,
            reporter_kind=new.reporter_kind, reporter_id=new.reporter_id,
            reporter_individual_id=new.reporter_individual_id, reporter_user_id=new.reporter_user_id,
            household_id=new.household_id, beneficiary_id=new.beneficiary_id, payment_id=new.payment_id,
            attending_staff_id=staff, location_id=new.location_id, assigned_location_id=assigned,
            json_ext=new.json_ext, date_created=now, date_updated=now, user_created_id=actor_id,
            user_updated_id=actor_id)
        tickets.append(ticket)
        if new.contact:
            contacts.append(Contact(ticket=ticket, date_created=now, date_updated=now, user_created_id=actor_id,
                                    user_updated_id=actor_id, **new.contact))
    Ticket.objects.bulk_create(tickets, batch_size=2000)
    if contacts:
        Contact.objects.bulk_create(contacts, batch_size=2000)
    workflows.start(tickets, router, now)
    announce_assignments(tickets, "assigned")
    ids = [t.pk for t in tickets]
    source = request.source
    transaction.on_commit(lambda: _created(ids, source), robust=True)
    request.created = tickets
    return tickets


def _created(ids: list[Any], source: str) -> None:
    from core.hooks import hook

    hook().grievance_ticket_created(ticket_ids=ids, source=source)


def announce_assignments(tickets: Iterable[Ticket], event: str) -> None:
    """One notification per attending staff member, listing their tickets of this change."""
    by_staff: dict[Any, list[Ticket]] = defaultdict(list)
    for ticket in tickets:
        if ticket.attending_staff_id is not None:
            by_staff[ticket.attending_staff_id].append(ticket)
    if not by_staff:
        return
    users = {u.pk: u for u in User.objects.filter(pk__in=list(by_staff))}
    messages = []
    for user_id, mine in by_staff.items():
        listed = ", ".join(t.code for t in mine[:20]) + (f" and {len(mine) - 20} more" if len(mine) > 20 else "")
        verb = "escalated to you" if event == "escalated" else "assigned to you"
        subject = f"{len(mine)} grievance ticket(s) {verb}" if len(mine) > 1 else f"Grievance {mine[0].code} {verb}"
        body = f"{subject}: {listed}.\nDue: " + ", ".join(
            f"{t.code} {t.due_date:%Y-%m-%d %H:%M}" for t in mine[:20] if t.due_date)
        messages.append((event, users[user_id], subject, body, [t.pk for t in mine]))
    notifications.queue_many(messages)


def create_ticket(actor: Any, **data: Any) -> Ticket:
    """One ticket, checked and written (for scripts and the demo)."""
    return do_create_tickets(check_create_ticket(actor, **data))[0]

