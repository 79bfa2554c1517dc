"""The escalation run (job ``grievance.escalate``, every few minutes through the core
scheduler): open tickets past their due date are marked overdue and moved one level up
(``routing.Router.escalate``), each move a ``core_history`` version whose context says
``escalation``; the new attending staff are notified (one message each per run) and
``grievance_ticket_escalated`` fires after commit.

Set-based: per chunk, one ``SELECT … FOR UPDATE SKIP LOCKED`` of the tickets due, routing in
memory from holders read once, one ``UPDATE … FROM unnest(…)``. Two runs at once take
different tickets; a run retried after a crash finds only what is still due.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction

from core.history import acting_as
from core.models import User
from modules.grievance import clock, notifications
from modules.grievance.configuration import config, duration_hours
from modules.grievance.models import OPEN_STATUSES, Ticket
from modules.grievance.routing import Router
from modules.location.models import Location

CHUNK = 10000
UPDATE = """
UPDATE grievance_ticket t SET
    attending_staff_id = coalesce(v.staff, t.attending_staff_id),
    assigned_location_id = CASE WHEN v.staff IS NULL THEN t.assigned_location_id ELSE v.place END,
    escalation_level = t.escalation_level + CASE WHEN v.staff IS NULL THEN 0 ELSE 1 END,
    next_escalation_at = v.next, is_overdue = true, version = t.version + 1, date_updated = %s
FROM unnest(%s::uuid[], %s::uuid[], %s::uuid[], %s::timestamptz[]) AS v(id, staff, place, next)
WHERE t.id = v.id
RETURNING t.id, t.escalation_level
"""


def escalate_overdue(now: datetime | None = None, *, job_id: Any = None) -> dict[str, int]:
    """Escalate every open ticket whose next escalation is due at ``now`` (the module clock),
    as the system actor."""
    from core.actors import system_actor

    actor = system_actor()
    now = now or clock.now()
    cfg = config()
    interval = timedelta(hours=duration_hours(cfg.escalation_interval))
    roles = {role for category in cfg.categories.values() for role in category.handler_roles}
    router = Router(roles, cfg.national_lead_role)
    escalated = examined = 0
    while True:
        with transaction.atomic(), acting_as(actor, escalation=True, job=str(job_id or "")):
            due = list(Ticket.objects.select_for_update(skip_locked=True)
                       .filter(status__in=OPEN_STATUSES, is_deleted=False, next_escalation_at__lte=now)
                       .order_by("next_escalation_at")
                       .values_list("id", "code", "category", "assigned_location_id", "due_date")[:CHUNK])
            if not due:
                break
            examined += len(due)
            router.remember_paths(dict(Location.objects.filter(pk__in={row[3] for row in due if row[3]})
                                       .values_list("pk", "path")))
            ids, staff, places, nexts, moves = [], [], [], [], []
            for ticket_id, code, category, place, due_date in due:
                handler_roles = cfg.categories[category].handler_roles if category in cfg.categories else ()
                step = router.escalate(handler_roles, place)
                ids.append(ticket_id)
                staff.append(step.user_id)
                places.append(step.location_id)
                # at the national lead there is nobody further up; with nobody found, look again later
                nexts.append(None if step.national_lead and step.user_id else now + interval)
                if step.user_id is not None:
                    moves.append({"ticket_id": ticket_id, "code": code, "attending_staff_id": step.user_id,
                                  "location_id": step.location_id, "due_date": due_date})
            with connection.cursor() as cursor:
                cursor.execute(UPDATE, [now, ids, staff, places, nexts])
                levels = dict(cursor.fetchall())
            for move in moves:
                move["level"] = levels.get(move["ticket_id"])
            _announce(moves)
            escalated += len(moves)
            events = [{k: m[k] for k in ("ticket_id", "level", "attending_staff_id", "location_id")} for m in moves]
            transaction.on_commit(lambda events=events: _escalated(events), robust=True)
    with transaction.atomic(), acting_as(actor, escalation=True, job=str(job_id or "")):
        marked = Ticket.objects.filter(status__in=OPEN_STATUSES, is_deleted=False, due_date__lte=now,
                                       is_overdue=False).update(is_overdue=True)
    return {"examined": examined, "escalated": escalated, "marked_overdue": marked}


def _announce(moves: list[dict[str, Any]]) -> None:
    by_user: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for move in moves:
        by_user[move["attending_staff_id"]].append(move)
    users = {u.pk: u for u in User.objects.filter(pk__in=list(by_user))}
    messages = []
    for user_id, mine in by_user.items():
        codes = ", ".join(m["code"] for m in mine[:20]) + (f" and {len(mine) - 20} more" if len(mine) > 20 else "")
        subject = (f"Grievance {mine[0]['code']} is overdue and escalated to you" if len(mine) == 1
                   else f"{len(mine)} overdue grievance tickets escalated to you")
        messages.append(("escalated", users.get(user_id), subject, f"{subject}: {codes}.", [m["ticket_id"] for m in mine]))
    notifications.queue_many(messages)


def _escalated(events: list[dict[str, Any]]) -> None:
    from core.hooks import hook

    hook().grievance_ticket_escalated(escalations=events)
